fpn::include_spec!("specs/invalid/E0323_seed000_30x30.yaml");

fn main() {}
