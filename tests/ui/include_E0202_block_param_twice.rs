fpn::include_spec!("specs/invalid/E0202_block_param_twice.yaml");

fn main() {}
