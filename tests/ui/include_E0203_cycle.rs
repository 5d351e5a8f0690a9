fpn::include_spec!("specs/invalid/E0203_cycle.yaml");

fn main() {}
