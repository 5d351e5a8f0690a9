fpn::include_spec!("specs/invalid/E0204_parameter_outside_block.yaml");

fn main() {}
