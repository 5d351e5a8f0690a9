fpn::include_spec!("specs/invalid/E0329_chunk_not_dividing.yaml");

fn main() {}
