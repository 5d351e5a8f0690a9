fpn::include_spec!("specs/invalid/E0321_seed000_4x4.yaml");

fn main() {}
