// E0103 (E0002 in YAML): an empty invocation lacks every required key.
fpn::fpn! {}

fn main() {}
