fpn::include_spec!("specs/invalid/E0202_ambiguous_name.yaml");

fn main() {}
