fpn::include_spec!("specs/invalid/E0103_missing_out.yaml");

fn main() {}
