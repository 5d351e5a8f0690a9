#!/usr/bin/env python3
"""Make the PyTorch shape fixture that fpn-compiler/tests/it/torch_shapes.rs compares against.

For every shipped spec `specs/*.yaml` (not `specs/invalid`) this builds the same model in
PyTorch -- torchvision where it exists (ResNet, FeaturePyramidNetwork, LastLevelMaxPool,
LastLevelP6P7, BackboneWithFPN, Conv2dNormActivation), small nn.Modules written here for the
rest (seed 000's pyramid_block verbatim, seed 001's neck, PANet, BiFPN, seed 003's shared head)
-- with random init (weights=None), runs one forward per test size on zeros, and records:

  * `state_dict`: every state_dict entry, name -> shape (`num_batches_tracked` left out);
  * `modules`: for every module that directly owns parameters or buffers, keyed by its
    state_dict prefix, the list of its output shapes (batch dropped) in call order (a shared
    head module is called once per level);
  * `outputs`: each named output of the spec, name -> shape (batch dropped); names are the
    spec's output field names (`outputs: [neck.p3]` names the output `p3`).

Symbolic specs (`H`, `W`) are run at two accepted sizes (see `fpn sizes SPEC`): 224x320 and an
odd one. Modelling choices where no PyTorch reference exists (BiFPN, PANet) follow fpn's
documented expansion in fpn-compiler/src/lower.rs.

Run from the repository root:  python3 tools/torch_shapes.py
(`python3 tools/torch_shapes.py --only unet_decoder.yaml` rewrites one spec's entry.)
Writes fpn-compiler/tests/fixtures/torch_shapes.json (shapes only, deterministic).
The checked-in fixture was made with torch 2.15.0 and torchvision 0.29.2 (CPU); effdet_d0_bifpn's
entry with effdet 0.4.1 and timm 1.0.31.
"""
import glob
import json
import os
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
try:
    import torchvision
    from torchvision.models import resnet18, resnet50
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.resnet import BasicBlock, ResNet
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
    from torchvision.ops.misc import Conv2dNormActivation
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

    def __init__(self):
        super().__init__()
        self.block = pyramid_block(3, 16)

    def forward(self, x):
        return {"block": self.block(x)}


# ---------------------------------------------------------------------------------------------
# Generic top-down pyramid (torchvision FeaturePyramidNetwork.forward), with the lateral and
# smoothing convs as Conv2dNormActivation (`conv`: no norm, no act, bias; `cna`: conv-BN-act)
# and either nearest upsampling to the lateral's size (`match`) or by a fixed scale.

LeakyRelu01 = partial(nn.LeakyReLU, negative_slope=0.1, inplace=True)


def conv_block(kind, cin, cout, k, s=1):
    if kind == "conv":
        return Conv2dNormActivation(cin, cout, kernel_size=k, stride=s, norm_layer=None, activation_layer=None)
    if kind == "cna_leaky":
        return Conv2dNormActivation(cin, cout, kernel_size=k, stride=s, activation_layer=LeakyRelu01)
    raise ValueError(kind)


class TopDown(nn.Module):
    def __init__(self, in_channels, width, lateral="conv", smooth="conv", scale=None):
        super().__init__()
        self.inner_blocks = nn.ModuleList(conv_block(lateral, c, width, 1) for c in in_channels)
        self.layer_blocks = nn.ModuleList(conv_block(smooth, width, width, 3) for _ in in_channels)
        self.up = nn.Upsample(scale_factor=scale, mode="nearest") if scale else None

    def top_down(self, xs):
        n = len(xs)
        last = self.inner_blocks[n - 1](xs[n - 1])
        results = [None] * n
        results[n - 1] = self.layer_blocks[n - 1](last)
        for idx in range(n - 2, -1, -1):
            lat = self.inner_blocks[idx](xs[idx])
            up = self.up(last) if self.up is not None else F.interpolate(last, size=lat.shape[-2:], mode="nearest")
            last = lat + up
            results[idx] = self.layer_blocks[idx](last)
        return results

    def forward(self, xs):
        return self.top_down(xs)


