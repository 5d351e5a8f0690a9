fpn::include_spec!("specs/invalid/E0323_upsample_float_scale.yaml");

fn main() {}
