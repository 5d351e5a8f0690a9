fpn::include_spec!("specs/invalid/E0210_keyword_output_name.yaml");

fn main() {}
