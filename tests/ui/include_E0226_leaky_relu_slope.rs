fpn::include_spec!("specs/invalid/E0226_leaky_relu_slope.yaml");

fn main() {}
