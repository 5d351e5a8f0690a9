fpn::include_spec!("specs/invalid/E0231_pad_value_with_reflect.yaml");

fn main() {}
