fpn::include_spec!("specs/invalid/E0220_groups_not_dividing_out.yaml");

fn main() {}
