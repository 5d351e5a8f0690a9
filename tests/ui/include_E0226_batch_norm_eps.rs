fpn::include_spec!("specs/invalid/E0226_batch_norm_eps.yaml");

fn main() {}
