fpn::include_spec!("specs/invalid/E0006_alias_bomb.yaml");

fn main() {}
