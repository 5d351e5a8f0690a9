fpn::include_spec!("specs/invalid/E0324_joint_no_size.yaml");

fn main() {}
