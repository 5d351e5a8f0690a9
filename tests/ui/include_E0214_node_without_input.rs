fpn::include_spec!("specs/invalid/E0214_node_without_input.yaml");

fn main() {}
