fpn::include_spec!("specs/invalid/E0224_unknown_size_symbol.yaml");

fn main() {}
