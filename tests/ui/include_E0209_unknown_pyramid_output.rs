fpn::include_spec!("specs/invalid/E0209_unknown_pyramid_output.yaml");

fn main() {}
