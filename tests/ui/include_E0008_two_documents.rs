fpn::include_spec!("specs/invalid/E0008_two_documents.yaml");

fn main() {}
