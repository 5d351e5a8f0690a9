#!/usr/bin/env python3
"""Make the numeric PyTorch fixtures that tests/it/parity.rs and fpn-cli/tests/run.rs compare against.

For small configurations of every shipped topology (width-reduced copies of `specs/*.yaml` in
`tests/specs/`) this builds the same model in PyTorch with the state_dict names fpn expects, gives
it random weights -- conv weights and biases from PyTorch's init; NON-trivial batch norms:
random weight U(0.2, 0.8) and bias U(-0.5, 0.5), running statistics from the actual per-channel
mean m and variance v of each BN's input on a batch of 8 other random inputs: running_mean =
m·U(0, 1), running_var = (m² + v)·U(0.5, 2); random BiFPN fusion weights U(-0.5, 1.5) (so the
ReLU of fast normalized fusion matters) -- runs it in eval mode on a random input and writes to
tests/fixtures/parity/:

  * `<spec>.weights.safetensors`  the state_dict without `num_batches_tracked` (float32);
  * `<config>.input.safetensors`  the inputs, named as the spec's inputs;
  * `<config>.output.safetensors` PyTorch's outputs, named as the spec's outputs.

Conditioning: with running statistics equal to the actual ones, (x - mean)/std subtracts a large
mean from channels of small spread, and BN gains above 1 compound through a ResNet-50; PyTorch's
own float32 result then differs from float64 by 1e-4 to 1e-3 and no float32 implementation can be
held to 1e-4. The choices above keep activations O(1) and that noise small: every small
configuration's PyTorch float32 vs float64 error is measured here (printed) and must stay below
4e-5, so the tests' 1e-4 bound has a margin over float32 rounding (not checked for --full).

A spec run at several sizes (`resnet50_fpn_small` at 64×64 and at 70×58) shares one weights file.

The models. Where a package or the user's own code builds the model, that is the model (an
*anchor*, independent of fpn); where a model here would only restate the spec, it is the module
`fpn gen --target torch` generates (tools/fpn_torch.py), with the spec's state_dict names.
torchvision's ResNet has no base-width knob, so `TinyResNet` below re-implements it with the same
module names (conv1, bn1, relu, maxpool, layer1..4; blocks conv1, bn1, conv2, bn2, [conv3, bn3],
downsample.0/.1) and a base width; `check_tiny_resnet()` loads torchvision's resnet18/resnet50
state_dicts into TinyResNet(width=64) and checks that the outputs are identical (run on every
invocation), so it stands for torchvision's ResNet as a port, as tools/torch_shapes.py's
`MmdetFPN` stands for mmdet's FPN.

| configuration (tests/specs/) | PyTorch model | kind: why |
|---|---|---|
| seed000_block | seed 000's `pyramid_block` (tools/torch_shapes.py) | anchor: the user's code, verbatim |
| resnet18_pyramid_w4 | `TinyResNet(18, 4)` | anchor: port of torchvision's ResNet, checked against it |
| resnet50_fpn_small, retinanet_{p5,c5}_small | torchvision `BackboneWithFPN` + `LastLevelMaxPool` / `LastLevelP6P7` on `TinyResNet` | anchor: torchvision |
| fpn_neck_32x32 | torchvision `FeaturePyramidNetwork` | anchor: the spec is torchvision's FPN (was the restated `TopDown`) |
| seed001_neck_small | generated | restatement: the seed 001 neck was hand-written (`TopDown`) |
| seed001_neck_on_resnet18_small | `TinyResNet(18, 2)` body + generated neck (`fpn_torch.on_body`) | body anchor, neck restatement |
| seed003_fpn_head_small | `TinyResNet(18, 2)` body + generated FPN and shared head | body anchor; FPN and head were hand-written |
| panet_small, bifpn_small | generated | restatement: `PANet`/`BiFPN` copied fpn's expansion in lower.rs |
| unet_small | generated (GroupNorm affine randomised) | restatement: `UNetSmall` was hand-written to the spec |
| --full resnet{18,50}_fpn_full | torchvision `BackboneWithFPN(resnet18/50)` | anchor: torchvision |

Run from the repository root:
    python3 tools/torch_parity.py           # the small fixtures (committed, about 2.2 MB)
    python3 tools/torch_parity.py --only unet_small   # one configuration
    python3 tools/torch_parity.py --full    # also full-size ResNet-18/50 FPNs to tools/out/
                                            # (git-ignored, ~170 MB; used by tests/it/parity.rs
                                            # `full_size_resnet_fpn` when present)
    python3 tools/torch_parity.py --fpn PATH   # the fpn binary for the generated modules
                                            # (default $FPN, else target/release/fpn)
Needs torch, torchvision, safetensors, PyYAML. Deterministic for a given torch version and CPU
(seeded): another CPU's float32 kernels can round differently (re-made on the 2-core machine of
2026-11-26, the unchanged configurations differ from the committed files by at most 4.8e-6).
The checked-in fixtures were made with torch 2.15.0 and torchvision 0.29.2 (CPU).
"""
import argparse
import copy
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpn_torch  # noqa: E402  (the modules fpn generates)

