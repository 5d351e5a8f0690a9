fpn::include_spec!("specs/invalid/E0007_list_as_key.yaml");

fn main() {}
