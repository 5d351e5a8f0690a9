"""Deterministic weights both the fixture scripts and tests/it/parity.rs compute exactly.

For checkpoints over the fixture size limit (2 MB) the weights are not stored but made by a
formula. For the `t`-th tensor in sorted-name order and element `i` (row-major),
`v = ((i·7919 + t·104729) mod 2048 − 1024) / 1024`, then by kind:

    4-D (a conv weight)                 v · 2^−e, e = ceil(log2(sqrt(fan_in)))
    P.weight, P.running_var exists      1 + v/4      (batch norm gamma)
    P.bias, P.running_var exists        v/8          (batch norm beta)
    P.running_mean                      v/8
    P.running_var                       1 + v/2
    any other 1-D tensor (a bias)       v/8

Every value is a short dyadic fraction, exact in float32 on both sides; the Rust side is
`formula_weights` in tests/it/parity.rs. `store_run` writes a run in the layout the Rust side's
`formula_parity` reads.
"""
import math

import torch


def formula(t, name, shape, names):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    v = ((i * 7919 + t * 104729) % 2048 - 1024).to(torch.float64) / 1024
    prefix = name.rsplit(".", 1)[0]
    bn = f"{prefix}.running_var" in names
    if len(shape) == 4:
        fan_in = math.prod(shape[1:])
        v = v * 2.0 ** -math.ceil(math.log2(math.sqrt(fan_in)))
    elif name.endswith(".running_var"):
        v = 1 + v / 2
    elif bn and name.endswith(".weight"):
        v = 1 + v / 4
    elif len(shape) == 1:
        v = v / 8
    else:
        raise SystemExit(f"no formula for {name} {shape}")
    return v.reshape(shape).to(torch.float32)


def weights(shapes):
    """`{name: tensor}` for `{name: shape}` (sorted-name order decides `t`)."""
    names = set(shapes)
    return {k: formula(t, k, tuple(shapes[k]), names) for t, k in enumerate(sorted(shapes))}


def probe(ws):
    """The first 8 values of every tensor, in sorted-name order (checked by the Rust side)."""
    return torch.cat([ws[k].flatten()[:8] for k in sorted(ws)]).contiguous()


def store_run(out, key, t32, t64):
    """Stores a package's float32 run as `key` and its float64 run as `key_f64hi` + `key_f64lo`
    (two float32 tensors whose sum keeps 48 bits, so the comparison does not round the reference
    to float32); prints the float32 run's error."""
    hi = t64.float()
    out[key] = t32.contiguous()
    out[f"{key}_f64hi"] = hi.contiguous()
    out[f"{key}_f64lo"] = (t64 - hi.double()).float().contiguous()
    err = ((t32.double() - t64).abs().max() / t64.abs().max()).item()
    print(f"{key} {tuple(t32.shape)}: max|y| {t64.abs().max().item():.3f}, float32 vs float64 {err:.2e}")
