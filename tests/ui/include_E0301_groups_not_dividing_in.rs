fpn::include_spec!("specs/invalid/E0301_groups_not_dividing_in.yaml");

fn main() {}
