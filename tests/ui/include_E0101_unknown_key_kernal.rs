fpn::include_spec!("specs/invalid/E0101_unknown_key_kernal.yaml");

fn main() {}
