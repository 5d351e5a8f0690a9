#!/usr/bin/env python3
"""Make the one-op PyTorch fixture that fpn-compiler/tests/op_fixtures.rs compares against.

Generates a few hundred one-op specs (deterministic seed) over every primitive op of the spec
language -- conv (every kernel/stride/dilation/padding form: n, [h, w], [top, bottom, left,
right], `same`; groups; padding modes zeros/reflect/replicate/circular; bias), batch_norm, the
activations, max_pool (dilation, ceil_mode), avg_pool (ceil_mode, count_include_pad), upsample
(integer, float and non-integer scales like 1.16 and 17/7, [sh, sw] pairs, nearest/bilinear,
align_corners, `match:` another input), and add/concat/mean/fuse of two inputs of possibly
different shapes -- on inputs of 1-17 channels and heights/widths 1-40 (1 and odd included).
Rejections are covered on purpose: windows larger than the input, reflect padding >= the size,
circular padding > the size, pool padding > kernel/2 (also the dilated case `max_pool {kernel:
2, stride: 1, padding: 2, dilation: 3}`), `same` with a stride, groups not dividing channels,
merges of different shapes, nearest with align_corners, scales whose output is empty, and the
f64 rounding of `upsample 1.16` on 25. Issue "Reach" added group_norm, conv_transpose
(output_padding, groups, dilation), pad (fixed amounts in every mode, `value`, `match:`), crop
(`size`, `offset`, `match:`), pixel_shuffle / pixel_unshuffle and mul, then one part of
`chunk` / `split` (the spec returns `out.<part>`; a chunk count that does not divide the channels
is refused as fpn refuses it, where PyTorch would make a smaller last chunk), each drawn after
the earlier cases so those keep their values. Then `padding: tf_same` on conv, max_pool and
avg_pool (TensorFlow's `SAME`), run through timm's own `create_conv2d(..., padding='same')` and
`create_pool2d(..., padding='same')` (`Conv2dSame`, `MaxPool2dSame`, `AvgPool2dSame` where the
padding depends on the size); a `padding_mode` other than zeros or `ceil_mode` with it are
refused as fpn refuses them (E0233).

Each case runs the PyTorch module/functional on a random input and records whether PyTorch
accepted it and the output shape [C, H, W] (batch 1 dropped), or PyTorch's error message.

Semantics follow docs/spec.md: `add`, `mul`, `mean` and `fuse` need equal shapes (fpn does not
broadcast), so they are computed through `torch.stack`, which refuses unequal shapes like fpn;
`concat` is `torch.cat(dim=1)`; a `[top, bottom, left, right]` conv padding is
`F.pad(x, (left, right, top, bottom), mode)` followed by the unpadded conv (as nn.Conv2d does for
non-zero padding modes); `fuse` is BiFPN's fast normalized fusion. `pad: {match: y}` is F.pad
with milesial U-Net's split (`diff // 2` first) and refused for a smaller target (F.pad would
crop); `crop` is slicing, refused when the window leaves the input (slicing would silently give
a smaller tensor).

Fixture case fields (read by fpn-compiler/tests/op_fixtures.rs):
  id      "<op>-<n>"
  inputs  {"x": [C, H, W]} or {"x": [...], "y": [...]}
  node    the op exactly as written in the spec (a JSON value, YAML flow style is the same)
  from    the node's `from:` (only for `{match: y}` of upsample, pad, crop), else absent
  yaml    the complete spec text
  torch   {"accepted": true, "shape": [C, H, W]} or {"accepted": false, "error": "..."}

Run from the repository root:  python3 tools/op_fixtures.py
Writes fpn-compiler/tests/fixtures/ops_torch.json (deterministic for a given torch version).
Needs: torch (CPU is enough). The checked-in fixture was made with the torch version recorded
in its "torch" field.
"""
import json
import math
import os
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "fpn-compiler", "tests", "fixtures", "ops_torch.json")
SEED = 10

ACTS = ["relu", "relu6", "tanh", "sigmoid", "silu", "hardswish", "identity", "gelu", "leaky_relu"]
MODES = ["zeros", "reflect", "replicate", "circular"]


# ---------------------------------------------------------------------------------------------
# Spec text


