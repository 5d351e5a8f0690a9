fpn::include_spec!("specs/invalid/E0003_number_too_large.yaml");

fn main() {}
