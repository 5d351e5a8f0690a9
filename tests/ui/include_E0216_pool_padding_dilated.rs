fpn::include_spec!("specs/invalid/E0216_pool_padding_dilated.yaml");

fn main() {}
