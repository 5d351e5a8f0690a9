fpn::include_spec!("specs/invalid/E0102_unknown_function.yaml");

fn main() {}