class PANet(TopDown):
    """FPN top-down, then PANet's bottom-up path as lower.rs expands it:
    n[0] = p[0]; n[i] = pan_blocks[i-1](downsample_blocks[i-1](n[i-1]) + p[i]),
    downsample 3x3/2 and pan 3x3/1 convs of the smoothing kind (`conv` by default)."""

    def __init__(self, in_channels, width, lateral="conv", smooth="conv", scale=None):
        super().__init__(in_channels, width, lateral, smooth, scale)
        n = len(in_channels)
        self.downsample_blocks = nn.ModuleList(conv_block(smooth, width, width, 3, 2) for _ in range(n - 1))
        self.pan_blocks = nn.ModuleList(conv_block(smooth, width, width, 3) for _ in range(n - 1))

    def forward(self, xs):
        ps = self.top_down(xs)
        ns = [ps[0]]
        for i in range(1, len(ps)):
            d = self.downsample_blocks[i - 1](ns[i - 1])
            ns.append(self.pan_blocks[i - 1](d + ps[i]))
        return ns


# ---------------------------------------------------------------------------------------------
# BiFPN, following lower.rs `bifpn`/`fused`: lateral 1x1 convs (`lateral.i.0`), then per repeat
# r a cell `cells.r` with a top-down pass td[i] = fused(p[i], up(td[i+1])) for i = n-2..0
# (td[n-1] = p[n-1]) and a bottom-up pass out[i] = fused(p[i], td[i], maxpool3/2(out[i-1])) for
# 0 < i < n-1, out[n-1] = fused(p[n-1], maxpool(out[n-2])), out[0] = td[0]. Each fused node is
# fast normalized fusion (`fuse.weight`) -> SiLU -> depthwise 3x3 (`dw`, no bias) -> pointwise 1x1
# (`pw`) -> BN (`bn`).


class Fuse(nn.Module):
    def __init__(self, k, eps=1e-4):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(k))
        self.eps = eps

    def forward(self, xs):
        w = F.relu(self.weight)
        return sum(w[i] * x for i, x in enumerate(xs)) / (w.sum() + self.eps)


class Fused(nn.Module):
    def __init__(self, k, width, eps=1e-4):
        super().__init__()
        self.fuse = Fuse(k, eps)
        self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.pw = nn.Conv2d(width, width, 1)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, xs):
        return self.bn(self.pw(self.dw(F.silu(self.fuse(xs)))))


class BiFPNCell(nn.Module):
    def __init__(self, n, width, eps=1e-4):
        super().__init__()
        self.n = n
        self.td = nn.ModuleDict({str(i): Fused(2, width, eps) for i in range(n - 1)})
        self.out = nn.ModuleDict({str(i): Fused(2 if i == n - 1 else 3, width, eps) for i in range(1, n)})

    def forward(self, ps):
        n = self.n
        td = list(ps)
        for i in range(n - 2, -1, -1):
            up = F.interpolate(td[i + 1], size=ps[i].shape[-2:], mode="nearest")
            td[i] = self.td[str(i)]([ps[i], up])
        out = list(td)
        for i in range(1, n):
            down = F.max_pool2d(out[i - 1], 3, 2, 1)
            ins = [ps[i], down] if i == n - 1 else [ps[i], td[i], down]
            out[i] = self.out[str(i)](ins)
        return out


class BiFPN(nn.Module):
    def __init__(self, in_channels, width, repeats, eps=1e-4):
        super().__init__()
        self.lateral = nn.ModuleList(conv_block("conv", c, width, 1) for c in in_channels)
        self.cells = nn.ModuleList(BiFPNCell(len(in_channels), width, eps) for _ in range(repeats))

    def forward(self, xs):
        ps = [l(x) for l, x in zip(self.lateral, xs)]
        for cell in self.cells:
            ps = cell(ps)
        return ps


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


