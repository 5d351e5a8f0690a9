fpn::include_spec!("specs/invalid/E0008_yaml_tag.yaml");

fn main() {}
