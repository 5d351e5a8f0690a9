fpn::include_spec!("specs/invalid/E0212_negative_input_size.yaml");

fn main() {}
