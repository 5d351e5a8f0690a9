fpn::include_spec!("specs/invalid/E0242_scales_disagree.yaml");

fn main() {}
