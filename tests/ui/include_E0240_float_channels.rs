fpn::include_spec!("specs/invalid/E0240_float_channels.yaml");

fn main() {}
