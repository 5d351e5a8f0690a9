fpn::include_spec!("specs/invalid/E0201_three_structural_errors.yaml");

fn main() {}
