fpn::include_spec!("specs/invalid/E0327_crop_larger_than_input.yaml");

fn main() {}
