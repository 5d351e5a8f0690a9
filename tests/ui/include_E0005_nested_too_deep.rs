fpn::include_spec!("specs/invalid/E0005_nested_too_deep.yaml");

fn main() {}
