fpn::include_spec!("specs/invalid/E0102_stride_not_integer.yaml");

fn main() {}
