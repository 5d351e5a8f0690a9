fpn::include_spec!("specs/invalid/E0311_module_shared_different_shapes.yaml");

fn main() {}
