#!/usr/bin/env python3
"""Make the PyTorch shape fixture that fpn-compiler/tests/it/torch_shapes.rs compares against.

For every shipped spec `specs/*.yaml` (not `specs/invalid`) this builds the model in PyTorch
with random init (weights=None), runs one forward per test size on zeros, and records:

  * `state_dict`: every state_dict entry, name -> shape (`num_batches_tracked` left out);
  * `modules`: for every module that directly owns parameters or buffers, keyed by its
    state_dict prefix, the list of its output shapes (batch dropped) in call order (a shared
    head module is called once per level);
  * `outputs`: each named output of the spec, name -> shape (batch dropped); names are the
    spec's output field names (`outputs: [neck.p3]` names the output `p3`).

Where a package or the user's own code builds the model, that is the model (an *anchor*: an
independent check of fpn's expansion, names and shapes). Where a model here would only restate
the spec, it is the module `fpn gen --target torch` generates (tools/fpn_torch.py): that checks
fpn's shape inference against PyTorch running the spec, not the expansion against a second copy.

| spec | PyTorch model | kind: why |
|---|---|---|
| resnet18_fpn, resnet50_fpn, retinanet_p3p7 | torchvision `BackboneWithFPN(resnet18 / resnet50, LastLevelMaxPool / LastLevelP6P7)` | anchor: torchvision |
| seed000_pyramid_block | seed 000's `pyramid_block` (the seed notebook) | anchor: the user's code, verbatim |
| seed002_resnet18_pyramid | seed 002's `ResNetFeatures` on torchvision's ResNet (avgpool/fc removed) | anchor: the user's code on torchvision |
| seed001_neck | generated | restatement: seed 001 gives fragments, the neck (`TopDown`) was written here |
| seed001_neck_on_resnet18 | torchvision ResNet-18 body + generated neck (`fpn_torch.on_body`) | body anchor (torchvision), neck restatement as above |
| seed003_fpn_shared_head | torchvision ResNet-18 body + generated FPN and shared head | body anchor; seed 003 has no code: its FPN (`TopDown`) and head were written here |
| panet_neck, bifpn_neck | generated | restatement: no PyTorch reference; `PANet`/`BiFPN` here copied fpn's expansion in lower.rs |
| unet_decoder | generated | restatement: `UNetDecoder` was written here to the spec (milesial-style `Up`, not milesial's code) |
| unet_original | `UNetOriginal` below | anchor (issue 12): Ronneberger et al.'s U-Net, the paper's shapes |
| mmdet_fpn_retinanet | `MmdetFPN` below | anchor (issue 12): a port of mmdet's `FPN` with mmdet's names (mmcv does not build here) |
| smp_unet_resnet34 | segmentation_models_pytorch `Unet("resnet34")` | anchor: smp |
| yolov8n, yolov8n_c2f_block | ultralytics `DetectionModel("yolov8n.yaml")`, its `C2f` | anchor: ultralytics |
| fcos_head | torchvision `fcos_resnet50_fpn(...).head` | anchor: torchvision |
| effdet_d0_bifpn | effdet's own `create_model('tf_efficientdet_d0').fpn` | anchor: effdet |

The generated modules register their parameter modules in the spec's graph order, so in those
specs' entries the `state_dict` and `modules` keys come in that order (the test reads them as
maps; each module's call list is in call order, a shared head's in level order p2..p5).

Symbolic specs (`H`, `W`) are run at two accepted sizes (see `fpn sizes SPEC`): 224x320 and an
odd one.

Run from the repository root:  python3 tools/torch_shapes.py [--fpn PATH]
(`--only unet_decoder.yaml` rewrites one spec's entry, and needs no torchvision.) The generated
modules need the fpn binary: `--fpn`, else $FPN, else target/release/fpn (`cargo build --release
-p fpn-cli`). Writes fpn-compiler/tests/fixtures/torch_shapes.json (shapes only, deterministic).
The checked-in fixture was made with torch 2.15.0 and torchvision 0.29.2 (CPU); effdet_d0_bifpn's
entry with effdet 0.4.1 and timm 1.0.31.
"""
import argparse
import glob
import json
import os
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn

import fpn_torch

try:
    import torchvision
    from torchvision.models import resnet18, resnet50
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.resnet import BasicBlock, ResNet
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
except ImportError:  # `--only SPEC` for a spec that needs no torchvision (unet_decoder.yaml)
    torchvision = None
    ResNet = nn.Module

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "fpn-compiler", "tests", "fixtures", "torch_shapes.json")

