fpn::include_spec!("specs/invalid/E0323_seed000_31x31.yaml");

fn main() {}