def fmt(v):
    """A JSON value in YAML flow style (the spec's syntax)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        assert "e" not in r and "inf" not in r and "nan" not in r, r
        return r
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def spec_yaml(inputs, node, frm, part=None):
    """The spec text of one case; the Rust tests render the same layout."""
    ins = ", ".join(f"{k}: {fmt(v)}" for k, v in inputs.items())
    if frm is not None:
        assert isinstance(node, dict) and len(node) == 1
        (op, args), = node.items()
        n = f"{{from: {frm}, {op}: {fmt(args)}}}"
    else:
        n = fmt(node)
    out = "out" if part is None else f"out.{part}"
    return f"name: OpCase\ninputs: {{{ins}}}\nnodes:\n  out: {n}\noutputs: [{out}]\n"


# ---------------------------------------------------------------------------------------------
# PyTorch


def pair(v, default):
    if v is None:
        v = default
    return (v, v) if isinstance(v, int) else tuple(v)


def run_conv(x, a):
    c = x.shape[1]
    k = pair(a["kernel"], None)
    s = pair(a.get("stride"), 1)
    d = pair(a.get("dilation"), 1)
    g = a.get("groups", 1)
    mode = a.get("padding_mode", "zeros")
    bias = a.get("bias", True)
    p = a.get("padding", 0)
    if isinstance(p, list) and len(p) == 4:
        t, b, l, r = p
        conv = nn.Conv2d(c, a["out"], k, s, padding=0, dilation=d, groups=g, bias=bias)
        xp = F.pad(x, (l, r, t, b)) if mode == "zeros" else F.pad(x, (l, r, t, b), mode=mode)
        return conv(xp)
    if p != "same":
        p = pair(p, 0)
    conv = nn.Conv2d(c, a["out"], k, s, padding=p, dilation=d, groups=g, bias=bias, padding_mode=mode)
    return conv(x)


def run_act(x, node):
    if isinstance(node, str):
        name, arg = node, None
    else:
        (name, arg), = node.items()
    if name == "leaky_relu":
        slope = 0.01 if arg is None else (arg if isinstance(arg, (int, float)) else arg["slope"])
        return nn.LeakyReLU(slope)(x)
    if name == "gelu":
        approx = "none" if arg is None else arg["approximate"]
        return nn.GELU(approximate=approx)(x)
    return {
        "relu": nn.ReLU(),
        "relu6": nn.ReLU6(),
        "tanh": nn.Tanh(),
        "sigmoid": nn.Sigmoid(),
        "silu": nn.SiLU(),
        "hardswish": nn.Hardswish(),
        "identity": nn.Identity(),
    }[name](x)


def run_tf_same(x, op, a):
    """`padding: tf_same` through timm's own layers (TensorFlow `SAME`)."""
    from timm.layers import create_conv2d, create_pool2d

    k = pair(a["kernel"], None)
    d = pair(a.get("dilation"), 1)
    if op == "conv":
        if a.get("padding_mode", "zeros") != "zeros":
            raise ValueError("tf_same pads with zeros (fpn: E0233)")
        s = pair(a.get("stride"), 1)
        conv = create_conv2d(
            x.shape[1], a["out"], k, stride=s, dilation=d, padding="same", groups=a.get("groups", 1), bias=a.get("bias", True)
        )
        return conv(x)
    if a.get("ceil_mode", False):
        raise ValueError("tf_same with ceil_mode (fpn: E0233)")
    s = pair(a.get("stride"), a["kernel"])
    if op == "max_pool":
        return create_pool2d("max", k, stride=s, padding="same", dilation=d)(x)
    return create_pool2d("avg", k, stride=s, padding="same")(x)


