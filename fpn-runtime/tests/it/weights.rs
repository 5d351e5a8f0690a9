//! Weight loading: scoped names, dtype conversion, and clear errors (never panics) for missing
//! tensors, wrong shapes, wrong dtypes, truncated and garbage files. Fixtures come from
//! `tools/runtime_fixtures.py` (`model.safetensors` is a PyTorch `state_dict` of
//! `nn.Sequential(Conv2d(3, 4, 3), BatchNorm2d(4))`; `dtypes.safetensors` holds f16/bf16/f64/int
//! tensors).

use fpn_runtime::ndarray::{ArrayD, IxDyn};
use fpn_runtime::{read_tensors, tensors_to_bytes, write_tensors, Error, Init, Weights};

fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn model() -> Weights {
    Weights::from_file(fixture_path("model.safetensors")).unwrap()
}

#[test]
fn names_are_sorted_and_complete() {
    let w = model();
    let names: Vec<&str> = w.names().collect();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "1.weight"
        ]
    );
    assert_eq!(w.len(), 7);
    assert!(!w.is_empty());
    assert_eq!(w.shape("0.weight"), Some(&[4usize, 3, 3, 3][..]));
    assert!(w.contains("1.weight"));
    let s = w.scope("1");
    assert_eq!(
        s.names().collect::<Vec<_>>(),
        ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]
    );
    assert_eq!(w.scope("").names().count(), 7);
}

