fpn::include_spec!("specs/invalid/E0324_size_overflows_i64.yaml");

fn main() {}
