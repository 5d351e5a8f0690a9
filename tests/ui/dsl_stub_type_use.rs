// After an error, the macro still emits `pub struct Tiny;`: naming the type in later code
// must not add "cannot find type `Tiny`" errors to the one real mistake.
fpn::fpn! {
    name: Tiny,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernal: 3 } } },
    outputs: [stem],
}

struct App {
    _model: Tiny,
}

fn load(model: Tiny) -> App {
    App { _model: model }
}

fn main() {
    let _ = load;
}
