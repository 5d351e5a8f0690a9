fpn::include_spec!("specs/invalid/E0203_two_node_cycle.yaml");

fn main() {}
