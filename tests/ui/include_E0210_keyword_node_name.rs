fpn::include_spec!("specs/invalid/E0210_keyword_node_name.yaml");

fn main() {}
