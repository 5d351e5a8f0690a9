fpn::include_spec!("specs/invalid/E0233_tf_same_pool_ceil_mode.yaml");

fn main() {}
