fpn::include_spec!("specs/invalid/E0329_split_sizes_sum.yaml");

fn main() {}
