fpn::include_spec!("specs/invalid/E0222_pyramid_one_level.yaml");

fn main() {}
