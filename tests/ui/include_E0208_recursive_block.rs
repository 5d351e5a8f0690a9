fpn::include_spec!("specs/invalid/E0208_recursive_block.yaml");

fn main() {}
