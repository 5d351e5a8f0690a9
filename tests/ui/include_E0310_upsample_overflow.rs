fpn::include_spec!("specs/invalid/E0310_upsample_overflow.yaml");

fn main() {}
