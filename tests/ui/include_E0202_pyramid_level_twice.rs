fpn::include_spec!("specs/invalid/E0202_pyramid_level_twice.yaml");

fn main() {}