try:
    from safetensors.torch import save_file
except ImportError:  # the same fallback writer as tools/runtime_fixtures.py
    from runtime_fixtures import save_file  # noqa: E402
try:
    from torchvision.models import resnet18, resnet50
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool, LastLevelP6P7

    import torch_shapes as ts  # noqa: E402  (seed 000's block, Named)
except ImportError:  # only `--only unet_small` runs without torchvision
    ts = None

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "parity")
FULL_OUT = os.path.join(ROOT, "tools", "out")

# ---------------------------------------------------------------------------------------------
# A ResNet with a base width: torchvision's module names and forward, `width` instead of 64.


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3×3 (v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    """torchvision ResNet without avgpool/fc, base width `width` (64 in torchvision). Children
    are registered in forward order so IntermediateLayerGetter can wrap it."""

    def __init__(self, depth, width):
        super().__init__()
        block, layers = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
                         50: (Bottleneck, [3, 4, 6, 3])}[depth]
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, n in enumerate(layers):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width * 2**i, n, 1 if i == 0 else 2))

    def _make_layer(self, block, planes, n, stride):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        blocks = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def features(self, x):
        """[stem (after ReLU), c2, c3, c4, c5]."""
        x0 = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(self.maxpool(x0))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return [x0, x1, x2, x3, x4]


def check_tiny_resnet():
    """TinyResNet(width=64) with torchvision's state_dict computes exactly torchvision's ResNet."""
    for depth, tv in [(18, resnet18), (50, resnet50)]:
        ref = tv(weights=None).eval()
        randomize(ref)
        sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
        tiny = TinyResNet(depth, 64).eval()
        tiny.load_state_dict(sd, strict=True)
        x = torch.randn(1, 3, 64, 96)
        getter = IntermediateLayerGetter(ref, {"relu": "x0", "layer1": "x1", "layer2": "x2", "layer3": "x3",
                                               "layer4": "x4"})
        with torch.no_grad():
            want = list(getter(x).values())
            got = tiny.features(x)
        for i, (a, b) in enumerate(zip(want, got)):
            if a.shape != b.shape or not torch.equal(a, b):
                raise SystemExit(f"TinyResNet({depth}, 64) differs from torchvision resnet{depth} at x{i}")
    print("TinyResNet(width=64) reproduces torchvision resnet18/resnet50 exactly")


# ---------------------------------------------------------------------------------------------
# Random weights with non-trivial batch norms.


