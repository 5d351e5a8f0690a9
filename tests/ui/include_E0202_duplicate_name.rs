fpn::include_spec!("specs/invalid/E0202_duplicate_name.yaml");

fn main() {}
