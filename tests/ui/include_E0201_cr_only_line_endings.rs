fpn::include_spec!("specs/invalid/E0201_cr_only_line_endings.yaml");

fn main() {}
