fpn::include_spec!("specs/invalid/E0243_empty_part_in_name.yaml");

fn main() {}
