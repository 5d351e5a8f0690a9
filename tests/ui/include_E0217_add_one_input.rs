fpn::include_spec!("specs/invalid/E0217_add_one_input.yaml");

fn main() {}
