fpn::include_spec!("specs/invalid/E0106_two_ops.yaml");

fn main() {}
