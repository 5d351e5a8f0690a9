fpn::include_spec!("specs/invalid/E0323_fixed_by_padding.yaml");

fn main() {}
