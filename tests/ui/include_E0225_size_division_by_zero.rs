fpn::include_spec!("specs/invalid/E0225_size_division_by_zero.yaml");

fn main() {}
