fpn::include_spec!("specs/invalid/E0110_activation_with_arguments.yaml");

fn main() {}
