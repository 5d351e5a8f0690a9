fpn::include_spec!("specs/invalid/E0323_pool_vs_conv_rounding.yaml");

fn main() {}
