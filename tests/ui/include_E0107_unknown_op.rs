fpn::include_spec!("specs/invalid/E0107_unknown_op.yaml");

fn main() {}