# ---------------------------------------------------------------------------------------------
# Seed 000: verbatim from /work/shared/seeds/000_*.txt


class SkipSequential(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_prime = super().forward(x)
        return torch.cat([x, x_prime], dim=1)


def pyramid_block(in_channels: int, out_channels: int) -> nn.Module:
    inner = SkipSequential(
        nn.Conv2d(out_channels, out_channels, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), padding_mode="reflect"),
        nn.Tanh(),
        nn.Conv2d(out_channels, out_channels, kernel_size=(3, 3), padding=(1, 1), padding_mode="reflect"),
        nn.Tanh(),
        nn.Upsample(scale_factor=2),
    )
    middle = SkipSequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), padding_mode="reflect"),
        nn.Tanh(),
        inner,
        nn.Upsample(scale_factor=2),
    )
    outer = nn.Sequential(
        middle,
        nn.Conv2d(in_channels + out_channels + out_channels, out_channels, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), padding_mode="reflect"),
        nn.Tanh(),
    )
    return outer


class Seed000(nn.Module):
    """Holds the block under the spec's node name `block`."""

    def __init__(self, cin=3, cout=16):
        super().__init__()
        self.block = pyramid_block(cin, cout)

    def forward(self, x):
        return {"block": self.block(x)}


# ---------------------------------------------------------------------------------------------
# Whole models, one per spec. Each returns (model, inputs: {name: tensor}, run) where
# run(model, inputs) -> {output name: tensor}.


def body_getter(depth, layers):
    """A torchvision ResNet body returning the given layers (IntermediateLayerGetter drops
    avgpool/fc, as fpn's preset has neither)."""
    net = {18: resnet18, 50: resnet50}[depth](weights=None)
    return IntermediateLayerGetter(net, return_layers={f"layer{l - 1}": f"c{l}" for l in layers})


class Named(nn.Module):
    """Children under the spec's node names; forward is given."""

    def __init__(self, fwd, **children):
        super().__init__()
        for k, v in children.items():
            setattr(self, k, v)
        self._fwd = fwd

    def forward(self, *args):
        return self._fwd(self, *args)


def resnet_fpn(depth, h, w):
    """torchvision's `resnet_fpn_backbone(f"resnet{depth}", weights=None, trainable_layers=5)`:
    `BackboneWithFPN` on returned layers 1-4, width 256, `LastLevelMaxPool`, with the in-channels
    taken from the body as torchvision takes them (`inplanes // 8 · 2^(i-1)`). The norm is
    `nn.BatchNorm2d` (resnet_fpn_backbone's default is `FrozenBatchNorm2d`: the same shapes and
    names, without `num_batches_tracked`, which the fixture leaves out anyway)."""
    body = {18: resnet18, 50: resnet50}[depth](weights=None)
    in_channels = [body.inplanes // 8 * 2 ** (i - 1) for i in (1, 2, 3, 4)]
    m = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                        in_channels, 256, extra_blocks=LastLevelMaxPool())
    keys = {"0": "p2", "1": "p3", "2": "p4", "3": "p5", "pool": "p6"}
    return m, {"image": (3, h, w)}, lambda m, x: {keys[k]: v for k, v in m(x["image"]).items()}


def retinanet_p3p7():
    m = BackboneWithFPN(resnet50(weights=None), {"layer2": "0", "layer3": "1", "layer4": "2"},
                        [512, 1024, 2048], 256, extra_blocks=LastLevelP6P7(256, 256))
    keys = {"0": "p3", "1": "p4", "2": "p5", "p6": "p6", "p7": "p7"}
    return m, {"image": (3, 512, 512)}, lambda m, x: {keys[k]: v for k, v in m(x["image"]).items()}


def seed000(cin=3, cout=16, size=32):
    """Seed 000's `pyramid_block(cin, cout)` on `cin × size × size`: the spec's parameters
    (`--set cin=64 …` in tools/bench_reference.py), their defaults the spec's."""
    return Seed000(cin, cout), {"x": (cin, size, size)}, lambda m, x: m(x["x"])


def generated(spec, inputs):
    """A builder of the module fpn generates for specs/<spec> (tools/fpn_torch.py); `inputs` is
    its input shapes, or a function of the size giving them."""
    return lambda *size: (fpn_torch.build(f"specs/{spec}"),
                          inputs(*size) if callable(inputs) else inputs, fpn_torch.call)


