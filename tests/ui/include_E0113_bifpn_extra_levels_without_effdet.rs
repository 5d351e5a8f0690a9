fpn::include_spec!("specs/invalid/E0113_bifpn_extra_levels_without_effdet.yaml");

fn main() {}
