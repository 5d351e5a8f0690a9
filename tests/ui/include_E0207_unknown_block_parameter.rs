fpn::include_spec!("specs/invalid/E0207_unknown_block_parameter.yaml");

fn main() {}
