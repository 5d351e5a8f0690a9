fpn::include_spec!("specs/invalid/E0108_unknown_padding_mode.yaml");

fn main() {}
