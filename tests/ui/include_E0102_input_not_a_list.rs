fpn::include_spec!("specs/invalid/E0102_input_not_a_list.yaml");

fn main() {}