def resnet50_fpn(h, w):
    m = BackboneWithFPN(resnet50(weights=None), {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                        [256, 512, 1024, 2048], 256, extra_blocks=LastLevelMaxPool())
    keys = {"0": "p2", "1": "p3", "2": "p4", "3": "p5", "pool": "p6"}
    return m, {"image": (3, h, w)}, lambda m, x: {keys[k]: v for k, v in m(x["image"]).items()}


def retinanet_p3p7():
    m = BackboneWithFPN(resnet50(weights=None), {"layer2": "0", "layer3": "1", "layer4": "2"},
                        [512, 1024, 2048], 256, extra_blocks=LastLevelP6P7(256, 256))
    keys = {"0": "p3", "1": "p4", "2": "p5", "p6": "p6", "p7": "p7"}
    return m, {"image": (3, 512, 512)}, lambda m, x: {keys[k]: v for k, v in m(x["image"]).items()}


def seed000():
    return Seed000(), {"x": (3, 32, 32)}, lambda m, x: m(x["x"])


def seed001_neck():
    m = Named(None, neck=TopDown([128, 256, 512], 64, "cna_leaky", "cna_leaky", scale=2))
    ins = {"c3": (128, 52, 52), "c4": (256, 26, 26), "c5": (512, 13, 13)}

    def run(m, x):
        p = m.neck([x["c3"], x["c4"], x["c5"]])
        return {"p3": p[0], "p4": p[1], "p5": p[2]}

    return m, ins, run


def seed001_neck_on_resnet18(h, w):
    m = Named(None, body=body_getter(18, [3, 4, 5]), neck=TopDown([128, 256, 512], 64, "cna_leaky", "cna_leaky", scale=2))

    def run(m, x):
        c = m.body(x["image"])
        p = m.neck([c["c3"], c["c4"], c["c5"]])
        return {"p3": p[0], "p4": p[1], "p5": p[2]}

    return m, {"image": (3, h, w)}, run


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


def seed003():
    head = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 9, 3, padding=1))
    m = Named(None, body=body_getter(18, [2, 3, 4, 5]), fpn=TopDown([64, 128, 256, 512], 128, scale=2), head=head)

    def run(m, x):
        c = m.body(x["image"])
        p = m.fpn([c["c2"], c["c3"], c["c4"], c["c5"]])
        # the head runs on each level in order p2..p5 with one set of weights
        return {f"p{i + 2}": m.head(t) for i, t in enumerate(p)}

    return m, {"image": (3, 256, 256)}, run


def panet_neck():
    m = Named(None, neck=PANet([256, 512, 1024], 128))
    ins = {"c3": (256, 80, 80), "c4": (512, 40, 40), "c5": (1024, 20, 20)}

    def run(m, x):
        p = m.neck([x["c3"], x["c4"], x["c5"]])
        return {"p3": p[0], "p4": p[1], "p5": p[2]}

    return m, ins, run


def bifpn_neck():
    m = Named(None, neck=BiFPN([40, 112, 320], 64, 3))
    ins = {"c3": (40, 64, 64), "c4": (112, 32, 32), "c5": (320, 16, 16)}

    def run(m, x):
        p = m.neck([x["c3"], x["c4"], x["c5"]])
        return {"p3": p[0], "p4": p[1], "p5": p[2]}

    return m, ins, run