def on_resnet18(spec, layers, h, w):
    """torchvision's ResNet-18 body (the anchor) under `body`, the rest of specs/<spec> generated."""
    m = fpn_torch.on_body(f"specs/{spec}", body_getter(18, layers), (3, h, w))
    return m, {"image": (3, h, w)}, lambda m, x: m(x["image"])


class ResNetFeatures(ResNet):
    """Seed 002's ResNet returning [x0, x1, x2, x3, x4]. fpn's `resnet` preset is a feature
    extractor without avgpool/fc, so those (unused in this forward) are removed here: the seed's
    own module would also carry `fc.weight` [1000, 512] and `fc.bias` [1000]."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        del self.avgpool
        del self.fc

    def _forward_impl(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x0 = self.relu(x)
        x = self.maxpool(x0)
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return [x0, x1, x2, x3, x4]


def seed002():
    m = Named(None, body=ResNetFeatures(block=BasicBlock, layers=[2, 2, 2, 2]))
    run = lambda m, x: {f"x{i}": t for i, t in enumerate(m.body(x["image"]))}
    return m, {"image": (3, 224, 224)}, run


def yolov8n_c2f(h, w):
    """specs/yolov8n_c2f_block.yaml: ultralytics' C2f at `model.4` (tools/c2f_fixture.py)."""
    import c2f_fixture

    return c2f_fixture.Model(), {"x": (64, h, w)}, lambda m, x: {"cv2": m(x["x"])}


def yolov8n(h, w):
    """specs/yolov8.yaml at its default scale n: ultralytics' own `DetectionModel("yolov8n.yaml")`,
    layers 0-21 (the inputs of Detect) under `model.N` as in a checkpoint (tools/yolov8_fixture.py;
    the other scales' names and shapes: tools/yolov8_family_counts.py)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import yolov8_fixture
    from ultralytics.nn.tasks import DetectionModel

    class Neck(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.ModuleList(DetectionModel("yolov8n.yaml", verbose=False).model[:22])

    def run(m, x):
        p3, p4, p5 = yolov8_fixture.run(m, x["image"])
        return {"p3": p3, "p4": p4, "p5": p5}

    return Neck(), {"image": (3, h, w)}, run


def smp_unet_resnet34(h, w):
    """specs/smp_unet_resnet34.yaml: segmentation_models_pytorch's own Unet on ResNet-34."""
    import segmentation_models_pytorch as smp

    model = smp.Unet(encoder_name="resnet34", encoder_weights=None)
    return model, {"image": (3, h, w)}, lambda m, x: {"mask": m(x["image"])}


def fcos_head(*hw):
    """specs/fcos_head.yaml: torchvision's own fcos_resnet50_fpn head towers on P3-P7, sizes
    `H3, W3, …, H7, W7` (tools/fcos_head_fixture.py)."""
    import fcos_head_fixture
    from torchvision.models.detection import fcos_resnet50_fpn

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = fcos_resnet50_fpn(weights=None, weights_backbone=None).head

    sizes = {f"p{lvl}": (256, hw[2 * k], hw[2 * k + 1]) for k, lvl in enumerate(range(3, 8))}
    return Heads(), sizes, lambda m, x: fcos_head_fixture.outputs(m.head, [x[f"p{l}"] for l in range(3, 8)])


def effdet_d0_bifpn(h3, w3, h4, w4, h5, w5):
    """specs/effdet_d0_bifpn.yaml: effdet's own tf_efficientdet_d0 BiFPN (`model.fpn`, its
    state_dict names at the root), built for the image whose C3 is `h3`×`w3` (8·h3 × 8·w3: effdet
    sizes its upsamples for one image size; tools/effdet_fixture.py)."""
    from effdet import create_model

    model = create_model("tf_efficientdet_d0", pretrained=False, pretrained_backbone=False, image_size=(8 * h3, 8 * w3))
    sizes = {"c3": (40, h3, w3), "c4": (112, h4, w4), "c5": (320, h5, w5)}
    return model.fpn, sizes, lambda m, x: {f"p{l}": o for l, o in zip(range(3, 8), m([x["c3"], x["c4"], x["c5"]]))}


