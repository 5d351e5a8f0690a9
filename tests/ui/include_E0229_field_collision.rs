fpn::include_spec!("specs/invalid/E0229_field_collision.yaml");

fn main() {}
