fpn::include_spec!("specs/invalid/E0320_fixed_by_padding.yaml");

fn main() {}
