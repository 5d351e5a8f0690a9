fpn::include_spec!("specs/invalid/E0320_fixed_width_with_symbol.yaml");

fn main() {}
