#!/usr/bin/env python3
"""Make the parity fixture of specs/yolov8n_c2f_block.yaml (tests/it/parity.rs `yolov8n_c2f`).

ultralytics is not installed here, so this re-implements its `Conv`, `Bottleneck` and `C2f`
(ultralytics/nn/modules/conv.py and block.py, YOLOv8) in plain torch with ultralytics' module
and attribute names, line for line:

    Conv(c1, c2, k, s):  conv = Conv2d(c1, c2, k, s, padding=k // 2, bias=False),
                         bn = BatchNorm2d(c2), act = SiLU();  forward: act(bn(conv(x)))
    Bottleneck(c1, c2, shortcut, g, k=((3, 3), (3, 3)), e=1.0):
                         cv1 = Conv(c1, c_, 3), cv2 = Conv(c_, c2, 3); x + cv2(cv1(x)) if shortcut
    C2f(c1, c2, n, shortcut, g=1, e=0.5):
                         c = int(c2 * e); cv1 = Conv(c1, 2c, 1); cv2 = Conv((2 + n)c, c2, 1);
                         m = ModuleList(Bottleneck(c, c, shortcut, g, e=1.0) for _ in range(n))
                         y = list(cv1(x).chunk(2, 1)); y.extend(m(y[-1]) for m in self.m);
                         cv2(cat(y, 1))

The block is YOLOv8n's layer 4, `C2f(64, 64, n=2, shortcut=True)`, placed at `model.4` of a
container (`model.0`-`model.3` parameter-free stand-ins), so the state_dict keys are the ones
of a YOLOv8n checkpoint: `model.4.cv1.conv.weight`, `model.4.m.1.cv2.bn.running_var`, ...
Every BatchNorm gets eps 1e-3 and momentum 0.03, as ultralytics' `initialize_weights` sets
them on a detection model (eps is not in the state_dict; the spec says `eps: 0.001`).

Random weights: convs from PyTorch's init; batch norms weight U(0.5, 1.5), bias U(-0.5, 0.5),
running_mean U(-0.3, 0.3), running_var U(0.5, 2). The state_dict is saved untouched, with
`num_batches_tracked` (int64) as in a real checkpoint. Runs in eval mode on a random
2×64×20×24 input in float32 (`cv2`) and in float64 (`cv2_f64`, stored as F64), and writes to tests/fixtures/parity/:

  * yolov8n_c2f.weights.safetensors   the state_dict (float32 + int64 counters)
  * yolov8n_c2f.input.safetensors     `x`
  * yolov8n_c2f.output.safetensors    `cv2` (float32 run) and `cv2_f64` (float64 run)

Run from the repository root:  python3 tools/c2f_fixture.py
Needs torch (safetensors is used when installed; a small writer otherwise). Deterministic for a given torch version (seeded, CPU); made with
torch 2.15.0.
"""
import copy
import os

import torch
import torch.nn as nn

from safetensors_fallback import save_file  # safetensors when installed, else a small writer


ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity")


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, e=1.0):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 3, 1)
        self.cv2 = Conv(c_, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=False, e=0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, e=1.0) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(*[nn.Identity() for _ in range(4)], C2f(64, 64, n=2, shortcut=True))

    def forward(self, x):
        return self.model[4](x)


def main():
    torch.manual_seed(8)
    model = Model()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
            c = m.num_features
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(1000 + c)
    model.eval()
    x = torch.randn(2, 64, 20, 24)
    with torch.no_grad():
        y32 = model(x)
        y64 = copy.deepcopy(model).double()(x.double())
    err32 = ((y32.double() - y64).abs().max() / y64.abs().max()).item()
    print(f"PyTorch float32 vs float64: max relative error {err32:.3e}")
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    os.makedirs(OUT, exist_ok=True)
    save_file(sd, os.path.join(OUT, "yolov8n_c2f.weights.safetensors"))
    save_file({"x": x.contiguous()}, os.path.join(OUT, "yolov8n_c2f.input.safetensors"))
    save_file(
        {"cv2": y32.contiguous(), "cv2_f64": y64.contiguous()},
        os.path.join(OUT, "yolov8n_c2f.output.safetensors"),
    )
    print(f"wrote {len(sd)} tensors; output {tuple(y32.shape)}")


if __name__ == "__main__":
    main()
