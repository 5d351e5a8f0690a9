fpn::include_spec!("specs/invalid/E0215_expansion_too_large.yaml");

fn main() {}
