fpn::include_spec!("specs/invalid/E0304_add_channel_mismatch.yaml");

fn main() {}
