fpn::include_spec!("specs/invalid/E0232_module_path.yaml");

fn main() {}
