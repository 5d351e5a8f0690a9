#!/usr/bin/env python3
"""Make the PyTorch fixtures that fpn-runtime's tests compare against.

Writes fpn-runtime/tests/fixtures/*.safetensors (all f32 unless a test needs another dtype).
Each case `NAME` stores its inputs and expected output as `NAME.x`, `NAME.w`, ..., `NAME.y`, and
its parameters as a small f32 vector `NAME.p` whose layout is documented per file below and
decoded by fpn-runtime/tests/it/fixtures.rs.

Run from the repository root:  python3 tools/runtime_fixtures.py
`python3 tools/runtime_fixtures.py --only decoder` rewrites one file (here decoder.safetensors).
`python3 tools/runtime_fixtures.py --bench` instead times PyTorch (2 threads) on the shapes of
fpn-runtime/benches/ops.rs, for the comparison in fpn-runtime/README.md.
Needs: torch, safetensors. Deterministic (seeded); re-running rewrites identical values for the
same torch version.
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors_fallback import save_file  # safetensors when installed, else a small writer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fpn-runtime", "tests", "fixtures")
torch.manual_seed(0)

PAD_MODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3}
ACTS = ["identity", "relu", "relu6", "leaky_relu", "tanh", "sigmoid", "silu", "hardswish", "gelu", "gelu_tanh"]


def act_fn(name, slope):
    return {
        "identity": lambda t: t,
        "relu": F.relu,
        "relu6": F.relu6,
        "leaky_relu": lambda t: F.leaky_relu(t, slope),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "silu": F.silu,
        "hardswish": F.hardswish,
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    }[name]


def rnd(*shape):
    return torch.rand(*shape) * 2 - 1


def save(name, tensors):
    tensors = {k: v.detach().clone().contiguous() for k, v in tensors.items()}
    path = os.path.join(OUT, name)
    save_file(tensors, path)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def conv_fixtures():
    """conv.safetensors: NAME.p = [sh, sw, pt, pb, pl, pr, dh, dw, groups, pad_mode, act, slope, has_bias]."""
    t = {}

    def case(name, n, cin, h, w, cout, k, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1,
             mode="zeros", act="identity", slope=0.01, bias=True):
        kh, kw = k
        x = rnd(n, cin, h, w)
        wt = rnd(cout, cin // groups, kh, kw) * (1.0 / math.sqrt(cin // groups * kh * kw))
        b = rnd(cout) if bias else None
        pt, pb, pl, pr = pad
        if mode == "zeros":
            xp = F.pad(x, (pl, pr, pt, pb))
        else:
            xp = F.pad(x, (pl, pr, pt, pb), mode=mode)
        y = F.conv2d(xp, wt, b, stride=stride, dilation=dil, groups=groups)
        y = act_fn(act, slope)(y)
        # Cross-check the F.pad route against nn.Conv2d where PyTorch's module can express it.
        if pt == pb and pl == pr:
            m = torch.nn.Conv2d(cin, cout, k, stride, (pt, pl), dil, groups, bias, padding_mode=mode)
            with torch.no_grad():
                m.weight.copy_(wt)
                if bias:
                    m.bias.copy_(b)
                assert torch.allclose(act_fn(act, slope)(m(x)), y, atol=1e-6)
        t[f"{name}.x"] = x
        t[f"{name}.w"] = wt
        if bias:
            t[f"{name}.b"] = b
        t[f"{name}.y"] = y
        t[f"{name}.p"] = torch.tensor([*stride, *pad, *dil, groups, PAD_MODES[mode], ACTS.index(act), slope,
                                        1.0 if bias else 0.0], dtype=torch.float32)

    case("basic3x3_b3", 3, 4, 7, 9, 5, (3, 3), pad=(1, 1, 1, 1))
    case("nobias", 1, 3, 6, 5, 2, (3, 3), pad=(1, 1, 1, 1), bias=False)
    case("stride_gt_kernel", 2, 3, 11, 10, 4, (2, 2), stride=(3, 3))
    case("stride_hw", 1, 3, 9, 11, 4, (3, 2), stride=(2, 3), pad=(1, 1, 0, 0))
    case("dilation", 2, 3, 12, 13, 4, (3, 3), pad=(2, 2, 2, 2), dil=(2, 2))
    case("dilation_hw_stride", 1, 2, 13, 12, 3, (3, 3), stride=(2, 1), pad=(1, 1, 3, 3), dil=(1, 3))
    case("depthwise", 3, 6, 9, 7, 6, (3, 3), pad=(1, 1, 1, 1), groups=6)
    case("depthwise_s2_d2", 2, 5, 13, 11, 5, (3, 3), stride=(2, 2), pad=(2, 2, 2, 2), dil=(2, 2), groups=5)
    case("depthwise_mult2", 1, 3, 8, 9, 6, (3, 3), pad=(1, 1, 1, 1), groups=3)
    case("groups2", 2, 6, 7, 8, 4, (3, 3), pad=(1, 1, 1, 1), groups=2)
    case("pointwise_b3", 3, 8, 5, 7, 6, (1, 1))
    case("pointwise_s2", 1, 8, 9, 7, 6, (1, 1), stride=(2, 2))
    case("pointwise_pad", 1, 4, 5, 5, 3, (1, 1), pad=(1, 1, 1, 1))
    case("stem7x7_s2", 1, 3, 23, 21, 8, (7, 7), stride=(2, 2), pad=(3, 3, 3, 3))
    case("asym_zero_pad", 2, 3, 8, 7, 4, (3, 3), pad=(0, 2, 1, 0))
    for mode in ["reflect", "replicate", "circular"]:
        case(f"mode_{mode}", 2, 3, 7, 8, 4, (3, 3), pad=(1, 1, 2, 2), mode=mode)
        case(f"mode_{mode}_asym_s2", 1, 3, 8, 9, 4, (3, 3), stride=(2, 2), pad=(2, 0, 1, 2), mode=mode)
        case(f"mode_{mode}_depthwise", 1, 4, 6, 5, 4, (3, 3), pad=(1, 1, 1, 1), mode=mode, groups=4)
    case("mode_circular_full", 1, 2, 3, 4, 2, (3, 3), pad=(3, 3, 4, 4), mode="circular")
    case("mode_reflect_max", 1, 2, 3, 4, 2, (3, 3), pad=(2, 2, 3, 3), mode="reflect")
    for act in ACTS[1:]:
        case(f"act_{act}", 1, 4, 6, 7, 5, (3, 3), pad=(1, 1, 1, 1), act=act, slope=0.2)
    # Large enough to take the parallel / tiled GEMM paths.
    case("big3x3", 1, 16, 23, 25, 24, (3, 3), pad=(1, 1, 1, 1), act="relu")
    case("big_pointwise", 1, 32, 23, 23, 16, (1, 1))
    case("big_depthwise", 1, 16, 36, 35, 16, (5, 5), pad=(2, 2, 2, 2), groups=16, act="silu")
    save("conv.safetensors", t)


def act_fixtures():
    """act.safetensors: x and one output per activation NAME.y; leaky_relu uses slope 0.1."""
    x = torch.linspace(-8, 8, 161).reshape(1, 7, 23, 1).repeat(2, 1, 1, 3)
    x = x + rnd(*x.shape) * 0.05
    x[0, 0, 0, 0] = 0.0
    x[0, 0, 0, 1] = -3.0
    x[0, 0, 0, 2] = 3.0
    t = {"x": x}
    for a in ACTS:
        t[f"{a}.y"] = act_fn(a, 0.1)(x)
    save("act.safetensors", t)


def norm_fixtures():
    """norm.safetensors: NAME.{x,weight,bias,mean,var,y}, NAME.p = [eps]; fold case adds conv w/b."""
    t = {}
    for name, (n, c, h, w), eps in [("bn_b3", (3, 5, 7, 6), 1e-5), ("bn_eps", (1, 4, 3, 5), 1e-3)]:
        bn = torch.nn.BatchNorm2d(c, eps=eps).eval()
        with torch.no_grad():
            bn.weight.copy_(rnd(c) + 1.0)
            bn.bias.copy_(rnd(c))
            bn.running_mean.copy_(rnd(c))
            bn.running_var.copy_(torch.rand(c) + 0.2)
        x = rnd(n, c, h, w) * 3
        with torch.no_grad():
            y = bn(x)
        t.update({f"{name}.x": x, f"{name}.weight": bn.weight.detach(), f"{name}.bias": bn.bias.detach(),
                  f"{name}.mean": bn.running_mean, f"{name}.var": bn.running_var, f"{name}.y": y,
                  f"{name}.p": torch.tensor([eps])})
    # conv -> bn, for fold_batch_norm.
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    bn = torch.nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        bn.weight.copy_(rnd(4) + 1.0)
        bn.bias.copy_(rnd(4))
        bn.running_mean.copy_(rnd(4))
        bn.running_var.copy_(torch.rand(4) + 0.2)
        x = rnd(2, 3, 6, 7)
        y = bn(conv(x))
    t.update({"fold.x": x, "fold.w": conv.weight.detach(), "fold.b": conv.bias.detach(),
              "fold.weight": bn.weight.detach(), "fold.bias": bn.bias.detach(), "fold.mean": bn.running_mean,
              "fold.var": bn.running_var, "fold.y": y, "fold.p": torch.tensor([bn.eps])})
    save("norm.safetensors", t)


def pool_fixtures():
    """pool.safetensors: NAME.p = [is_max, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, count_include_pad]."""
    t = {}

    def case(name, kind, shape, k, s, p, d=(1, 1), ceil=False, cip=True):
        x = rnd(*shape)
        if kind == "max":
            y = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
        else:
            y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        t[f"{name}.x"] = x
        t[f"{name}.y"] = y
        t[f"{name}.p"] = torch.tensor([1.0 if kind == "max" else 0.0, *k, *s, *p, *d, float(ceil), float(cip)])

    case("max_k2s2", "max", (3, 2, 8, 9), (2, 2), (2, 2), (0, 0))
    case("max_k3s2p1", "max", (2, 3, 9, 7), (3, 3), (2, 2), (1, 1))
    case("max_ceil", "max", (1, 2, 9, 10), (2, 2), (2, 2), (0, 0), ceil=True)
    case("max_ceil_p1", "max", (1, 2, 10, 9), (3, 3), (2, 2), (1, 1), ceil=True)
    case("max_ceil_lastwindow", "max", (1, 2, 5, 6), (2, 2), (3, 3), (1, 1), ceil=True)
    case("max_dilation", "max", (2, 2, 11, 12), (3, 3), (2, 1), (1, 1), d=(2, 2))
    case("max_stride_gt_kernel", "max", (1, 3, 11, 10), (2, 2), (3, 3), (0, 0))
    case("max_k1s2", "max", (1, 2, 7, 7), (1, 1), (2, 2), (0, 0))
    case("max_rect", "max", (1, 2, 8, 9), (3, 2), (1, 2), (1, 0), ceil=True)
    case("avg_k2s2", "avg", (3, 2, 8, 9), (2, 2), (2, 2), (0, 0))
    case("avg_k3s2p1_incl", "avg", (2, 3, 9, 7), (3, 3), (2, 2), (1, 1), cip=True)
    case("avg_k3s2p1_excl", "avg", (2, 3, 9, 7), (3, 3), (2, 2), (1, 1), cip=False)
    case("avg_ceil_incl", "avg", (1, 2, 10, 9), (3, 3), (2, 2), (1, 1), ceil=True, cip=True)
    case("avg_ceil_excl", "avg", (1, 2, 10, 9), (3, 3), (2, 2), (1, 1), ceil=True, cip=False)
    case("avg_ceil_nopad", "avg", (1, 2, 9, 10), (2, 2), (2, 2), (0, 0), ceil=True)
    case("avg_stride_gt_kernel", "avg", (1, 3, 11, 10), (2, 2), (3, 3), (0, 0))
    case("avg_rect", "avg", (1, 2, 8, 9), (3, 2), (1, 2), (1, 1), ceil=True, cip=False)
    case("max_big", "max", (1, 8, 30, 30), (3, 3), (2, 2), (1, 1))
    save("pool.safetensors", t)


def resize_fixtures():
    """resize.safetensors: NAME.p = [is_bilinear, align_corners, by_scale, a_num, a_den, b_num, b_den]:
    scale factors (as exact fractions, so Rust rebuilds Python's f64 with a_num / a_den) or sizes."""
    from fractions import Fraction
    t = {}

    def case(name, mode, shape, scale=None, size=None, align=False):
        x = rnd(*shape)
        kw = {"align_corners": align} if mode == "bilinear" else {}
        if scale is not None:
            y = F.interpolate(x, scale_factor=scale, mode=mode, **kw)
            fr = [Fraction(str(v)) for v in scale]
            assert all(f.numerator / f.denominator == v for f, v in zip(fr, scale))
            p = [float(mode == "bilinear"), float(align), 1.0, fr[0].numerator, fr[0].denominator,
                 fr[1].numerator, fr[1].denominator]
        else:
            y = F.interpolate(x, size=size, mode=mode, **kw)
            p = [float(mode == "bilinear"), float(align), 0.0, size[0], 1, size[1], 1]
        t[f"{name}.x"] = x
        t[f"{name}.y"] = y
        t[f"{name}.p"] = torch.tensor(p, dtype=torch.float32)

    case("nearest_s2_b3", "nearest", (3, 2, 5, 7), scale=(2.0, 2.0))
    case("nearest_s1_5", "nearest", (1, 2, 7, 9), scale=(1.5, 1.5))
    case("nearest_s3_s1_5", "nearest", (1, 2, 5, 6), scale=(3.0, 1.5))
    case("nearest_s0_5", "nearest", (1, 2, 9, 8), scale=(0.5, 0.5))
    case("nearest_s2_3", "nearest", (1, 2, 13, 11), scale=(2.3, 1.7))
    case("nearest_size_up", "nearest", (2, 2, 7, 9), size=(10, 13))
    case("nearest_size_down", "nearest", (1, 2, 9, 11), size=(4, 5))
    case("nearest_size_2x", "nearest", (1, 2, 5, 6), size=(10, 12))
    case("nearest_big", "nearest", (1, 8, 20, 20), scale=(2.0, 2.0))
    for align in [False, True]:
        a = "ac" if align else "noac"
        case(f"bilinear_{a}_s2", "bilinear", (2, 2, 5, 7), scale=(2.0, 2.0), align=align)
        case(f"bilinear_{a}_s1_5", "bilinear", (1, 2, 7, 9), scale=(1.5, 1.5), align=align)
        case(f"bilinear_{a}_size", "bilinear", (1, 3, 7, 9), size=(10, 13), align=align)
        case(f"bilinear_{a}_down", "bilinear", (1, 2, 9, 11), size=(4, 5), align=align)
        case(f"bilinear_{a}_to1", "bilinear", (1, 2, 4, 5), size=(1, 3), align=align)
        case(f"bilinear_{a}_s2_3", "bilinear", (1, 2, 6, 7), scale=(2.3, 1.7), align=align)
    save("resize.safetensors", t)


def merge_fixtures():
    """merge.safetensors: add/concat/mean/weighted_fusion inputs a, b, c and outputs; fusion weights w, eps p."""
    a, b, c = rnd(3, 4, 5, 7), rnd(3, 4, 5, 7), rnd(3, 4, 5, 7)
    d = rnd(3, 2, 5, 7)
    t = {"a": a, "b": b, "c": c, "d": d, "add.y": a + b, "concat.y": torch.cat([a, d, b], 1),
         "mean.y": torch.stack([a, b, c]).mean(0)}
    for name, w in [("fusion", torch.tensor([0.7, -0.3, 1.2])), ("fusion_pos", torch.tensor([0.5, 0.25, 2.0]))]:
        eps = 1e-4
        rw = F.relu(w)
        rw = rw / (rw.sum() + eps)
        t[f"{name}.w"] = w
        t[f"{name}.p"] = torch.tensor([eps])
        t[f"{name}.y"] = rw[0] * a + rw[1] * b + rw[2] * c
    save("merge.safetensors", t)


def decoder_fixtures():
    """decoder.safetensors, the ops of issue "Reach", by name prefix:
    ct_*:  conv_transpose2d, NAME.{x,w,b,y}, NAME.p = [sh, sw, ph, pw, oph, opw, dh, dw, groups, has_bias]
    gn_*:  group_norm, NAME.{x,weight,bias,y}, NAME.p = [groups, eps]
    pad_*: pad, NAME.{x,y}, NAME.p = [top, bottom, left, right, pad_mode, value]
    padto_*: pad_to (milesial U-Net split), NAME.{x,y}, NAME.p = [h, w]
    crop_*: crop, NAME.{x,y}, NAME.p = [h, w, top, left, centred]
    ps_*:  pixel_shuffle (up=1) / pixel_unshuffle (up=0), NAME.{x,y}, NAME.p = [r, up]
    mul_*: mul of NAME.a, NAME.b, NAME.y, NAME.p = [0]
    Seeded on its own, so `--only decoder` and a full run write the same values."""
    torch.manual_seed(1)
    t = {}

    def ct(name, n, cin, h, w, cout, k, s=(1, 1), p=(0, 0), op=(0, 0), d=(1, 1), g=1, bias=True):
        x = rnd(n, cin, h, w)
        wt = rnd(cin, cout // g, *k)
        b = rnd(cout) if bias else None
        y = F.conv_transpose2d(x, wt, b, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
        t[f"{name}.x"], t[f"{name}.w"], t[f"{name}.y"] = x, wt, y
        if bias:
            t[f"{name}.b"] = b
        t[f"{name}.p"] = torch.tensor([*s, *p, *op, *d, g, float(bias)], dtype=torch.float32)

    ct("ct_k2s2", 2, 4, 5, 6, 6, (2, 2), s=(2, 2))
    ct("ct_k3s2p1op1", 1, 8, 7, 5, 4, (3, 3), s=(2, 2), p=(1, 1), op=(1, 1))
    ct("ct_k4s2p1_nobias", 1, 6, 6, 6, 6, (4, 4), s=(2, 2), p=(1, 1), bias=False)
    ct("ct_groups_dil", 1, 6, 5, 4, 9, (3, 2), s=(2, 3), p=(2, 1), op=(1, 2), d=(2, 1), g=3)
    ct("ct_1x1", 1, 5, 3, 3, 7, (1, 1))
    ct("ct_depthwise", 2, 4, 4, 3, 4, (3, 3), s=(1, 2), p=(1, 0), g=4)
    ct("ct_wide", 1, 32, 9, 11, 16, (3, 3), s=(2, 2), p=(1, 1), op=(1, 0))

    def gn(name, shape, groups, eps=1e-5):
        x = rnd(*shape) * 3 + 0.5
        wt, b = rnd(shape[1]), rnd(shape[1])
        y = F.group_norm(x, groups, wt, b, eps)
        t[f"{name}.x"], t[f"{name}.weight"], t[f"{name}.bias"], t[f"{name}.y"] = x, wt, b, y
        t[f"{name}.p"] = torch.tensor([groups, eps], dtype=torch.float32)

    gn("gn_32", (2, 64, 5, 7), 32)
    gn("gn_1", (1, 6, 4, 4), 1, 1e-3)
    gn("gn_inst", (1, 5, 3, 9), 5)
    gn("gn_1x1", (2, 8, 1, 1), 2)

    modes = ["constant", "reflect", "replicate", "circular"]

    def pad(name, shape, p, mode="constant", value=0.0):
        x = rnd(*shape)
        top, bottom, left, right = p
        kw = {"value": value} if mode == "constant" else {}
        y = F.pad(x, (left, right, top, bottom), mode=mode, **kw)
        t[f"{name}.x"], t[f"{name}.y"] = x, y
        t[f"{name}.p"] = torch.tensor([*p, modes.index(mode), value], dtype=torch.float32)

    pad("pad_const", (1, 3, 4, 5), (1, 2, 0, 3), value=-1.5)
    pad("pad_zero", (2, 2, 3, 3), (2, 2, 2, 2))
    pad("pad_reflect", (1, 2, 5, 4), (4, 1, 3, 0), "reflect")
    pad("pad_replicate", (1, 2, 3, 2), (3, 0, 1, 4), "replicate")
    pad("pad_circular", (1, 2, 3, 4), (3, 1, 4, 2), "circular")

    def padto(name, shape, size):
        x = rnd(*shape)
        dy, dx = size[0] - shape[2], size[1] - shape[3]
        y = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])  # milesial U-Net's Up.forward
        t[f"{name}.x"], t[f"{name}.y"] = x, y
        t[f"{name}.p"] = torch.tensor(size, dtype=torch.float32)

    padto("padto_odd", (1, 3, 5, 4), (8, 7))
    padto("padto_same", (1, 3, 5, 4), (5, 4))

    def crop(name, shape, size, off=None):
        x = rnd(*shape)
        h, w = shape[2], shape[3]
        top, left = off if off is not None else ((h - size[0]) // 2, (w - size[1]) // 2)
        y = x[:, :, top:top + size[0], left:left + size[1]]
        t[f"{name}.x"], t[f"{name}.y"] = x, y
        t[f"{name}.p"] = torch.tensor([*size, top, left, float(off is None)], dtype=torch.float32)

    crop("crop_centre", (1, 2, 9, 8), (4, 5))
    crop("crop_offset", (2, 2, 6, 6), (2, 3), (3, 1))

    def ps(name, shape, r, up):
        x = rnd(*shape)
        y = F.pixel_shuffle(x, r) if up else F.pixel_unshuffle(x, r)
        t[f"{name}.x"], t[f"{name}.y"] = x, y
        t[f"{name}.p"] = torch.tensor([r, float(up)], dtype=torch.float32)

    ps("ps_up2", (2, 8, 3, 5), 2, True)
    ps("ps_up3", (1, 9, 2, 2), 3, True)
    ps("ps_down2", (2, 3, 6, 4), 2, False)

    a, b = rnd(2, 3, 4, 5), rnd(2, 3, 4, 5)
    t["mul_ab.a"], t["mul_ab.b"], t["mul_ab.y"], t["mul_ab.p"] = a, b, a * b, torch.zeros(1)
    save("decoder.safetensors", t)


def weights_fixtures():
    """model.safetensors: state_dict of nn.Sequential(Conv2d(3,4,3,padding=1), BatchNorm2d(4)) as
    PyTorch saves it (includes the int64 `1.num_batches_tracked`); model_io.safetensors: eval-mode x, y.
    dtypes.safetensors: the same values stored as f16/bf16/f64/f32 plus int tensors, and `*.ref`
    f32 tensors holding what each converts to."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
    with torch.no_grad():
        model[1].weight.copy_(rnd(4) + 1.0)
        model[1].bias.copy_(rnd(4))
        model[1].running_mean.copy_(rnd(4))
        model[1].running_var.copy_(torch.rand(4) + 0.2)
    model.eval()
    x = rnd(2, 3, 5, 6)
    with torch.no_grad():
        y = model(x)
    save("model.safetensors", {k: v for k, v in model.state_dict().items()})
    save("model_io.safetensors", {"x": x, "y": y})
    v = rnd(2, 3) * 10
    t = {
        "f32": v,
        "f16": v.half(), "f16.ref": v.half().float(),
        "bf16": v.bfloat16(), "bf16.ref": v.bfloat16().float(),
        "f64": v.double(), "f64.ref": v.double().float(),
        "i64": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "u8": torch.arange(6, dtype=torch.uint8).reshape(2, 3),
    }
    save("dtypes.safetensors", t)


def bench(rounds=5, reps=30):
    """Best-of-`reps` wall time per op, best over `rounds` (the machine is shared; take the max)."""
    import time
    torch.set_num_threads(2)
    convs = [("conv 256->256 3x3 @104x104", (1, 256, 104, 104), (256, 256, 3, 3), 1, 1),
             ("conv 256->256 3x3 @104x104 batch 2", (2, 256, 104, 104), (256, 256, 3, 3), 1, 1),
             ("conv 64->256 1x1 @104x104", (1, 64, 104, 104), (256, 64, 1, 1), 1, 0),
             ("conv 3->64 7x7/2 pad3 @416x416", (1, 3, 416, 416), (64, 3, 7, 7), 2, 3)]
    ops = []
    for name, xs, ws, s, p in convs:
        x, w, b = rnd(*xs), rnd(*ws) * 0.1, rnd(ws[0])
        flops = 2 * F.conv2d(x, w, b, stride=s, padding=p).numel() * ws[1] * ws[2] * ws[3]
        ops.append((name, flops, lambda x=x, w=w, b=b, s=s, p=p: F.conv2d(x, w, b, stride=s, padding=p)))
    small, big = rnd(1, 256, 52, 52), rnd(1, 256, 104, 104)
    ops.append(("upsample_nearest x2 256x52x52", 0, lambda: F.interpolate(small, scale_factor=2.0, mode="nearest")))
    ops.append(("add 256x104x104", 0, lambda: big + big))
    best = {}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, flops, f in ops:
                f()
                for _ in range(reps):
                    t = time.perf_counter()
                    f()
                    best[name] = min(best.get(name, 1e9), time.perf_counter() - t)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, flops, _ in ops:
        gf = f"{flops / best[name] / 1e9:12.1f}" if flops else ""
        print(f"{name:<40} {best[name] * 1e3:10.3f} {gf}")


if __name__ == "__main__":
    import sys
    if "--bench" in sys.argv:
        bench()
        sys.exit(0)
    os.makedirs(OUT, exist_ok=True)
    if "--only" in sys.argv:  # e.g. `--only decoder`: rewrite one file, leave the others
        globals()[sys.argv[sys.argv.index("--only") + 1] + "_fixtures"]()
        sys.exit(0)
    conv_fixtures()
    act_fixtures()
    norm_fixtures()
    pool_fixtures()
    resize_fixtures()
    merge_fixtures()
    weights_fixtures()
    decoder_fixtures()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"total {total} bytes")
