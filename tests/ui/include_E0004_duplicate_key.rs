fpn::include_spec!("specs/invalid/E0004_duplicate_key.yaml");

fn main() {}
