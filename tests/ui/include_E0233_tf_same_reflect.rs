fpn::include_spec!("specs/invalid/E0233_tf_same_reflect.yaml");

fn main() {}
