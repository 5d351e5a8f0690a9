#!/usr/bin/env python3
"""Make the parity fixture of specs/yolov8.yaml at its default scale n (tests/it/parity.rs
`yolov8n_backbone_neck`; the other scales: tools/yolov8_family_counts.py).

The model is ultralytics' own: `DetectionModel("yolov8n.yaml")` built offline (YOLO_OFFLINE=1,
no download), layers 0-21 run as ultralytics' `_predict_once` runs them, outputs of layers 15,
18 and 21 (the maps that feed `Detect`). Its state_dict without `model.22` (Detect) and
`num_batches_tracked` has exactly the spec's tensors; this checks names, shapes and the
parameter count (2 259 536) first.

Weights: a full checkpoint is 9 MB, over the fixture limit, so the weights are not stored but
made by tools/formula_weights.py's formula, which `tests/it/parity.rs` (`formula_weights`)
computes exactly too; it compares them with the `weights_probe` stored here (the first 8
values of every tensor), so a mismatch is caught as such. Inputs (stored) are random normal. Runs in eval mode at two sizes, 96×128 and 89×121
(both accepted: H, W mod 32 in {0, 25..31}), in float32 and float64, and writes
tests/fixtures/parity/yolov8n.safetensors: `x_96x128`, `p3_96x128` (float32 run),
`p3_96x128_f64hi` + `p3_96x128_f64lo` (the float64 run as a sum of two float32 tensors, so the
comparison sees 48 bits of it), … and `weights_probe` (float32, every tensor's first 8 values in
sorted-name order).

Run from the repository root:  python3 tools/yolov8_fixture.py
`--full` runs the nominal 640×640 and the odd accepted 633×607 instead and writes
tools/out/yolov8n_640.safetensors (about 25 MB, not committed), which the optional test
`yolov8n_backbone_neck_640` reads when it is there.
Made with ultralytics 8.4.190 and torch 2.15.0 (CPU).
"""
import math
import os
import sys

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
from ultralytics.nn.tasks import DetectionModel

from formula_weights import probe, store_run, weights
from safetensors_fallback import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity", "yolov8n.safetensors")
SIZES = [(96, 128), (89, 121)]
FULL = "--full" in sys.argv[1:]
if FULL:
    OUT = os.path.join(ROOT, "tools", "out", "yolov8n_640.safetensors")
    SIZES = [(640, 640), (633, 607)]
PARAMS = 2259536


def run(model, x):
    """Layers 0-21 as `BaseModel._predict_once` runs them; the inputs of Detect."""
    y = []
    for m in model.model[:22]:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        x = m(x)
        y.append(x)
    return y[15], y[18], y[21]


def main():
    model = DetectionModel("yolov8n.yaml", verbose=False).eval()
    sd = model.state_dict()
    keep = sorted(k for k in sd if not k.startswith("model.22.") and not k.endswith("num_batches_tracked"))
    total = sum(sd[k].numel() for k in keep if not k.endswith(("running_mean", "running_var")))
    assert total == PARAMS, f"{total} parameters, the spec has {PARAMS}"
    new = weights({k: tuple(sd[k].shape) for k in keep})
    model.load_state_dict(new, strict=False)
    out = {"weights_probe": probe(new)}
    g = torch.Generator().manual_seed(8)
    m64 = DetectionModel("yolov8n.yaml", verbose=False).eval()
    m64.load_state_dict(new, strict=False)
    m64 = m64.double()
    with torch.no_grad():
        for h, w in SIZES:
            x = torch.randn(1, 3, h, w, generator=g)
            tag = f"{h}x{w}"
            out[f"x_{tag}"] = x.contiguous()
            for name, t32, t64 in zip(("p3", "p4", "p5"), run(model, x), run(m64, x.double())):
                store_run(out, f"{name}_{tag}", t32, t64)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(out, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes), {len(keep)} tensors, {total} parameters")


if __name__ == "__main__":
    main()
