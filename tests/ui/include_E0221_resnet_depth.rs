fpn::include_spec!("specs/invalid/E0221_resnet_depth.yaml");

fn main() {}
