fpn::include_spec!("specs/invalid/E0210_spec_name_with_space.yaml");

fn main() {}
