fpn::include_spec!("specs/invalid/E0002_empty.yaml");

fn main() {}