class UNetDecoder(nn.Module):
    """specs/unet_decoder.yaml: milesial/Pytorch-UNet's `Up` (ConvTranspose2d, F.pad of x1 to
    x2's size with `diff // 2` first, cat([x2, x1])) on a one-level encoder, GroupNorm double
    convs (torchvision's Conv2dNormActivation layout: .0 conv, .1 norm), a sigmoid gate, a
    PixelShuffle head and a centred crop back to the input size."""

    def __init__(self):
        super().__init__()

        def cna(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout), nn.ReLU())

        self.inc, self.mid = cna(3, 32), cna(32, 64)
        self.up = nn.ConvTranspose2d(64, 32, 2, stride=2)
        self.dec = cna(64, 32)
        self.gate = nn.Conv2d(32, 32, 1)
        self.head = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x1 = self.inc(x)
        u = self.up(self.mid(F.max_pool2d(x1, 2)))
        dy, dx = x1.size(2) - u.size(2), x1.size(3) - u.size(3)
        u = F.pad(u, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        d = self.dec(torch.cat([x1, u], dim=1))
        g = d * torch.sigmoid(self.gate(d))
        hi = F.pixel_shuffle(self.head(g), 2)
        t, l = (hi.size(2) - x.size(2)) // 2, (hi.size(3) - x.size(3)) // 2
        return {"mask": hi[:, :, t:t + x.size(2), l:l + x.size(3)], "features": g}


def unet_decoder(h, w):
    return UNetDecoder(), {"x": (3, h, w)}, lambda m, x: m(x["x"])


def yolov8n_c2f(h, w):
    """specs/yolov8n_c2f_block.yaml: ultralytics' C2f at `model.4` (tools/c2f_fixture.py)."""
    import c2f_fixture

    return c2f_fixture.Model(), {"x": (64, h, w)}, lambda m, x: {"cv2": m(x["x"])}


def yolov8n(h, w):
    """specs/yolov8n.yaml: ultralytics' own `DetectionModel("yolov8n.yaml")`, layers 0-21 (the
    inputs of Detect) under `model.N` as in a checkpoint (tools/yolov8_fixture.py)."""
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


# spec file -> (builder, sizes); sizes is None for fixed-size specs, else [H, W] pairs in the
# order of the spec's symbols. The odd sizes are accepted ones (`fpn sizes SPEC`).
SPECS = {
    "bifpn_neck.yaml": (bifpn_neck, None),
    # C3-C5 of a 512×512 image (the nominal), and of 520×264 (odd: 65×33, 33×17, 17×9)
    "effdet_d0_bifpn.yaml": (effdet_d0_bifpn, [[64, 64, 32, 32, 16, 16], [65, 33, 33, 17, 17, 9]]),
    # P3-P7 of a 224×320 image, and of 97×131
    "fcos_head.yaml": (fcos_head, [[28, 40, 14, 20, 7, 10, 4, 5, 2, 3], [13, 17, 7, 9, 4, 5, 2, 3, 1, 2]]),
    "mmdet_fpn_retinanet.yaml": (mmdet_fpn_retinanet, [[224, 320], [800, 1216]]),
    "panet_neck.yaml": (panet_neck, None),
    "resnet50_fpn.yaml": (resnet50_fpn, [[224, 320], [250, 250], [97, 131]]),
    "retinanet_p3p7.yaml": (retinanet_p3p7, None),
    "seed000_pyramid_block.yaml": (seed000, None),
    "seed001_neck.yaml": (seed001_neck, None),
    "seed001_neck_on_resnet18.yaml": (seed001_neck_on_resnet18, [[224, 320], [250, 250]]),
    "seed002_resnet18_pyramid.yaml": (seed002, None),
    "seed003_fpn_shared_head.yaml": (seed003, None),
    "smp_unet_resnet34.yaml": (smp_unet_resnet34, [[224, 320], [75, 101]]),
    "unet_decoder.yaml": (unet_decoder, [[224, 320], [97, 131]]),
    "unet_original.yaml": (unet_original, [[572, 572], [189, 203]]),
    "yolov8n.yaml": (yolov8n, [[224, 320], [89, 121]]),
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
    import sys

    torch.manual_seed(0)
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml")))
    missing = [f for f in files if f not in SPECS]
    if missing:
        raise SystemExit(f"no PyTorch model for: {', '.join(missing)} (add it to SPECS)")
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
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
