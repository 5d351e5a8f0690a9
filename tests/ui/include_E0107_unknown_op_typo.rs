fpn::include_spec!("specs/invalid/E0107_unknown_op_typo.yaml");

fn main() {}
