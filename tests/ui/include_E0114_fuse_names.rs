fpn::include_spec!("specs/invalid/E0114_fuse_names.yaml");

fn main() {}
