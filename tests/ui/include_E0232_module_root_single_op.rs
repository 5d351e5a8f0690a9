fpn::include_spec!("specs/invalid/E0232_module_root_single_op.yaml");

fn main() {}
