fpn::include_spec!("specs/invalid/E0212_zero_out_channels.yaml");

fn main() {}