def randomize(model, calibrate=None):
    """Random BN affine parameters and fusion weights; if `calibrate` is `(run, inputs)`, one
    forward sets each BN's running statistics from the statistics of its actual input (in
    forward order, perturbed) so deep random stacks neither explode nor vanish."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.2, 0.8)  # a gain below 1 on average: deep stacks stay well conditioned
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        elif fpn_torch.is_fusion(m):
            with torch.no_grad():
                m.weight.uniform_(-0.5, 1.5)
    if calibrate is None:
        return

    def hook(m, args):
        x = args[0]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        # Partial centering with the second moment as variance: (x - u·mean)/sqrt(E[x²]·v) stays
        # O(1) without subtracting a large mean from a channel of small spread, which would
        # amplify float32 rounding (PyTorch's own float32 error vs float64 then exceeds 1e-4).
        m.running_mean.copy_(mean * torch.empty_like(mean).uniform_(0.0, 1.0))
        m.running_var.copy_((mean * mean + var + 1e-2) * torch.empty_like(var).uniform_(0.5, 2.0))

    hooks = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    run, inputs = calibrate
    model.eval()
    with torch.no_grad():
        run(model, inputs)
    for h in hooks:
        h.remove()


# ---------------------------------------------------------------------------------------------
# The configurations. Each builder returns (model, run) with run(model, inputs) -> {output: t}.


def fpn_on(depth, width, layers, fpn_width, extra):
    """BackboneWithFPN (torchvision) on a TinyResNet: names body.*, fpn.inner_blocks.i.0.*, …"""
    body = TinyResNet(depth, width)
    exp = 4 if depth == 50 else 1
    chans = [width * 2 ** (l - 2) * exp for l in layers]
    m = BackboneWithFPN(body, {f"layer{l - 1}": str(i) for i, l in enumerate(layers)}, chans, fpn_width,
                        extra_blocks=extra(chans) if extra else None)
    return m, chans


def tv_fpn_run(layers, extra_names):
    keys = {str(i): f"p{l}" for i, l in enumerate(layers)}
    keys.update(extra_names)
    return lambda m, x: OrderedDict((keys[k], v) for k, v in m(x["image"]).items())


def resnet50_fpn_small():
    m, _ = fpn_on(50, 4, [2, 3, 4, 5], 16, lambda c: LastLevelMaxPool())
    return m, tv_fpn_run([2, 3, 4, 5], {"pool": "p6"})


def retinanet_small(from_p5):
    # torchvision's LastLevelP6P7 reads P5 iff in_channels == out_channels
    m, _ = fpn_on(50, 2, [3, 4, 5], 16, lambda c: LastLevelP6P7(16 if from_p5 else c[-1], 16))
    assert m.fpn.extra_blocks.use_P5 == from_p5
    return m, tv_fpn_run([3, 4, 5], {"p6": "p6", "p7": "p7"})


def seed000():
    return ts.Seed000(), lambda m, x: m(x["x"])


def generated(stem):
    """The module fpn generates for tests/specs/<stem>.yaml (tools/fpn_torch.py)."""
    return lambda: (fpn_torch.build(f"tests/specs/{stem}.yaml"), fpn_torch.call)


def on_tiny_resnet18(stem, layers, image):
    """TinyResNet(18, 2) under `body` (the anchor), the rest of tests/specs/<stem>.yaml generated."""
    def build():
        body = IntermediateLayerGetter(TinyResNet(18, 2), {f"layer{l - 1}": f"c{l}" for l in layers})
        return fpn_torch.on_body(f"tests/specs/{stem}.yaml", body, image), lambda m, x: m(x["image"])

    return build


def resnet18_pyramid_w4():
    m = ts.Named(None, body=TinyResNet(18, 4))
    return m, lambda m, x: OrderedDict((f"x{i}", t) for i, t in enumerate(m.body.features(x["image"])))


def fpn_neck_32x32():
    """torchvision's own FeaturePyramidNetwork (the spec's doc names it)."""
    m = ts.Named(None, neck=FeaturePyramidNetwork([16, 16, 16], 16))

    def run(m, x):
        p = m.neck(OrderedDict((k, x[k]) for k in ("c3", "c4", "c5")))
        return OrderedDict((f"p{k[1:]}", v) for k, v in p.items())

    return m, run


def unet_small():
    m = fpn_torch.build("tests/specs/unet_small.yaml")
    for gn in m.modules():
        if isinstance(gn, nn.GroupNorm):
            with torch.no_grad():
                gn.weight.uniform_(0.5, 1.5)
                gn.bias.uniform_(-0.5, 0.5)
    return m, fpn_torch.call


NECK = {"c3": (16, 16, 16), "c4": (32, 8, 8), "c5": (64, 4, 4)}

# spec stem (tests/specs/<stem>.yaml) -> (builder, [(config name, {input: shape})]). The first
# case's input calibrates the batch norm statistics.
CONFIGS = OrderedDict([
    ("seed000_block", (seed000, [("seed000_block", {"x": (3, 32, 32)})])),
    ("seed001_neck_small", (generated("seed001_neck_small"), [("seed001_neck_small", NECK)])),
    ("seed001_neck_on_resnet18_small",
     (on_tiny_resnet18("seed001_neck_on_resnet18_small", [3, 4, 5], (3, 60, 90)),
      [("seed001_neck_on_resnet18_small_60x90", {"image": (3, 60, 90)})])),
    ("resnet18_pyramid_w4", (resnet18_pyramid_w4, [("resnet18_pyramid_w4", {"image": (3, 64, 64)})])),
    ("resnet50_fpn_small", (resnet50_fpn_small, [("resnet50_fpn_small_64x64", {"image": (3, 64, 64)}),
                                                 ("resnet50_fpn_small_70x58", {"image": (3, 70, 58)})])),
    ("retinanet_p5_small", (lambda: retinanet_small(True), [("retinanet_p5_small", {"image": (3, 80, 80)})])),
    ("retinanet_c5_small", (lambda: retinanet_small(False), [("retinanet_c5_small", {"image": (3, 80, 80)})])),
    ("seed003_fpn_head_small", (on_tiny_resnet18("seed003_fpn_head_small", [2, 3, 4, 5], (3, 64, 64)),
                                [("seed003_fpn_head_small", {"image": (3, 64, 64)})])),
    ("panet_small", (generated("panet_small"), [("panet_small", NECK)])),
    ("fpn_neck_32x32", (fpn_neck_32x32, [("fpn_neck_32x32", {"c3": (16, 32, 32), "c4": (16, 16, 16),
                                                             "c5": (16, 8, 8)})])),
    ("bifpn_small", (generated("bifpn_small"), [("bifpn_small", {"c3": (10, 16, 16), "c4": (28, 8, 8), "c5": (80, 4, 4)})])),
    ("unet_small", (unet_small, [("unet_small", {"x": (3, 13, 11)})])),
])


def state_dict(model):
    return OrderedDict((k, v.detach().float().contiguous().clone()) for k, v in model.state_dict().items()
                       if "num_batches_tracked" not in k)


def save(path, tensors):
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, path)
    return os.path.getsize(path)


def make(stem, build, cases, out_dir, batch=1, strict=True):
    model, run = build()
    inputs = [(name, OrderedDict((k, torch.randn(batch, *s)) for k, s in shapes.items())) for name, shapes in cases]
    # calibrate on a batch of 8 other random inputs of the first case's shape (not the test input)
    randomize(model, (run, OrderedDict((k, torch.randn(8, *s)) for k, s in cases[0][1].items())))
    model.eval()
    total = save(os.path.join(out_dir, f"{stem}.weights.safetensors"), state_dict(model))
    model64 = copy.deepcopy(model).double()
    for name, xs in inputs:
        with torch.no_grad():
            outs = run(model, xs)
            outs64 = run(model64, OrderedDict((k, v.double()) for k, v in xs.items()))
        noise = max((outs[k].double() - outs64[k]).abs().max().item() for k in outs)
        if strict and noise > 4e-5:
            raise SystemExit(f"{name}: PyTorch float32 differs from float64 by {noise:.2e}; ill-conditioned")
        total += save(os.path.join(out_dir, f"{name}.input.safetensors"), xs)
        total += save(os.path.join(out_dir, f"{name}.output.safetensors"), outs)
        desc = ", ".join(f"{k}={list(v.shape)} max|y|={v.abs().max().item():.3g}" for k, v in outs.items())
        print(f"{name}: {desc}; float32 vs float64 {noise:.1e}")
    return total


def full(out_dir):
    """Full-size torchvision resnet_fpn_backbone("resnet18"/"resnet50") equivalents."""
    os.makedirs(out_dir, exist_ok=True)
    for depth, tv, chans in [(18, resnet18, [64, 128, 256, 512]), (50, resnet50, [256, 512, 1024, 2048])]:
        def build(tv=tv, chans=chans):
            m = BackboneWithFPN(tv(weights=None), {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                                chans, 256, extra_blocks=LastLevelMaxPool())
            return m, tv_fpn_run([2, 3, 4, 5], {"pool": "p6"})

        stem = f"resnet{depth}_fpn_full"
        size = make(stem, build, [(stem, {"image": (3, 224, 224)})], out_dir, strict=False)
        print(f"wrote {os.path.relpath(out_dir, ROOT)}/{stem}.* ({size / 1e6:.1f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="also write full-size ResNet-18/50 FPNs to tools/out/")
    ap.add_argument("--only", metavar="STEM", help="write only this configuration (e.g. unet_small)")
    fpn_torch.add_argument(ap)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    if ts is not None:
        check_tiny_resnet()
    elif args.only != "unet_small":
        raise SystemExit("torchvision is needed (only `--only unet_small` runs without it)")
    os.makedirs(OUT, exist_ok=True)
    total = 0
    for stem, (build, cases) in CONFIGS.items():
        if args.only and stem != args.only:
            continue
        torch.manual_seed(sum(map(ord, stem)))  # each config independent of the others
        total += make(stem, build, cases, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {total / 1e6:.2f} MB")
    if args.full:
        torch.manual_seed(1)
        full(FULL_OUT)


if __name__ == "__main__":
    main()