#[test]
fn scopes_nest_and_errors_name_the_full_tensor() {
    // Build a file with FPN-style names.
    let t = ArrayD::from_shape_vec(IxDyn(&[2, 1, 1, 1]), vec![1.0f32, 2.0]).unwrap();
    let bytes = tensors_to_bytes(&[("fpn.inner_blocks.0.0.weight", t.view())]).unwrap();
    let w = Weights::from_bytes(bytes).unwrap();
    let inner = w.scope("fpn.inner_blocks.0");
    assert_eq!(inner.full_name("0.weight"), "fpn.inner_blocks.0.0.weight");
    let got = inner.get4("0.weight", [2, 1, 1, 1]).unwrap();
    assert_eq!(got.iter().copied().collect::<Vec<_>>(), [1.0, 2.0]);
    let nested = w.scope("fpn").scope("inner_blocks").scope("0").scope("0");
    assert_eq!(nested.prefix(), "fpn.inner_blocks.0.0");
    assert!(nested.contains("weight"));
    assert_eq!(nested.get("weight", &[2, 1, 1, 1]).unwrap(), t);
    assert_eq!(nested.tensor("weight").unwrap(), t);

    match inner.get1("0.bias", 2) {
        Err(e @ Error::MissingTensor { .. }) => {
            assert_eq!(
                e.to_string(),
                "the weights have no tensor named `fpn.inner_blocks.0.0.bias`."
            );
        }
        other => panic!("{other:?}"),
    }
    match inner.get4("0.weight", [2, 1, 3, 3]) {
        Err(e @ Error::WrongShape { .. }) => {
            let Error::WrongShape {
                name, expected, found, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(name, "fpn.inner_blocks.0.0.weight");
            assert_eq!(expected, &[2, 1, 3, 3]);
            assert_eq!(found, &[2, 1, 1, 1]);
            assert_eq!(
                e.to_string(),
                "tensor `fpn.inner_blocks.0.0.weight` of the weights has shape [2, 1, 1, 1] but shape [2, 1, 3, 3] was expected."
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(inner.get1("0.weight", 2), Err(Error::WrongShape { .. })));
}

#[test]
fn half_and_double_are_converted() {
    let w = Weights::from_file(fixture_path("dtypes.safetensors")).unwrap();
    for name in ["f16", "bf16", "f64"] {
        let got = w.get(name, &[2, 3]).unwrap();
        let want = w.get(&format!("{name}.ref"), &[2, 3]).unwrap();
        assert_eq!(got, want, "{name}");
    }
    let f32v = w.get("f32", &[2, 3]).unwrap();
    let f16v = w.get("f16", &[2, 3]).unwrap();
    let bf16v = w.get("bf16", &[2, 3]).unwrap();
    for ((a, b), c) in f32v.iter().zip(&f16v).zip(&bf16v) {
        assert!((a - b).abs() <= 1e-2 * a.abs().max(1.0));
        assert!((a - c).abs() <= 1e-2 * a.abs().max(1.0));
    }
}

#[test]
fn integer_dtypes_are_rejected_by_name() {
    let w = Weights::from_file(fixture_path("dtypes.safetensors")).unwrap();
    for (name, dtype) in [("i64", "I64"), ("i32", "I32"), ("u8", "U8")] {
        match w.get(name, &[2, 3]) {
            Err(e @ Error::WrongDtype { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(name) && msg.contains(dtype), "{msg}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(w.tensor(name), Err(Error::WrongDtype { .. })));
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = fixture_bytes("model.safetensors");
    for len in 0..bytes.len() {
        match Weights::from_bytes(bytes[..len].to_vec()) {
            Err(Error::CorruptWeights { reason }) => assert!(!reason.is_empty()),
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
    // One extra byte is also inconsistent with the header.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(Weights::from_bytes(longer), Err(Error::CorruptWeights { .. })));
}

#[test]
fn garbage_is_an_error() {
    let mut init = Init::new(7);
    for len in [0usize, 1, 7, 8, 9, 64, 1000] {
        let bytes: Vec<u8> = (0..len).map(|_| (init.next_u64() & 0xff) as u8).collect();
        assert!(
            matches!(Weights::from_bytes(bytes), Err(Error::CorruptWeights { .. })),
            "{len}"
        );
    }
    // A header length far beyond the file.
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    assert!(matches!(Weights::from_bytes(b), Err(Error::CorruptWeights { .. })));
    // Valid JSON, inconsistent offsets / shapes / dtypes.
    for header in [
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        r#"{"a":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,8]}}"#,
        r#"{"a":{"dtype":"NOPE","shape":[2],"data_offsets":[0,8]}}"#,
        r#"{"a":{"dtype":"F32","shape":[2]}}"#,
        r#"[1,2,3]"#,
        "{\"a\":\u{0}}",
    ] {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0u8; 8]);
        assert!(
            matches!(Weights::from_bytes(b), Err(Error::CorruptWeights { .. })),
            "{header}"
        );
    }
    // Random bit flips in a real file: an error or a valid file, never a panic.
    let good = fixture_bytes("model.safetensors");
    for i in 0..2000 {
        let mut b = good.clone();
        let pos = (init.next_u64() as usize) % b.len();
        b[pos] ^= 1 << (i % 8);
        if let Ok(w) = Weights::from_bytes(b) {
            for n in w.names() {
                let _ = w.tensor(n);
            }
        }
    }
}

#[test]
fn io_errors_name_the_path() {
    match Weights::from_file("/nonexistent/dir/w.safetensors") {
        Err(e @ Error::Io { .. }) => {
            assert!(e.to_string().contains("/nonexistent/dir/w.safetensors"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read_tensors("/nonexistent/x.safetensors"),
        Err(Error::Io { .. })
    ));
    let t = ArrayD::<f32>::zeros(IxDyn(&[1]));
    assert!(matches!(
        write_tensors("/nonexistent/dir/out.safetensors", &[("t", t.view())]),
        Err(Error::Io { .. })
    ));
}

#[test]
fn write_read_round_trip_and_duplicates() {
    let mut init = Init::new(3);
    let a = init.uniform(&[1, 3, 4, 5], -1.0, 1.0);
    let b = init.uniform(&[7], -1.0, 1.0);
    let scalar = init.uniform(&[], -1.0, 1.0);
    let dir = std::env::temp_dir().join(format!("fpn-runtime-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    write_tensors(&path, &[("input", a.view()), ("b", b.view()), ("s", scalar.view())]).unwrap();
    let back = read_tensors(&path).unwrap();
    assert_eq!(
        back,
        vec![
            ("b".to_string(), b.clone()),
            ("input".to_string(), a.clone()),
            ("s".to_string(), scalar.clone())
        ]
    );
    // A non-contiguous view is written in logical order.
    let at = a.view().reversed_axes();
    write_tensors(&path, &[("t", at.clone())]).unwrap();
    assert_eq!(read_tensors(&path).unwrap()[0].1, at.to_owned());
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(
        tensors_to_bytes(&[("x", b.view()), ("x", b.view())]),
        Err(Error::InvalidParams { .. })
    ));
}

#[test]
fn init_is_deterministic_with_pytorch_bounds() {
    let w1 = Init::new(42).conv_weight([8, 4, 3, 3]);
    let w2 = Init::new(42).conv_weight([8, 4, 3, 3]);
    assert_eq!(w1, w2);
    assert_ne!(w1, Init::new(43).conv_weight([8, 4, 3, 3]));
    let bound = 1.0 / (36f32).sqrt();
    assert!(w1.iter().all(|v| v.abs() <= bound));
    let big = Init::new(1).conv_weight([64, 16, 3, 3]);
    let max = big.iter().fold(0f32, |m, v| m.max(v.abs()));
    let big_bound = 1.0 / (144f32).sqrt();
    assert!(
        max <= big_bound && max > 0.99 * big_bound,
        "fills U(-1/sqrt(fan_in), 1/sqrt(fan_in))"
    );
    let mean = big.iter().sum::<f32>() / big.len() as f32;
    assert!(mean.abs() < 0.01);
    let b = Init::new(1).conv_bias(27, 10);
    assert_eq!(b.len(), 10);
    assert!(b.iter().all(|v| v.abs() <= 1.0 / 27f32.sqrt()));
    assert!(Init::new(1).conv_bias(0, 3).iter().all(|&v| v == 0.0));
    let u = Init::new(5).uniform(&[1000], 2.0, 3.0);
    assert!(u.iter().all(|&v| (2.0..3.0).contains(&v)));
}

#[test]
fn init_overflowing_shapes_are_errors_not_panics() {
    let mut init = Init::new(9);
    let huge = [usize::MAX, 2, 3, 3];
    assert!(matches!(init.try_conv_weight(huge), Err(Error::InputSize(_))));
    assert!(matches!(
        init.try_uniform(&[usize::MAX / 2, 3], 0.0, 1.0),
        Err(Error::InputSize(_))
    ));
    assert!(matches!(
        init.try_uniform(&[1 << 62], 0.0, 1.0),
        Err(Error::InputSize(_))
    ));
    assert!(matches!(init.try_conv_bias(1, usize::MAX), Err(Error::InputSize(_))));
    assert_eq!(init.conv_weight(huge).shape(), &[0, 0, 0, 0]);
    assert_eq!(init.uniform(&[usize::MAX, 5], 0.0, 1.0).shape(), &[0, 0]);
    assert_eq!(init.conv_bias(1, usize::MAX).len(), 0);
    // Failed calls draw nothing: the stream continues as if they never happened.
    assert_eq!(init.conv_weight([2, 2, 3, 3]), Init::new(9).conv_weight([2, 2, 3, 3]));
    assert_eq!(
        Init::new(4).try_conv_weight([4, 2, 3, 3]).unwrap(),
        Init::new(4).conv_weight([4, 2, 3, 3])
    );
}

/// Issue 11 items 8, 12, 14: the header is checked before the data is read, errors name the
/// file and the tensor, non-finite values and negative variances are refused.
mod hostile {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("fpn-weights-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn bytes_of(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
        let arrays: Vec<(&str, ArrayD<f32>)> = tensors
            .iter()
            .map(|(n, s, v)| (*n, ArrayD::from_shape_vec(IxDyn(s), v.clone()).unwrap()))
            .collect();
        let views: Vec<_> = arrays.iter().map(|(n, a)| (*n, a.view())).collect();
        tensors_to_bytes(&views).unwrap()
    }

    #[test]
    fn shape_and_offset_errors_name_the_tensor() {
        for (header, needle) in [
            (
                r#"{"conv.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                "`conv.weight`",
            ),
            (
                r#"{"bn.bias":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                "`bn.bias`",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,8]}}"#,
                "`x`",
            ),
        ] {
            let mut b = (header.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(header.as_bytes());
            b.extend_from_slice(&[0u8; 8]);
            match Weights::from_bytes(b.clone()) {
                Err(Error::CorruptWeights { reason }) => assert!(reason.contains(needle), "{reason}"),
                other => panic!("{header}: {other:?}"),
            }
            let p = tmp("named.safetensors", &b);
            let e = Weights::from_file(&p).unwrap_err();
            let _ = std::fs::remove_file(&p);
            let msg = e.to_string();
            assert!(matches!(e, Error::CorruptFile { .. }), "{e:?}");
            assert!(msg.contains("named.safetensors") && msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn a_huge_header_length_is_refused_before_reading() {
        let mut b = (1u64 << 40).to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        let p = tmp("huge.safetensors", &b);
        let e = Weights::from_file(&p).unwrap_err();
        let _ = std::fs::remove_file(&p);
        assert!(e.to_string().contains("header length"), "{e}");
    }

    #[test]
    fn directories_and_devices_are_io_errors() {
        let e = Weights::from_file(std::env::temp_dir()).unwrap_err();
        assert!(
            matches!(e, Error::Io { .. }) && e.to_string().contains("directory"),
            "{e}"
        );
        #[cfg(unix)]
        {
            let e = Weights::from_file("/dev/zero").unwrap_err();
            assert!(
                matches!(e, Error::Io { .. }) && e.to_string().contains("not a regular file"),
                "{e}"
            );
        }
    }

    #[test]
    fn non_finite_values_are_refused_by_name_unless_allowed() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let b = bytes_of(&[
                ("ok", vec![2], vec![1.0, 2.0]),
                ("head.weight", vec![3], vec![0.0, bad, bad]),
            ]);
            let w = Weights::from_bytes(b).unwrap();
            assert!(w.tensor("ok").is_ok());
            match w.tensor("head.weight") {
                Err(Error::NonFinite { name, count, index, .. }) => {
                    assert_eq!((name.as_str(), count, index), ("head.weight", 2, 1));
                }
                other => panic!("{other:?}"),
            }
            let w = w.allow_non_finite(true);
            assert!(w.tensor("head.weight").is_ok());
        }
    }

    #[test]
    fn a_negative_running_var_is_refused_even_when_non_finite_is_allowed() {
        let b = bytes_of(&[
            ("bn.running_var", vec![3], vec![1.0, -0.25, 2.0]),
            ("running_var", vec![1], vec![-1.0]),
            ("bn.other_var", vec![1], vec![-1.0]),
        ]);
        let w = Weights::from_bytes(b).unwrap().allow_non_finite(true);
        match w.get1("bn.running_var", 3) {
            Err(Error::NegativeVariance { name, index, value }) => {
                assert_eq!((name.as_str(), index, value), ("bn.running_var", 1, -0.25));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(w.tensor("running_var"), Err(Error::NegativeVariance { .. })));
        assert!(w.tensor("bn.other_var").is_ok());
    }
}

/// Every f16 and bf16 bit pattern widens to the value the IEEE formula gives, computed here in
/// f64 independently: `(-1)^s · 2^(e-bias) · (1 + m/2^p)`, subnormals `2^(1-bias) · m/2^p`.
#[test]
fn half_floats_widen_exactly() {
    fn reference(bits: u16, exp_bits: u32, man_bits: u32) -> f64 {
        let bias = (1i32 << (exp_bits - 1)) - 1;
        let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
        let e = i32::from((bits >> man_bits) & ((1 << exp_bits) - 1) as u16);
        let m = f64::from(bits & ((1u16 << man_bits) - 1));
        let scale = f64::from(1u32 << man_bits);
        if e == (1 << exp_bits) - 1 {
            return if m == 0.0 { sign * f64::INFINITY } else { f64::NAN };
        }
        if e == 0 {
            return sign * 2f64.powi(1 - bias) * (m / scale);
        }
        sign * 2f64.powi(e - bias) * (1.0 + m / scale)
    }
    for bits in 0..=u16::MAX {
        for (got, want, what) in [
            (fpn_runtime::f16_to_f32(bits), reference(bits, 5, 10), "f16"),
            (fpn_runtime::bf16_to_f32(bits), reference(bits, 8, 7), "bf16"),
        ] {
            if want.is_nan() {
                assert!(got.is_nan(), "{what} {bits:#06x}: {got} is not NaN");
            } else {
                assert_eq!(f64::from(got), want, "{what} {bits:#06x}");
                assert_eq!(got.is_sign_negative(), bits >> 15 == 1, "{what} {bits:#06x} sign");
            }
        }
    }
}

/// A tensor of the wrong shape is reported with the file it is in, by `require` and by `get`.
#[test]
fn wrong_shape_names_the_file() {
    let dir = std::env::temp_dir().join(format!("fpn-wrong-shape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ckpt.safetensors");
    let t = fpn_runtime::Tensor::zeros((2, 1, 1, 1));
    fpn_runtime::write_tensors(&path, &[("a.weight", t.view().into_dyn())]).expect("write");
    let w = fpn_runtime::Weights::from_file(&path).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    let file = format!("`{}`", path.display());
    let e = w.require(&[("a.weight", &[2, 1, 3, 3])]).expect_err("wrong shape");
    assert!(e.to_string().contains(&format!("`a.weight` of {file}")), "{e}");
    let e = w.get4("a.weight", [2, 1, 3, 3]).expect_err("wrong shape");
    assert!(e.to_string().contains(&format!("`a.weight` of {file}")), "{e}");
}
