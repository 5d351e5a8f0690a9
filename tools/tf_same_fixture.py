#!/usr/bin/env python3
"""Make the parity fixture of tests/specs/tf_same_ops.yaml (tests/it/parity.rs `tf_same_ops`).

Each node of the spec is the layer timm builds for TensorFlow's `SAME` padding, named as the
node: `create_conv2d(4, out, k, stride=s, dilation=d, groups=g, bias=b, padding='same')`
(`Conv2dSame` with a stride, a static `nn.Conv2d` padding otherwise) and
`create_pool2d('max' | 'avg', k, stride=s, padding='same')` (`MaxPool2dSame`,
`AvgPool2dSame`, which pad -inf / zeros by the input's size then pool without padding), all on
one input `x` of 4 channels. Sizes `7x8`, `12x13`, `2x3` (the padding symmetric, asymmetric,
and larger than the input). Random weights (PyTorch's init, biases U(-0.5, 0.5)); float32 and
float64 runs, the float64 one as hi + lo float32 tensors (tools/formula_weights.py's `store_run`).

Writes tests/fixtures/parity/tf_same_ops.safetensors: the state_dict (`conv_k3s2.weight`, …),
inputs `x_<tag>`, outputs `<node>_<tag>` with `_f64hi`, `_f64lo`.

Run from the repository root:  python3 tools/tf_same_fixture.py
Made with timm 1.0.31, torch 2.15.0 (CPU).
"""
import os

import torch
import torch.nn as nn
from timm.layers import create_conv2d, create_pool2d

from formula_weights import store_run
from safetensors_fallback import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity", "tf_same_ops.safetensors")
SIZES = {"7x8": (7, 8), "12x13": (12, 13), "2x3": (2, 3)}


def layers():
    """The spec's nodes, in its order."""
    c = lambda out, k, **kw: create_conv2d(4, out, k, padding="same", **kw)
    return nn.ModuleDict(
        {
            "conv_k3s2": c(5, 3, stride=2, bias=True),
            "conv_k1s2": c(5, 1, stride=2, bias=True),
            "conv_k2s3": c(6, 2, stride=3, bias=False),
            "conv_dw_k3s3d2": c(4, 3, stride=3, dilation=2, groups=4, bias=True),
            "conv_k5x2s21": c(3, (5, 2), stride=(2, 1), bias=True),
            "conv_k4s1": c(3, 4, bias=True),
            "max_k3s2": create_pool2d("max", 3, stride=2, padding="same"),
            "max_k2s2d2": create_pool2d("max", 2, stride=2, padding="same", dilation=2),
            "max_k2s1": create_pool2d("max", 2, stride=1, padding="same"),
            "avg_k3s2": create_pool2d("avg", 3, stride=2, padding="same"),
            "avg_k4s3": create_pool2d("avg", 4, stride=3, padding="same", count_include_pad=False),
        }
    )


def main():
    torch.manual_seed(3)
    m32 = layers().eval()
    with torch.no_grad():
        for mod in m32.values():
            if isinstance(mod, nn.Conv2d) and mod.bias is not None:
                mod.bias.uniform_(-0.5, 0.5)
    m64 = layers().eval()
    m64.load_state_dict(m32.state_dict())
    m64 = m64.double()
    for name, mod in m32.items():
        print(f"{name}: {type(mod).__name__}")
    out = {k: v.contiguous() for k, v in m32.state_dict().items()}
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for tag, (h, w) in SIZES.items():
            x = torch.randn(1, 4, h, w, generator=g)
            out[f"x_{tag}"] = x
            for name in m32:
                store_run(out, f"{name}_{tag}", m32[name](x), m64[name](x.double()))
    save_file(out, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
