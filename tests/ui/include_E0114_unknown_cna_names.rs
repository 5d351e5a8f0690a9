fpn::include_spec!("specs/invalid/E0114_unknown_cna_names.yaml");

fn main() {}
