fpn::include_spec!("specs/invalid/E0009_not_utf8.yaml");

fn main() {}
