fpn::include_spec!("specs/invalid/E0218_pyramid_in_sequence.yaml");

fn main() {}
