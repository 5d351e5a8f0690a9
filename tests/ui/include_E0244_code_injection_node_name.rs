fpn::include_spec!("specs/invalid/E0244_code_injection_node_name.yaml");

fn main() {}
