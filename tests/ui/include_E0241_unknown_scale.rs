fpn::include_spec!("specs/invalid/E0241_unknown_scale.yaml");

fn main() {}
