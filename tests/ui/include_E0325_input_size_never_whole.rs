fpn::include_spec!("specs/invalid/E0325_input_size_never_whole.yaml");

fn main() {}
