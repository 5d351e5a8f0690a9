fpn::include_spec!("specs/invalid/E0225_size_not_whole.yaml");

fn main() {}
