fpn::include_spec!("specs/invalid/E0001_tab_indent.yaml");

fn main() {}
