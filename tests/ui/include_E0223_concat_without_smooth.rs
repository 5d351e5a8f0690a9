fpn::include_spec!("specs/invalid/E0223_concat_without_smooth.yaml");

fn main() {}
