// After an error, later code that names the model type should not add "cannot find type"
// errors to the one real mistake (as `fpn!` does with its stub type).
fpn::include_spec!("specs/invalid/E0101_unknown_key_kernal.yaml");

fn load(model: Typo) -> Typo {
    model
}

fn main() {
    let _ = load;
}
