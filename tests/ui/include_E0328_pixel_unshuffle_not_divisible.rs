fpn::include_spec!("specs/invalid/E0328_pixel_unshuffle_not_divisible.yaml");

fn main() {}
