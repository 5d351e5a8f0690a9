// `set:` names a parameter the spec does not have (`fpn check --set widht=0.5`).
fpn::include_spec!("specs/invalid/E0241_unknown_set_name.yaml", set: {widht: 0.5});

fn main() {}
