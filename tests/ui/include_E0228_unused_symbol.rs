fpn::include_spec!("specs/invalid/E0228_unused_symbol.yaml");

fn main() {}
