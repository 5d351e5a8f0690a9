fpn::include_spec!("specs/invalid/E0102_padding_name_typo.yaml");

fn main() {}
