fpn::include_spec!("specs/invalid/E0104_bad_reference.yaml");

fn main() {}