def run_case(inputs, node, part=None):
    torch.manual_seed(0)
    xs = {k: torch.randn(1, *v) for k, v in inputs.items()}
    x = xs["x"]
    if isinstance(node, str):
        op, a = node, None
    else:
        (op, a), = node.items()
    if op in ("conv", "max_pool", "avg_pool") and isinstance(a, dict) and a.get("padding") == "tf_same":
        return run_tf_same(x, op, a)
    if op == "conv":
        return run_conv(x, a)
    if op == "batch_norm":
        eps = 1e-5 if a is None else a["eps"]
        return nn.BatchNorm2d(x.shape[1], eps=eps).eval()(x)
    if op in ACTS:
        return run_act(x, node)
    if op in ("max_pool", "avg_pool") and not isinstance(a, dict):
        a = {"kernel": a}  # the shorthand `max_pool: 2`
    if op in ("max_pool", "avg_pool") and isinstance(a.get("padding"), list) and len(a["padding"]) == 4:
        # fpn's asymmetric pool padding: F.pad first (-inf for max, 0 for avg), then no padding
        t, b, l, r = a["padding"]
        x = F.pad(x, (l, r, t, b), value=float("-inf") if op == "max_pool" else 0.0)
        a = dict(a, padding=0)
    if op == "max_pool":
        return nn.MaxPool2d(
            pair(a["kernel"], None),
            pair(a.get("stride"), a["kernel"]),
            pair(a.get("padding"), 0),
            pair(a.get("dilation"), 1),
            ceil_mode=a.get("ceil_mode", False),
        )(x)
    if op == "avg_pool":
        return nn.AvgPool2d(
            pair(a["kernel"], None),
            pair(a.get("stride"), a["kernel"]),
            pair(a.get("padding"), 0),
            ceil_mode=a.get("ceil_mode", False),
            count_include_pad=a.get("count_include_pad", True),
        )(x)
    if op == "upsample":
        if not isinstance(a, dict):
            a = {"scale": a}
        mode = a.get("mode", "nearest")
        ac = a.get("align_corners", False)
        # nn.Upsample passes align_corners=None for nearest unless it is set; the spec's
        # `align_corners: false` with nearest is the PyTorch default, true is refused.
        kw = {"align_corners": ac} if (mode == "bilinear" or ac) else {}
        if "match" in a:
            return F.interpolate(x, size=xs[a["match"]].shape[-2:], mode=mode, **kw)
        s = a["scale"]
        s = tuple(float(v) for v in s) if isinstance(s, list) else float(s)
        return nn.Upsample(scale_factor=s, mode=mode, **kw)(x)
    if op == "group_norm":
        return nn.GroupNorm(a["groups"], x.shape[1], eps=a.get("eps", 1e-5))(x)
    if op == "conv_transpose":
        return nn.ConvTranspose2d(
            x.shape[1],
            a["out"],
            pair(a["kernel"], None),
            pair(a.get("stride"), 1),
            padding=pair(a.get("padding"), 0),
            output_padding=pair(a.get("output_padding"), 0),
            groups=a.get("groups", 1),
            bias=a.get("bias", True),
            dilation=pair(a.get("dilation"), 1),
        )(x)
    if op == "pad":
        if not isinstance(a, dict):
            a = {"pad": a}
        mode = a.get("mode", "constant")
        kw = {"value": float(a["value"])} if "value" in a else {}
        if "match" in a:
            # fpn pads only: the target must be at least the input (F.pad would crop)
            y = xs[a["match"]]
            dy, dx = y.shape[2] - x.shape[2], y.shape[3] - x.shape[3]
            if dy < 0 or dx < 0:
                raise ValueError("pad to a smaller size (fpn: E0327)")
            return F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2], mode=mode, **kw)
        p = a["pad"]
        p = [p] * 4 if isinstance(p, int) else p
        return F.pad(x, p, mode=mode, **kw)
    if op == "crop":
        h, w = x.shape[2], x.shape[3]
        if "match" in a:
            th, tw = xs[a["match"]].shape[2:]
        else:
            th, tw = pair(a["size"], None)
        if "offset" in a:
            t, l = pair(a["offset"], None)
        else:
            t, l = (h - th) // 2, (w - tw) // 2
        # slicing would silently shorten a window that does not fit: fpn refuses it
        if t < 0 or l < 0 or t + th > h or l + tw > w:
            raise ValueError("crop window outside the input (fpn: E0327)")
        return x[:, :, t:t + th, l:l + tw]
    if op == "chunk":
        if x.shape[1] % a != 0:
            raise ValueError("a chunk count not dividing the channels (fpn: E0329; PyTorch would make a smaller last chunk)")
        return torch.chunk(x, a, 1)[part]
    if op == "split":
        return torch.split(x, a, 1)[part]
    if op == "pixel_shuffle":
        return nn.PixelShuffle(a)(x)
    if op == "pixel_unshuffle":
        return nn.PixelUnshuffle(a)(x)
    refs = a if isinstance(a, list) else a["in"]
    ts = [xs[r] for r in refs]
    if op == "concat":
        return torch.cat(ts, dim=1)
    if op == "add":
        return torch.stack(ts).sum(0)
    if op == "mean":
        return torch.stack(ts).mean(0)
    if op == "mul":
        return torch.stack(ts).prod(0)
    if op == "fuse":
        eps = 1e-4 if isinstance(a, list) else a.get("eps", 1e-4)
        w = F.relu(torch.ones(len(ts)))
        return (torch.stack(ts) * w.view(-1, 1, 1, 1, 1)).sum(0) / (w.sum() + eps)
    raise ValueError(op)


def torch_verdict(inputs, node, part=None):
    try:
        with torch.no_grad():
            y = run_case(inputs, node, part)
    except Exception as e:  # noqa: BLE001 -- every PyTorch refusal is a verdict
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return {"accepted": False, "error": f"{type(e).__name__}: {msg}"[:300]}
    assert y.shape[0] == 1
    return {"accepted": True, "shape": list(y.shape[1:])}


