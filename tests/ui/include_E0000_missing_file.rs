// E0000: the spec file does not exist.
fpn::include_spec!("specs/invalid/no_such_spec.yaml");

fn main() {}
