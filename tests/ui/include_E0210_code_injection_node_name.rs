fpn::include_spec!("specs/invalid/E0210_code_injection_node_name.yaml");

fn main() {}
