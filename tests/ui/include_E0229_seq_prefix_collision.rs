fpn::include_spec!("specs/invalid/E0229_seq_prefix_collision.yaml");

fn main() {}
