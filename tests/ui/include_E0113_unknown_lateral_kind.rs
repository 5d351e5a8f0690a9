fpn::include_spec!("specs/invalid/E0113_unknown_lateral_kind.yaml");

fn main() {}
