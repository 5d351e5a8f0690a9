fpn::include_spec!("specs/invalid/E0201_bom_first_line.yaml");

fn main() {}
