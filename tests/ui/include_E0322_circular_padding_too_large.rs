fpn::include_spec!("specs/invalid/E0322_circular_padding_too_large.yaml");

fn main() {}
