fpn::include_spec!("specs/invalid/E0219_same_padding_stride2.yaml");

fn main() {}