# ---------------------------------------------------------------------------------------------
# Random configs


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def size(self):
        """A height or width in 1..40, 1 and small sizes often."""
        r = self.r.random()
        if r < 0.15:
            return 1
        if r < 0.40:
            return self.r.randint(2, 6)
        return self.r.randint(1, 40)

    def chans(self):
        return self.r.randint(1, 17)

    def shape(self):
        return [self.chans(), self.size(), self.size()]

    def form2(self, lo, hi, omit=None):
        """An int argument as `n` or `[h, w]`, or omitted (None) when `omit` is a probability."""
        if omit is not None and self.r.random() < omit:
            return None
        if self.r.random() < 0.6:
            return self.r.randint(lo, hi)
        return [self.r.randint(lo, hi), self.r.randint(lo, hi)]

    def put(self, d, key, v):
        if v is not None:
            d[key] = v

    # -- conv ---------------------------------------------------------------------------------
    def conv(self):
        r = self.r
        c = self.chans()
        x = [c, self.size(), self.size()]
        groups = 1
        gr = r.random()
        if gr < 0.15:
            groups = c  # depthwise
        elif gr < 0.30:
            divs = [g for g in range(2, c + 1) if c % g == 0] or [1]
            groups = r.choice(divs)
        elif gr < 0.35:
            groups = r.randint(2, 5)  # may not divide
        out = r.randint(1, 17)
        if groups > 1 and r.random() < 0.9:
            out = groups * r.randint(1, max(1, 17 // groups))
        a = {"out": out, "kernel": self.form2(1, 7)}
        self.put(a, "stride", self.form2(1, 3, omit=0.4))
        pr = r.random()
        if pr < 0.2:
            pad = None
        elif pr < 0.45:
            pad = r.randint(0, 3)
        elif pr < 0.6:
            pad = [r.randint(0, 3), r.randint(0, 3)]
        elif pr < 0.8:
            pad = [r.randint(0, 3) for _ in range(4)]
        else:
            pad = "same"
            if "stride" in a and r.random() < 0.7:
                del a["stride"]
        self.put(a, "padding", pad)
        self.put(a, "dilation", self.form2(1, 3, omit=0.5))
        if groups != 1 or r.random() < 0.2:
            a["groups"] = groups
        if r.random() < 0.25:
            a["bias"] = r.random() < 0.5
        if r.random() < 0.6:
            a["padding_mode"] = r.choice(MODES)
        return {"x": x}, {"conv": a}

    # -- pools --------------------------------------------------------------------------------
    def pool(self, is_max):
        r = self.r
        x = self.shape()
        k = self.form2(1, 5)
        a = {"kernel": k}
        self.put(a, "stride", self.form2(1, 3, omit=0.35))
        kk = pair(k, None)
        if r.random() < 0.85:  # mostly legal padding
            p = [r.randint(0, kk[0] // 2), r.randint(0, kk[1] // 2)]
        else:
            p = [r.randint(0, 3), r.randint(0, 3)]
        if r.random() < 0.3:
            a["padding"] = p if p[0] != p[1] else p[0]
        elif r.random() < 0.5 and p[0] == p[1]:
            a["padding"] = p[0]
        if is_max:
            self.put(a, "dilation", self.form2(1, 3, omit=0.5))
        if r.random() < 0.5:
            a["ceil_mode"] = r.random() < 0.7
        if not is_max and r.random() < 0.4:
            a["count_include_pad"] = r.random() < 0.5
        return {"x": x}, {"max_pool" if is_max else "avg_pool": a}

    # -- TensorFlow `SAME` ----------------------------------------------------------------------
    def tf_same(self):
        r = self.r
        op = r.choice(["conv", "conv", "max_pool", "avg_pool"])
        x = self.shape()
        a = {"kernel": self.form2(1, 5)}
        if op == "conv":
            a = {"out": r.randint(1, 9), **a}
            if r.random() < 0.2:
                a["groups"] = x[0]
                a["out"] = x[0] * r.randint(1, 2)
        self.put(a, "stride", self.form2(1, 3, omit=0.2))
        a["padding"] = "tf_same"
        if op != "avg_pool":
            self.put(a, "dilation", self.form2(1, 3, omit=0.6))
        if op == "conv" and r.random() < 0.1:
            a["padding_mode"] = r.choice(MODES[1:])
        if op != "conv" and r.random() < 0.1:
            a["ceil_mode"] = True
        return {"x": x}, {op: a}

    # -- upsample -----------------------------------------------------------------------------
    def scale(self):
        r = self.r
        pool = [2, 3, 4, 2.0, 0.5, 1.5, 1.16, 17 / 7, 15 / 11, 0.25, 0.3, 1.25, 2.5, 1 / 3, 0.75, 1.1, 0.9, 1.01]
        if r.random() < 0.3:
            return [r.choice(pool), r.choice(pool)]
        return r.choice(pool)

    def upsample(self):
        r = self.r
        x = self.shape()
        kind = r.random()
        if kind < 0.2:
            return {"x": x}, {"upsample": self.scale()}
        a = {}
        ins = {"x": x}
        if kind < 0.35:
            y = [self.chans(), self.size(), self.size()]
            ins["y"] = y
            a["match"] = "y"
        else:
            a["scale"] = self.scale()
        mode = r.random()
        if mode < 0.5:
            a["mode"] = "bilinear"
        elif mode < 0.7:
            a["mode"] = "nearest"
        if r.random() < 0.4:
            a["align_corners"] = r.random() < 0.6
        return ins, {"upsample": a}

    # -- merges -------------------------------------------------------------------------------
    def merge(self, op):
        r = self.r
        x = self.shape()
        y = list(x)
        d = r.random()
        if d < 0.2:
            y[0] = self.chans()
        elif d < 0.35:
            y[1] = self.size()
        elif d < 0.5:
            y[2] = self.size()
        elif d < 0.55:
            y = self.shape()
        ins = {"x": x, "y": y}
        refs = ["x", "y"]
        if op == "fuse" and r.random() < 0.4:
            return ins, {"fuse": {"in": refs, "eps": r.choice([0.0001, 0.001, 0.01])}}
        return ins, {op: refs}

    # -- ops of issue "Reach" -------------------------------------------------------------
    def group_norm(self):
        r = self.r
        x = self.shape()
        c = x[0]
        divs = [g for g in range(1, c + 1) if c % g == 0]
        g = r.choice(divs) if r.random() < 0.8 else r.randint(1, 8)
        a = {"groups": g}
        if r.random() < 0.3:
            a["eps"] = r.choice([0.001, 0.01, 0.1])
        return {"x": x}, {"group_norm": a}

    def conv_transpose(self):
        r = self.r
        c = self.chans()
        x = [c, self.size(), self.size()]
        groups = 1
        if r.random() < 0.3:
            divs = [g for g in range(1, c + 1) if c % g == 0]
            groups = r.choice(divs) if r.random() < 0.85 else r.randint(2, 4)
        out = groups * r.randint(1, max(1, 12 // groups))
        if r.random() < 0.05:
            out += 1  # may not divide
        a = {"out": out, "kernel": self.form2(1, 5)}
        self.put(a, "stride", self.form2(1, 3, omit=0.3))
        self.put(a, "padding", self.form2(0, 3, omit=0.4))
        self.put(a, "dilation", self.form2(1, 3, omit=0.6))
        self.put(a, "output_padding", self.form2(0, 2, omit=0.6))
        if groups != 1:
            a["groups"] = groups
        if r.random() < 0.2:
            a["bias"] = False
        return {"x": x}, {"conv_transpose": a}

    def pad(self):
        r = self.r
        x = self.shape()
        k = r.random()
        if k < 0.25:
            y = [self.chans(), self.size(), self.size()]
            if r.random() < 0.7:
                y = [y[0], x[1] + r.randint(0, 5), x[2] + r.randint(0, 5)]
            a = {"match": "y"}
            if r.random() < 0.3:
                a["mode"] = "replicate"
            elif r.random() < 0.3:
                a["value"] = r.choice([1.5, -1.0])
            return {"x": x, "y": y}, {"pad": a}
        p = r.randint(0, 4) if r.random() < 0.3 else [r.randint(0, 4) for _ in range(4)]
        if k < 0.45:
            return {"x": x}, {"pad": p}
        a = {"pad": p, "mode": r.choice(["constant", "reflect", "replicate", "circular"])}
        if a["mode"] == "constant" and r.random() < 0.5:
            a["value"] = r.choice([0.5, -2.0])
        return {"x": x}, {"pad": a}

    def crop(self):
        r = self.r
        x = self.shape()
        if r.random() < 0.25:
            y = [self.chans(), self.size(), self.size()]
            if r.random() < 0.7:
                y = [y[0], max(1, x[1] - r.randint(0, 5)), max(1, x[2] - r.randint(0, 5))]
            return {"x": x, "y": y}, {"crop": {"match": "y"}}
        size = [r.randint(1, x[1] + 1), r.randint(1, x[2] + 1)]
        a = {"size": size if size[0] != size[1] or r.random() < 0.5 else size[0]}
        if r.random() < 0.4:
            a["offset"] = [r.randint(0, 3), r.randint(0, 3)]
        return {"x": x}, {"crop": a}

    def shuffle(self):
        r = self.r
        f = r.choice([1, 2, 2, 3])
        if r.random() < 0.5:
            c = f * f * r.randint(1, 3) if r.random() < 0.8 else self.chans()
            return {"x": [c, self.size(), self.size()]}, {"pixel_shuffle": f}
        x = [self.chans(), self.size(), self.size()]
        if r.random() < 0.6:
            x = [x[0], f * r.randint(1, 8), f * r.randint(1, 8)]
        return {"x": x}, {"pixel_unshuffle": f}

    def channel_parts(self):
        """One part of `chunk: n` (n often not dividing) or `split: [a, b, ...]` (often not summing)."""
        r = self.r
        x = self.shape()
        if r.random() < 0.5:
            n = r.choice([1, 2, 2, 3, 4, 5])
            if r.random() < 0.6:
                x[0] = n * r.randint(1, 4)
            return {"x": x}, {"chunk": n}, r.randrange(n)
        sizes = [r.randint(1, 6) for _ in range(r.randint(1, 4))]
        if r.random() < 0.6:
            x[0] = sum(sizes)
        return {"x": x}, {"split": sizes}, r.randrange(len(sizes))

    def norm_or_act(self):
        r = self.r
        x = self.shape()
        op = r.choice(ACTS + ["batch_norm"] * 2)
        if op == "batch_norm":
            return {"x": x}, ("batch_norm" if r.random() < 0.5 else {"batch_norm": {"eps": r.choice([0.001, 0.01, 0.1])}})
        if op == "leaky_relu":
            f = r.random()
            if f < 0.3:
                return {"x": x}, "leaky_relu"
            if f < 0.6:
                return {"x": x}, {"leaky_relu": r.choice([0.1, 0.2, 0.01])}
            return {"x": x}, {"leaky_relu": {"slope": r.choice([0.1, 0.2, 0.01])}}
        if op == "gelu" and r.random() < 0.5:
            return {"x": x}, {"gelu": {"approximate": "tanh"}}
        return {"x": x}, op


# Deliberate cases: every rejection the issue names, and the rounding examples.
def deliberate():
    up = lambda s, **k: {"upsample": dict({"scale": s}, **k)}  # noqa: E731
    return [
        # window larger than the (padded) input
        ({"x": [3, 2, 9]}, {"conv": {"out": 4, "kernel": 3}}),
        ({"x": [3, 9, 2]}, {"conv": {"out": 4, "kernel": [1, 3]}}),
        ({"x": [3, 1, 1]}, {"conv": {"out": 4, "kernel": 3, "padding": 1}}),
        ({"x": [3, 4, 4]}, {"conv": {"out": 4, "kernel": 3, "dilation": 2}}),
        ({"x": [3, 4, 4]}, {"conv": {"out": 4, "kernel": 3, "dilation": 2, "padding": [0, 0, 1, 0]}}),
        ({"x": [3, 3, 3]}, {"max_pool": {"kernel": 4}}),
        ({"x": [3, 3, 3]}, {"avg_pool": {"kernel": 4, "padding": 0}}),
        ({"x": [3, 5, 5]}, {"max_pool": {"kernel": 3, "dilation": 3}}),
        ({"x": [3, 1, 1]}, {"max_pool": {"kernel": 2, "ceil_mode": True}}),
        ({"x": [3, 1, 1]}, {"max_pool": {"kernel": 3, "padding": 1, "ceil_mode": True}}),
        # reflect / circular padding limits
        ({"x": [3, 2, 2]}, {"conv": {"out": 4, "kernel": 3, "padding": 2, "padding_mode": "reflect"}}),
        ({"x": [3, 3, 3]}, {"conv": {"out": 4, "kernel": 3, "padding": 2, "padding_mode": "reflect"}}),
        ({"x": [3, 1, 5]}, {"conv": {"out": 4, "kernel": 3, "padding": 1, "padding_mode": "reflect"}}),
        ({"x": [3, 5, 1]}, {"conv": {"out": 4, "kernel": 1, "padding": [0, 0, 0, 1], "padding_mode": "reflect"}}),
        ({"x": [3, 2, 2]}, {"conv": {"out": 4, "kernel": 3, "padding": 2, "padding_mode": "circular"}}),
        ({"x": [3, 2, 2]}, {"conv": {"out": 4, "kernel": 3, "padding": 3, "padding_mode": "circular"}}),
        ({"x": [3, 1, 1]}, {"conv": {"out": 4, "kernel": 3, "padding": 1, "padding_mode": "circular"}}),
        ({"x": [3, 1, 1]}, {"conv": {"out": 4, "kernel": 3, "padding": 1, "padding_mode": "replicate"}}),
        ({"x": [3, 7, 7]}, {"conv": {"out": 4, "kernel": 3, "padding": "same", "padding_mode": "reflect"}}),
        ({"x": [3, 1, 7]}, {"conv": {"out": 4, "kernel": 3, "padding": "same", "padding_mode": "reflect"}}),
        ({"x": [3, 2, 2]}, {"conv": {"out": 4, "kernel": 4, "padding": "same", "padding_mode": "reflect"}}),
        ({"x": [3, 5, 5]}, {"conv": {"out": 4, "kernel": 4, "padding": "same"}}),
        ({"x": [3, 5, 5]}, {"conv": {"out": 4, "kernel": [2, 4], "dilation": [3, 1], "padding": "same"}}),
        # `same` needs stride 1
        ({"x": [3, 8, 8]}, {"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": "same"}}),
        ({"x": [3, 8, 8]}, {"conv": {"out": 4, "kernel": 3, "stride": [1, 2], "padding": "same"}}),
        # groups
        ({"x": [6, 8, 8]}, {"conv": {"out": 4, "kernel": 3, "groups": 4}}),
        ({"x": [6, 8, 8]}, {"conv": {"out": 9, "kernel": 3, "groups": 3}}),
        ({"x": [6, 8, 8]}, {"conv": {"out": 12, "kernel": 3, "groups": 6}}),
        ({"x": [3, 8, 8]}, {"conv": {"out": 6, "kernel": 1, "groups": 6}}),
        # zero stride / dilation
        ({"x": [3, 8, 8]}, {"conv": {"out": 4, "kernel": 3, "stride": 0}}),
        ({"x": [3, 8, 8]}, {"conv": {"out": 4, "kernel": 3, "dilation": 0}}),
        ({"x": [3, 8, 8]}, {"max_pool": {"kernel": 2, "stride": 0}}),
        # pool padding > kernel/2, PyTorch compares with the undilated kernel
        ({"x": [3, 9, 9]}, {"max_pool": {"kernel": 2, "stride": 1, "padding": 2, "dilation": 3}}),
        ({"x": [3, 9, 9]}, {"max_pool": {"kernel": 2, "stride": 1, "padding": 1, "dilation": 3}}),
        ({"x": [3, 9, 9]}, {"max_pool": {"kernel": 3, "stride": 1, "padding": 2, "dilation": 2}}),
        ({"x": [3, 9, 9]}, {"max_pool": {"kernel": 3, "stride": 1, "padding": 1, "dilation": 3}}),
        ({"x": [3, 9, 9]}, {"max_pool": {"kernel": 3, "padding": 2}}),
        ({"x": [3, 9, 9]}, {"max_pool": {"kernel": [3, 5], "padding": [1, 3]}}),
        ({"x": [3, 9, 9]}, {"avg_pool": {"kernel": 3, "padding": 2}}),
        ({"x": [3, 9, 9]}, {"avg_pool": {"kernel": 2, "stride": 1, "padding": 1}}),
        ({"x": [3, 9, 9]}, {"avg_pool": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}}),
        ({"x": [3, 9, 9]}, {"avg_pool": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}}),
        ({"x": [3, 8, 8]}, {"max_pool": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}}),
        ({"x": [3, 6, 6]}, {"max_pool": {"kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True}}),
        # merges of different shapes
        ({"x": [3, 8, 8], "y": [3, 8, 7]}, {"add": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [3, 1, 8]}, {"add": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [1, 8, 8]}, {"add": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [5, 8, 8]}, {"concat": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [3, 4, 8]}, {"concat": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [3, 8, 1]}, {"mean": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [3, 9, 8]}, {"fuse": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [3, 8, 8]}, {"fuse": {"in": ["x", "y"], "eps": 0.001}}),
        # upsample
        ({"x": [3, 8, 8]}, up(2, mode="nearest", align_corners=True)),
        ({"x": [3, 8, 8], "y": [3, 5, 5]}, {"upsample": {"match": "y", "align_corners": True}}),
        ({"x": [3, 8, 8], "y": [3, 5, 5]}, {"upsample": {"match": "y", "mode": "bilinear", "align_corners": True}}),
        ({"x": [3, 1, 1], "y": [3, 17, 3]}, {"upsample": {"match": "y", "mode": "bilinear"}}),
        ({"x": [3, 25, 5]}, {"upsample": [1.16, 1]}),
        ({"x": [3, 25, 25]}, {"upsample": 1.16}),
        ({"x": [3, 21, 21]}, up(17 / 7)),
        ({"x": [3, 22, 22]}, up(15 / 11, mode="bilinear")),
        ({"x": [3, 22, 21]}, up([15 / 11, 17 / 7], mode="bilinear", align_corners=True)),
        ({"x": [3, 1, 1]}, up(0.5)),
        ({"x": [3, 3, 1]}, up(0.3)),
        ({"x": [3, 3, 3]}, up([1, 0.25])),
        ({"x": [3, 3, 3]}, up(1 / 3)),
        ({"x": [3, 7, 7]}, up(1.01)),
        ({"x": [3, 40, 40]}, up(1 / 3, mode="bilinear")),
        # issue "Reach": group norm, transposed conv, pad, crop, pixel (un)shuffle, mul
        ({"x": [6, 5, 5]}, {"group_norm": {"groups": 4}}),
        ({"x": [6, 1, 1]}, {"group_norm": {"groups": 3, "eps": 0.001}}),
        ({"x": [4, 3, 3]}, {"conv_transpose": {"out": 2, "kernel": 3, "stride": 2, "output_padding": 2}}),
        ({"x": [4, 3, 3]}, {"conv_transpose": {"out": 2, "kernel": 3, "stride": 1, "dilation": 2, "output_padding": 1}}),
        ({"x": [4, 3, 3]}, {"conv_transpose": {"out": 4, "kernel": 2, "groups": 3}}),
        ({"x": [6, 3, 3]}, {"conv_transpose": {"out": 4, "kernel": 2, "groups": 3}}),
        ({"x": [4, 1, 1]}, {"conv_transpose": {"out": 4, "kernel": 1, "padding": 1}}),
        ({"x": [4, 1, 2]}, {"conv_transpose": {"out": 4, "kernel": 3, "padding": 1}}),
        ({"x": [4, 5, 7]}, {"conv_transpose": {"out": 8, "kernel": 2, "stride": 2}}),
        ({"x": [3, 3, 3]}, {"pad": {"pad": [3, 0, 0, 0], "mode": "reflect"}}),
        ({"x": [3, 3, 3]}, {"pad": {"pad": [2, 2, 2, 2], "mode": "reflect"}}),
        ({"x": [3, 3, 3]}, {"pad": {"pad": [4, 0, 0, 0], "mode": "circular"}}),
        ({"x": [3, 3, 3]}, {"pad": {"pad": 1, "mode": "reflect", "value": 1.0}}),
        ({"x": [3, 5, 4], "y": [3, 8, 9]}, {"pad": {"match": "y"}}),
        ({"x": [3, 5, 4], "y": [3, 4, 9]}, {"pad": {"match": "y"}}),
        ({"x": [3, 5, 4]}, {"crop": {"size": [5, 5]}}),
        ({"x": [3, 5, 4]}, {"crop": {"size": [2, 2], "offset": [3, 2]}}),
        ({"x": [3, 5, 4]}, {"crop": {"size": [2, 2], "offset": [4, 2]}}),
        ({"x": [3, 9, 8], "y": [3, 4, 5]}, {"crop": {"match": "y"}}),
        ({"x": [3, 3, 8], "y": [3, 4, 5]}, {"crop": {"match": "y"}}),
        ({"x": [8, 3, 3]}, {"pixel_shuffle": 2}),
        ({"x": [6, 3, 3]}, {"pixel_shuffle": 2}),
        ({"x": [2, 6, 9]}, {"pixel_unshuffle": 3}),
        ({"x": [2, 6, 8]}, {"pixel_unshuffle": 3}),
        ({"x": [2, 1, 1]}, {"pixel_unshuffle": 2}),
        ({"x": [3, 8, 8], "y": [3, 8, 7]}, {"mul": ["x", "y"]}),
        ({"x": [3, 8, 8], "y": [2, 8, 8]}, {"mul": ["x", "y"]}),
        # pool shorthands: kernel = stride
        ({"x": [3, 9, 8]}, {"max_pool": 2}),
        ({"x": [3, 1, 8]}, {"max_pool": 2}),
        ({"x": [3, 9, 8]}, {"avg_pool": [3, 2]}),
        # asymmetric pool padding [t, b, l, r] (TF 'SAME' style), also beyond kernel/2
        ({"x": [3, 9, 8]}, {"max_pool": {"kernel": 3, "stride": 2, "padding": [0, 1, 0, 1]}}),
        ({"x": [3, 8, 8]}, {"max_pool": {"kernel": 2, "stride": 2, "padding": [0, 1, 1, 0], "ceil_mode": True}}),
        ({"x": [3, 9, 8]}, {"avg_pool": {"kernel": 3, "stride": 2, "padding": [1, 1, 0, 1]}}),
        ({"x": [3, 2, 2]}, {"max_pool": {"kernel": 3, "stride": 1, "padding": [3, 0, 0, 0]}}),
        ({"x": [3, 2, 2]}, {"avg_pool": {"kernel": 3, "stride": 1, "padding": [0, 0, 0, 0], "count_include_pad": False}}),
    ] + [
        # every activation and norm form once, on a 1×1 and an odd size
        ({"x": [c, h, w]}, a)
        for (c, h, w) in ([1, 1, 1], [17, 7, 40])
        for a in ACTS + [
            {"gelu": {"approximate": "tanh"}},
            {"leaky_relu": 0.2},
            {"leaky_relu": {"slope": 0.1}},
            "batch_norm",
            {"batch_norm": {"eps": 0.001}},
        ]
    ]


def main():
    g = Gen(SEED)
    plan = [("deliberate", c) for c in deliberate()]
    counts = {"conv": 140, "max_pool": 55, "avg_pool": 45, "upsample": 80, "norm_act": 30, "add": 15, "concat": 15, "mean": 12, "fuse": 12}
    for kind, n in counts.items():
        for _ in range(n):
            if kind == "conv":
                c = g.conv()
            elif kind in ("max_pool", "avg_pool"):
                c = g.pool(kind == "max_pool")
            elif kind == "upsample":
                c = g.upsample()
            elif kind == "norm_act":
                c = g.norm_or_act()
            else:
                c = g.merge(kind)
            plan.append((kind, c))
    # after the original draws, so the earlier cases stay as they were
    reach = {"group_norm": 25, "conv_transpose": 70, "pad": 45, "crop": 35, "shuffle": 25, "mul": 12}
    for kind, n in reach.items():
        for _ in range(n):
            c = g.merge(kind) if kind == "mul" else getattr(g, kind)()
            plan.append((kind, c))
    for _ in range(30):
        plan.append(("parts", g.channel_parts()))
    for _ in range(45):
        plan.append(("tf_same", g.tf_same()))
    cases = []
    seen = set()
    per_op = {}
    for _, drawn in plan:
        inputs, node, part = drawn if len(drawn) == 3 else (*drawn, None)
        frm = None
        if isinstance(node, dict) and isinstance(next(iter(node.values())), dict) and "match" in next(iter(node.values())):
            frm = "x"
        key = json.dumps([inputs, node] + ([] if part is None else [part]), sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        op = node if isinstance(node, str) else next(iter(node))
        per_op[op] = per_op.get(op, 0) + 1
        case = {"id": f"{op}-{per_op[op]}", "inputs": inputs, "node": node}
        if frm is not None:
            case["from"] = frm
        if part is not None:
            case["part"] = part
        case["yaml"] = spec_yaml(inputs, node, frm, part)
        case["torch"] = torch_verdict(inputs, node, part)
        cases.append(case)
    doc = {
        "generator": "tools/op_fixtures.py",
        "torch": torch.__version__,
        "seed": SEED,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        f.write("{\n")
        f.write(f'"generator": {json.dumps(doc["generator"])},\n"torch": {json.dumps(doc["torch"])},\n"seed": {SEED},\n')
        f.write('"cases": [\n')
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    acc = sum(c["torch"]["accepted"] for c in cases)
    print(f"wrote {OUT}: {len(cases)} cases ({acc} accepted, {len(cases) - acc} refused by PyTorch)")
    for op, n in sorted(per_op.items()):
        print(f"  {op}: {n}")


if __name__ == "__main__":
    main()
