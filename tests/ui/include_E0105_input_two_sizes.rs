fpn::include_spec!("specs/invalid/E0105_input_two_sizes.yaml");

fn main() {}
