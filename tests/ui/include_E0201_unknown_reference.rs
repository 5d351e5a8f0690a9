fpn::include_spec!("specs/invalid/E0201_unknown_reference.yaml");

fn main() {}
