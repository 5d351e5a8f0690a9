fpn::include_spec!("specs/invalid/E0323_seed000_symbolic_height.yaml");

fn main() {}
