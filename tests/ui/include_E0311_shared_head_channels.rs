fpn::include_spec!("specs/invalid/E0311_shared_head_channels.yaml");

fn main() {}
