fpn::include_spec!("specs/invalid/E0109_unknown_activation.yaml");

fn main() {}