class UNetOriginal(nn.Module):
    """Ronneberger et al.'s U-Net (specs/unet_original.yaml): valid convs, up-convs, centre crop."""

    class Up(nn.Module):
        def __init__(self, cin, c):
            super().__init__()
            self.up = nn.ConvTranspose2d(cin, c, 2, 2)
            self.conv = UNetOriginal.double(2 * c, c)

        def forward(self, x, skip):
            x = self.up(x)
            h, w = x.shape[-2:]
            top, left = (skip.shape[-2] - h) // 2, (skip.shape[-1] - w) // 2
            return self.conv(torch.cat([skip[..., top:top + h, left:left + w], x], 1))

    @staticmethod
    def double(cin, c):
        return nn.Sequential(nn.Conv2d(cin, c, 3), nn.ReLU(), nn.Conv2d(c, c, 3), nn.ReLU())

    def __init__(self):
        super().__init__()
        self.d1, self.d2, self.d3 = self.double(1, 64), self.double(64, 128), self.double(128, 256)
        self.d4, self.d5 = self.double(256, 512), self.double(512, 1024)
        self.u4, self.u3 = self.Up(1024, 512), self.Up(512, 256)
        self.u2, self.u1 = self.Up(256, 128), self.Up(128, 64)
        self.out = nn.Conv2d(64, 2, 1)

    def forward(self, x):
        pool = nn.functional.max_pool2d
        d1 = self.d1(x)
        d2 = self.d2(pool(d1, 2))
        d3 = self.d3(pool(d2, 2))
        d4 = self.d4(pool(d3, 2))
        d5 = self.d5(pool(d4, 2))
        return self.out(self.u1(self.u2(self.u3(self.u4(d5, d4), d3), d2), d1))


def unet_original(h, w):
    return UNetOriginal(), {"image": (1, h, w)}, lambda m, x: {"out": m(x["image"])}


class MmdetFPN(nn.Module):
    """A port of mmdet's `FPN` (mmdet/models/necks/fpn.py, mmdet 3.x) with its module names, for
    `in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
    add_extra_convs='on_input', num_outs=5` and no norm or activation (RetinaNet's neck); mmdet
    itself needs a compiled mmcv, which does not install here."""

    class ConvModule(nn.Module):
        def __init__(self, cin, cout, k, stride=1, padding=0):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, stride, padding)

        def forward(self, x):
            return self.conv(x)

    def __init__(self, in_channels=(256, 512, 1024, 2048), out=256, start_level=1, num_outs=5):
        super().__init__()
        self.start_level, self.num_outs = start_level, num_outs
        self.lateral_convs, self.fpn_convs = nn.ModuleList(), nn.ModuleList()
        for i in range(start_level, len(in_channels)):
            self.lateral_convs.append(self.ConvModule(in_channels[i], out, 1))
            self.fpn_convs.append(self.ConvModule(out, out, 3, padding=1))
        for i in range(num_outs - (len(in_channels) - start_level)):
            cin = in_channels[-1] if i == 0 else out  # on_input: the first extra conv reads C5
            self.fpn_convs.append(self.ConvModule(cin, out, 3, stride=2, padding=1))

    def forward(self, inputs):
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            prev = laterals[i - 1].shape[2:]
            laterals[i - 1] = laterals[i - 1] + nn.functional.interpolate(laterals[i], size=prev, mode="nearest")
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals))]
        outs.append(self.fpn_convs[len(laterals)](inputs[-1]))  # relu_before_extra_convs=False
        for i in range(len(laterals) + 1, self.num_outs):
            outs.append(self.fpn_convs[i](outs[-1]))
        return outs


