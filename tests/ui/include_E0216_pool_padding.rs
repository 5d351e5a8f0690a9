fpn::include_spec!("specs/invalid/E0216_pool_padding.yaml");

fn main() {}
