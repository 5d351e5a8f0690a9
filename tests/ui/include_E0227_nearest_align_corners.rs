fpn::include_spec!("specs/invalid/E0227_nearest_align_corners.yaml");

fn main() {}
