fpn::include_spec!("specs/invalid/E0112_unknown_upsample_mode.yaml");

fn main() {}
