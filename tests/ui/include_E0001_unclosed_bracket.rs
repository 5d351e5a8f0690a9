fpn::include_spec!("specs/invalid/E0001_unclosed_bracket.yaml");

fn main() {}
