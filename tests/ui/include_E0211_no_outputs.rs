fpn::include_spec!("specs/invalid/E0211_no_outputs.yaml");

fn main() {}
