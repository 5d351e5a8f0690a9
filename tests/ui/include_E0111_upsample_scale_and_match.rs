fpn::include_spec!("specs/invalid/E0111_upsample_scale_and_match.yaml");

fn main() {}
