fpn::include_spec!("specs/invalid/E0230_output_padding_too_large.yaml");

fn main() {}