def mmdet_fpn_retinanet(h, w):
    class Det(nn.Module):
        def __init__(self):
            super().__init__()
            self.neck = MmdetFPN()

    def run(m, x):
        outs = m.neck([None, x["c3"], x["c4"], x["c5"]])
        return {f"p{l}": o for l, o in zip(range(3, 8), outs)}

    return Det(), {"c3": (512, h // 8, w // 8), "c4": (1024, h // 16, w // 16), "c5": (2048, h // 32, w // 32)}, run


BIFPN_IN = {"c3": (40, 64, 64), "c4": (112, 32, 32), "c5": (320, 16, 16)}
PANET_IN = {"c3": (256, 80, 80), "c4": (512, 40, 40), "c5": (1024, 20, 20)}
SEED001_IN = {"c3": (128, 52, 52), "c4": (256, 26, 26), "c5": (512, 13, 13)}

# spec file -> (builder, sizes); sizes is None for fixed-size specs, else [H, W] pairs in the
# order of the spec's symbols. The odd sizes are accepted ones (`fpn sizes SPEC`).
SPECS = {
    "bifpn_neck.yaml": (generated("bifpn_neck.yaml", BIFPN_IN), None),
    # C3-C5 of a 512×512 image (the nominal), and of 520×264 (odd: 65×33, 33×17, 17×9)
    "effdet_d0_bifpn.yaml": (effdet_d0_bifpn, [[64, 64, 32, 32, 16, 16], [65, 33, 33, 17, 17, 9]]),
    # P3-P7 of a 224×320 image, and of 97×131
    "fcos_head.yaml": (fcos_head, [[28, 40, 14, 20, 7, 10, 4, 5, 2, 3], [13, 17, 7, 9, 4, 5, 2, 3, 1, 2]]),
    "mmdet_fpn_retinanet.yaml": (mmdet_fpn_retinanet, [[224, 320], [800, 1216]]),
    "panet_neck.yaml": (generated("panet_neck.yaml", PANET_IN), None),
    "resnet18_fpn.yaml": (partial(resnet_fpn, 18), [[224, 320], [97, 131]]),
    "resnet50_fpn.yaml": (partial(resnet_fpn, 50), [[224, 320], [250, 250], [97, 131]]),
    "retinanet_p3p7.yaml": (retinanet_p3p7, None),
    "seed000_pyramid_block.yaml": (seed000, None),
    "seed001_neck.yaml": (generated("seed001_neck.yaml", SEED001_IN), None),
    "seed001_neck_on_resnet18.yaml": (partial(on_resnet18, "seed001_neck_on_resnet18.yaml", [3, 4, 5]), [[224, 320], [250, 250]]),
    "seed002_resnet18_pyramid.yaml": (seed002, None),
    "seed003_fpn_shared_head.yaml": (partial(on_resnet18, "seed003_fpn_shared_head.yaml", [2, 3, 4, 5], 256, 256), None),
    "smp_unet_resnet34.yaml": (smp_unet_resnet34, [[224, 320], [75, 101]]),
    "unet_decoder.yaml": (generated("unet_decoder.yaml", lambda h, w: {"x": (3, h, w)}), [[224, 320], [97, 131]]),
    "unet_original.yaml": (unet_original, [[572, 572], [189, 203]]),
    "yolov8.yaml": (yolov8n, [[224, 320], [89, 121]]),
    "yolov8n_c2f_block.yaml": (yolov8n_c2f, [[20, 24], [7, 9]]),
}


def shape(t):
    return list(t.shape[1:])


def record(model, inputs, run):
    model.eval()
    sd = OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    seen = OrderedDict()
    hooks = []
    for name, mod in model.named_modules():
        if any(True for _ in mod.parameters(recurse=False)) or any(True for _ in mod.buffers(recurse=False)):
            seen[name] = []
            hooks.append(mod.register_forward_hook(lambda m, i, o, name=name: seen[name].append(shape(o))))
    xs = {k: torch.zeros(1, *s) for k, s in inputs.items()}
    with torch.no_grad():
        outs = run(model, xs)
    for h in hooks:
        h.remove()
    return {
        "inputs": {k: list(s) for k, s in inputs.items()},
        "state_dict": sd,
        "modules": seen,
        "outputs": OrderedDict((k, shape(v)) for k, v in outs.items()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", metavar="SPEC", help="rewrite only this spec's entry (e.g. unet_decoder.yaml)")
    fpn_torch.add_argument(ap)
    only = ap.parse_args().only
    torch.manual_seed(0)
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml")))
    missing = [f for f in files if f not in SPECS]
    if missing:
        raise SystemExit(f"no PyTorch model for: {', '.join(missing)} (add it to SPECS)")
    if only is None and torchvision is None:
        raise SystemExit("torchvision is needed (without it, only `--only unet_decoder.yaml` runs)")
    specs = []
    for f in files:
        if only is not None and f != only:
            continue
        build, sizes = SPECS[f]
        cases = []
        for size in sizes or [None]:
            model, inputs, run = build(*size) if size else build()
            case = {"size": size or []}
            case.update(record(model, inputs, run))
            cases.append(case)
            print(f"specs/{f} {size or ''}: {len(case['state_dict'])} tensors, outputs "
                  + ", ".join(f"{k}={v}" for k, v in case["outputs"].items()))
        specs.append({"spec": f"specs/{f}", "cases": cases})
    if only is not None:  # replace that spec's entry in the existing fixture, keep the rest
        with open(OUT) as fh:
            doc = json.load(fh)
        doc["specs"] = sorted([s for s in doc["specs"] if s["spec"] != f"specs/{only}"] + specs, key=lambda s: s["spec"])
    else:
        doc = {
            "made_by": "tools/torch_shapes.py",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "specs": specs,
        }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
