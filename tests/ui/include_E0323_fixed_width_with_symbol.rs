fpn::include_spec!("specs/invalid/E0323_fixed_width_with_symbol.yaml");

fn main() {}
