fpn::include_spec!("specs/invalid/E0206_missing_block_argument.yaml");

fn main() {}
