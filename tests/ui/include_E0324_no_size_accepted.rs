fpn::include_spec!("specs/invalid/E0324_no_size_accepted.yaml");

fn main() {}
