#!/usr/bin/env python3
"""Make the parity fixture of specs/fcos_head.yaml (tests/it/parity.rs `fcos_head`).

The model is torchvision's own `fcos_resnet50_fpn(weights=None, weights_backbone=None)`; only
its `head` runs, on five 256-channel maps shaped like P3-P7. Its state_dict under `head.`
(4 946 016 parameters) must be the spec's; checked first. Per level, the outputs are what the
head computes before flattening: `cls_logits(conv(x))`, `relu(bbox_reg(conv(x)))` and
`bbox_ctrness(conv(x))` with the classification and regression towers.

Weights from tools/formula_weights.py's formula (a GroupNorm's weight and bias are plain 1-D:
`v/8`), checked by tests/it/parity.rs through `weights_probe`. Inputs random normal, two sets
of sizes: `a` (P3 8×10 … P7 1×1) and `b` (7×9 … 1×1). Float32 and float64 runs, the float64
one stored as hi + lo float32 tensors, in tests/fixtures/parity/fcos_head.safetensors:
inputs `p3_a` … `p7_b` and outputs `cls_p3_a`, `cls_p3_a_f64hi`, `cls_p3_a_f64lo`, … .

Run from the repository root:  python3 tools/fcos_head_fixture.py
Made with torchvision 0.30 and torch 2.15.0 (CPU).
"""
import os

import torch
from torchvision.models.detection import fcos_resnet50_fpn

from formula_weights import probe, store_run, weights
from safetensors_fallback import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity", "fcos_head.safetensors")
SIZES = {"a": [(8, 10), (4, 5), (2, 3), (1, 2), (1, 1)], "b": [(7, 9), (4, 5), (2, 3), (1, 2), (1, 1)]}
PARAMS = 4946016


def outputs(head, xs):
    out = {}
    for lvl, x in zip(range(3, 8), xs):
        c = head.classification_head
        r = head.regression_head
        feat = r.conv(x)
        out[f"cls_p{lvl}"] = c.cls_logits(c.conv(x))
        out[f"box_p{lvl}"] = torch.relu(r.bbox_reg(feat))
        out[f"ctr_p{lvl}"] = r.bbox_ctrness(feat)
    return out


def main():
    model = fcos_resnet50_fpn(weights=None, weights_backbone=None).eval()
    sd = {k: v for k, v in model.state_dict().items() if k.startswith("head.")}
    total = sum(v.numel() for v in sd.values())
    assert total == PARAMS, f"{total} parameters, the spec has {PARAMS}"
    new = weights({k: tuple(v.shape) for k, v in sd.items()})
    model.load_state_dict(new, strict=False)
    h32 = model.head
    m64 = fcos_resnet50_fpn(weights=None, weights_backbone=None).eval()
    m64.load_state_dict(new, strict=False)
    h64 = m64.head.double()
    out = {"weights_probe": probe(new)}
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for tag, sizes in SIZES.items():
            xs = [torch.randn(1, 256, h, w, generator=g) for h, w in sizes]
            for lvl, x in zip(range(3, 8), xs):
                out[f"p{lvl}_{tag}"] = x.contiguous()
            o32, o64 = outputs(h32, xs), outputs(h64, [x.double() for x in xs])
            for k in o32:
                store_run(out, f"{k}_{tag}", o32[k], o64[k])
    save_file(out, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes), {len(sd)} tensors, {total} parameters")


if __name__ == "__main__":
    main()
