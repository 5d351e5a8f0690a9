fpn::include_spec!("specs/invalid/E0101_three_independent_errors.yaml");

fn main() {}
