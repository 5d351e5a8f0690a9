fpn::include_spec!("specs/invalid/E0229_derived_output_fields.yaml");

fn main() {}
