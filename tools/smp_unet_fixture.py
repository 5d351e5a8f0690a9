#!/usr/bin/env python3
"""Make the parity fixture of specs/smp_unet_resnet34.yaml (tests/it/parity.rs `smp_unet_resnet34`).

The model is segmentation_models_pytorch's own `Unet(encoder_name="resnet34",
encoder_weights=None)` (no download), the whole net. Its state_dict without
`num_batches_tracked` must have exactly the spec's 24 436 369 parameters; checked first.

Weights: the checkpoint is 98 MB, so they come from tools/formula_weights.py's formula, which
tests/it/parity.rs computes exactly too (it checks `weights_probe`, the first 8 values of every
tensor). Inputs are random normal. Runs in eval mode at 64×96 and at 75×101 (smp 0.5 takes any
size: its decoder interpolates to the encoder's feature sizes), in float32 and float64, and
writes tests/fixtures/parity/smp_unet_resnet34.safetensors: `x_64x96`, `mask_64x96` (float32),
`mask_64x96_f64hi` + `mask_64x96_f64lo` (the float64 run as a sum of two float32 tensors), the
same for 75x101, and `weights_probe`.

Run from the repository root:  python3 tools/smp_unet_fixture.py
Made with segmentation_models_pytorch 0.5 and torch 2.15.0 (CPU).
"""
import os

import segmentation_models_pytorch as smp
import torch

from formula_weights import probe, store_run, weights
from safetensors_fallback import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity", "smp_unet_resnet34.safetensors")
SIZES = [(64, 96), (75, 101)]
PARAMS = 24436369


def main():
    torch.manual_seed(0)
    model = smp.Unet(encoder_name="resnet34", encoder_weights=None).eval()
    sd = model.state_dict()
    keep = sorted(k for k in sd if not k.endswith("num_batches_tracked"))
    total = sum(sd[k].numel() for k in keep if not k.endswith(("running_mean", "running_var")))
    assert total == PARAMS, f"{total} parameters, the spec has {PARAMS}"
    new = weights({k: tuple(sd[k].shape) for k in keep})
    model.load_state_dict(new, strict=False)
    m64 = smp.Unet(encoder_name="resnet34", encoder_weights=None).eval()
    m64.load_state_dict(new, strict=False)
    m64 = m64.double()
    out = {"weights_probe": probe(new)}
    g = torch.Generator().manual_seed(34)
    with torch.no_grad():
        for h, w in SIZES:
            x = torch.randn(1, 3, h, w, generator=g)
            tag = f"{h}x{w}"
            out[f"x_{tag}"] = x.contiguous()
            store_run(out, f"mask_{tag}", model(x), m64(x.double()))
    save_file(out, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes), {len(keep)} tensors, {total} parameters")


if __name__ == "__main__":
    main()
