#!/usr/bin/env python3
"""Make the parity fixture of specs/effdet_d0_bifpn.yaml (tests/it/parity.rs `effdet_d0_bifpn`).

The model is effdet's own `create_model('tf_efficientdet_d0', pretrained=False,
pretrained_backbone=False)`; only its BiFPN, `model.fpn`, runs, on three random maps shaped like
EfficientNet-B0's strides 8/16/32 (40, 112 and 320 channels). Its `state_dict` (228 tensors
besides the `num_batches_tracked` counters, 196 281 parameters) must be the spec's; checked first.

effdet builds the BiFPN for one image size (its upsamples are `Interpolate2d(size=...)` of the
configured levels), so each run builds the model for its image size (`image_size=`) and loads the
same `state_dict`, as a user does for another input size. Sizes (C3 … P7, each half the one below
rounded up, as the TensorFlow-`SAME` backbone and the pools give them):

  * `16x16`  image 128×128: 16, 8, 4, 2, 1 (the 512 nominal's geometry at a quarter)
  * `17x17`  image 136×136: 17, 9, 5, 3, 2 (odd: every `SAME` pool pads asymmetrically)
  * `15x11`  image 120×88:  15×11, 8×6, 4×3, 2×2, 1×1
  * with `--full`: `64x64`, the nominal 512×512 (64, 32, 16, 8, 4), written to
    tools/out/effdet_d0_bifpn_512.safetensors (not committed: 5 MB; `effdet_d0_bifpn_nominal`
    reads it when present)

Random weights: convs keep effdet's own init (`_init_weight`), conv biases U(-0.1, 0.1) (effdet
zeroes them), batch norms weight U(0.5, 1.5), bias U(-0.5, 0.5), running_mean U(-0.3, 0.3),
running_var U(0.5, 2), fusion `edge_weights` U(0.2, 1.5) with one set negative
(`cell.1.fnode.4.combine.edge_weights[0] = -0.3`, which effdet's `relu` zeroes). The state_dict
is saved untouched (float32 plus the int64 `num_batches_tracked`), so the test loads effdet's
names as they are. Float32 and float64 runs (eval mode); the float64 one stored as hi + lo
float32 tensors (tools/formula_weights.py's `store_run`). Writes to tests/fixtures/parity/:

  * effdet_d0_bifpn.weights.safetensors   `model.fpn.state_dict()`
  * effdet_d0_bifpn.safetensors           inputs `c3_<tag>`, `c4_<tag>`, `c5_<tag>`; outputs
                                          `p3_<tag>` … `p7_<tag>` (float32) with `_f64hi`,
                                          `_f64lo`

Run from the repository root:  python3 tools/effdet_fixture.py [--full]  (deterministic: seeded)
Made with effdet 0.4.1, timm 1.0.31, torch 2.15.0 (CPU).
"""
import os
import sys

import torch
from effdet import create_model

from formula_weights import store_run
from safetensors_fallback import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "parity")
CHANNELS = (40, 112, 320)
PARAMS = 196281
TENSORS = 228
# tag: image size (H, W)
SIZES = {"16x16": (128, 128), "17x17": (136, 136), "15x11": (120, 88)}
FULL = {"64x64": (512, 512)}


def fpn_for(image_size, state_dict=None, double=False):
    """effdet's BiFPN of tf_efficientdet_d0 built for `image_size`, with `state_dict` loaded."""
    model = create_model(
        "tf_efficientdet_d0", pretrained=False, pretrained_backbone=False, image_size=image_size
    )
    fpn = model.fpn.eval()
    if state_dict is not None:
        fpn.load_state_dict(state_dict, strict=True)
    return fpn.double() if double else fpn


def randomize(fpn, g):
    """Random conv biases, batch norm parameters and statistics, fusion weights (in place)."""
    u = lambda t, a, b: t.copy_(torch.rand(t.shape, generator=g, dtype=torch.float64).float() * (b - a) + a)
    with torch.no_grad():
        for name, m in fpn.named_modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                u(m.bias, -0.1, 0.1)
            elif isinstance(m, torch.nn.BatchNorm2d):
                u(m.weight, 0.5, 1.5)
                u(m.bias, -0.5, 0.5)
                u(m.running_mean, -0.3, 0.3)
                u(m.running_var, 0.5, 2.0)
            if hasattr(m, "edge_weights") and m.edge_weights is not None:
                u(m.edge_weights, 0.2, 1.5)
        fpn.cell[1].fnode[4].combine.edge_weights[0] = -0.3


def feature_sizes(image_size):
    """C3 … C5 sizes of the TF-`SAME` backbone: the image halved, rounded up, 3 … 5 times."""
    h, w = image_size
    out = []
    for _ in range(5):
        h, w = (h + 1) // 2, (w + 1) // 2
        out.append((h, w))
    return out[2:]


def runs(state_dict, sizes, g):
    out = {}
    for tag, image_size in sizes.items():
        f32 = fpn_for(image_size, state_dict)
        f64 = fpn_for(image_size, state_dict, double=True)
        xs = [torch.randn(1, c, h, w, generator=g) for c, (h, w) in zip(CHANNELS, feature_sizes(image_size))]
        for lvl, x in zip((3, 4, 5), xs):
            out[f"c{lvl}_{tag}"] = x.contiguous()
        with torch.no_grad():
            o32 = f32(list(xs))
            o64 = f64([x.double() for x in xs])
        for lvl, a, b in zip(range(3, 8), o32, o64):
            store_run(out, f"p{lvl}_{tag}", a, b)
    return out


def main():
    full = "--full" in sys.argv[1:]
    torch.manual_seed(12)  # effdet's own init draws from the global generator
    g = torch.Generator().manual_seed(12)
    fpn = fpn_for((512, 512))
    randomize(fpn, g)
    sd = fpn.state_dict()
    floats = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    total = sum(v.numel() for k, v in floats.items() if "running_" not in k)
    assert len(floats) == TENSORS and total == PARAMS, f"{len(floats)} tensors, {total} parameters"
    weights = os.path.join(FIXTURES, "effdet_d0_bifpn.weights.safetensors")
    save_file({k: v.contiguous() for k, v in sd.items()}, weights)
    print(f"wrote {weights} ({os.path.getsize(weights)} bytes), {len(sd)} tensors, {total} parameters")
    path = os.path.join(FIXTURES, "effdet_d0_bifpn.safetensors")
    save_file(runs(sd, SIZES, g), path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    if full:
        out_dir = os.path.join(ROOT, "tools", "out")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "effdet_d0_bifpn_512.safetensors")
        save_file(runs(sd, FULL, g), path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
