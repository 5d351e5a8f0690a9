fpn::include_spec!("specs/invalid/E0225_size_two_symbols.yaml");

fn main() {}
