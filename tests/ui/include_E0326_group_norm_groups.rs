fpn::include_spec!("specs/invalid/E0326_group_norm_groups.yaml");

fn main() {}
