fpn::include_spec!("specs/invalid/E0213_upsample_scale_1e300.yaml");

fn main() {}
