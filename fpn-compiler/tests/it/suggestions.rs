//! The "change a padding" suggestions of E0320–E0323 are real fixes: applying the suggested
//! edit to the spec text makes it compile at the given size, with the accepted set the
//! suggestion names; and a size no single padding change can fix (seed 000 at 30×30) gets none.

use fpn_compiler::span::SourceMap;

fn errors(text: &str) -> String {
    let mut sm = SourceMap::new();
    match fpn_compiler::compile_yaml(&mut sm, "t.yaml", text) {
        Ok(_) => panic!("expected errors:\n{text}"),
        Err(d) => fpn_compiler::render(&d, &sm),
    }
}

/// The `H` set of `text` with its input made `[C, H, W]`.
fn accepted(text: &str, fixed: &str, channels: i64) -> String {
    let sym = text.replace(fixed, &format!("[{channels}, H, W]"));
    let mut sm = SourceMap::new();
    match fpn_compiler::compile_yaml(&mut sm, "t.yaml", &sym) {
        Ok(c) => c.sizes[0].as_ref().expect("analysed").describe(),
        Err(d) => panic!("{}", fpn_compiler::render(&d, &sm)),
    }
}

fn compiles(text: &str) {
    let mut sm = SourceMap::new();
    if let Err(d) = fpn_compiler::compile_yaml(&mut sm, "t.yaml", text) {
        panic!("{}\n{text}", fpn_compiler::render(&d, &sm));
    }
}

const ROUNDING: &str = "name: Rounding
inputs:
  x: [3, 31, 31]
nodes:
  pool: {from: x, max_pool: {kernel: 2}}
  down: {from: x, conv: {out: 3, kernel: 3, stride: 2, padding: 1}}
  m: {add: [pool, down]}
outputs: [m]
";

#[test]
fn suggested_paddings_fix_the_spec() {
    let e = errors(ROUNDING);
    let fixes = [
        (
            "set `ceil_mode: true` on `pool`",
            ("max_pool: {kernel: 2}", "max_pool: {kernel: 2, ceil_mode: true}"),
        ),
        ("set `padding: 0` on `down`", ("padding: 1}", "padding: 0}")),
    ];
    for (said, (from, to)) in fixes {
        assert!(e.contains(said), "{e}");
        let fixed = ROUNDING.replace(from, to);
        compiles(&fixed);
        let set = accepted(&fixed, "[3, 31, 31]", 3);
        assert!(
            e.contains(&format!("{said}: then 31×31 works, and the spec accepts {set}")),
            "{set}\n{e}"
        );
    }
}

#[test]
fn a_block_body_edit_changes_every_use() {
    // the block (an unpadded 3×3 conv, −2 per use) is used twice: 32 → 30 → 28 against 32.
    // The suggestion edits its body, so both uses change, and says so.
    let text = "name: Twice
blocks:
  shrink:
    params: [c]
    body:
      - conv: {out: c, kernel: 3, padding: 0}
inputs:
  x: [3, 32, 32]
nodes:
  a: {from: x, shrink: {c: 3}}
  b: {from: a, shrink: {c: 3}}
  q: {from: x, conv: {out: 3, kernel: 1}}
  m: {add: [b, q]}
outputs: [m]
";
    let e = errors(text);
    assert!(
        e.contains("set `padding: 1` on `b` (it is used 2 times; each changes): then 32×32 works, and the spec accepts H ∈ {1, 2, 3, 4, 5, 6, …} = every size ≥ 1"),
        "{e}"
    );
    compiles(&text.replace("padding: 0", "padding: 1"));
}

#[test]
fn seed000_at_30_has_no_padding_fix() {
    // 30 → 15 is odd, so the inner skip (down 2, up 2) never matches it; every ±1 padding
    // change breaks another merge. Offering none is the verified answer.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/seed000_pyramid_block.yaml"
    ))
    .expect("spec")
    .replace("  size: 32", "  size: 30"); // the input is `[cin, size, size]`
    assert!(text.contains("  size: 30"), "{text}");
    let e = errors(&text);
    assert!(e.contains("E0323"), "{e}");
    assert!(!e.contains("padding: "), "{e}");
    assert!(!e.contains("ceil_mode"), "{e}");
}
