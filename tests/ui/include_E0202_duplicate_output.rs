fpn::include_spec!("specs/invalid/E0202_duplicate_output.yaml");

fn main() {}
