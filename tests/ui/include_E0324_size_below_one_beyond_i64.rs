fpn::include_spec!("specs/invalid/E0324_size_below_one_beyond_i64.yaml");

fn main() {}
