fpn::include_spec!("specs/invalid/E0113_bifpn_names_mmdet.yaml");

fn main() {}
