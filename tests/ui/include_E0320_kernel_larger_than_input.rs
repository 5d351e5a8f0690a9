fpn::include_spec!("specs/invalid/E0320_kernel_larger_than_input.yaml");

fn main() {}
