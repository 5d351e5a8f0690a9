// `layout:` takes `blocked` or `nchw` (`fpn gen --blocked`).
fpn::include_spec!("specs/seed000_pyramid_block.yaml", layout: fast);

fn main() {}
