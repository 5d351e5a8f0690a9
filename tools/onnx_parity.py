"""ONNX export parity: for every shipped spec, `fpn export` → onnx.checker → ONNX Runtime, against
`fpn run` on the same weights and input (run by hand; CI has no Python).

    pip install onnx onnxruntime numpy torch
    cargo build --release -p fpn-cli
    python3 tools/onnx_parity.py [--fpn target/release/fpn] [--specs specs/a.yaml …] [--fixture]

The specs are the shipped ones (`specs/*.yaml`) and `tools/onnx_specs/*.yaml` (every op and
attribute variant the exporter writes: conv padding modes, groups, dilation, every activation,
pools with ceil mode / count_include_pad / explicit padding, nearest and bilinear resizes by
scale and to a size, pad, crop, pixel (un)shuffle, split, chunk, the merges; circular padding at
opset 19). Per spec and input size (two sizes where H/W are symbolic, the spec's own size otherwise):

1. random weights for every `state_dict` tensor (batch-norm statistics and BiFPN fusion weights
   too, some of them negative), written as safetensors; a random input;
2. `fpn export SPEC --onnx M.onnx --weights W` and, again, with `--fold-bn`;
   `onnx.checker.check_model(full_check=True)` on both;
3. ONNX Runtime (float32) on both models; `fpn run SPEC --weights W --input X`; the export
   again at opsets 14 and 21 (checked, run, compared with opset 17; circular padding at 14 must
   be refused naming the node);
4. `fpn gen --target torch SPEC` (the generated PyTorch module), the same safetensors loaded
   with `load_state_dict(strict=True)`, run in float32 and (`.double()`) in float64.
   The error of an engine is its max abs difference from PyTorch float64 over the float64
   output's max |value|, worst output. fpn passes when its error is at most 2 × PyTorch
   float32's own (floored at 2^-23, one float32 ulp of the max); ONNX Runtime's error on the
   exported models (batch norms kept and folded) is printed beside it.

`--fixture` also writes the CI fixture of `fpn-compiler/tests/it/onnx.rs`
(`fpn-compiler/tests/fixtures/onnx/`): for `specs/unet_decoder.yaml` at 12×10, the weights, the
input and ONNX Runtime's outputs, as safetensors.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_SPEC = "specs/unet_decoder.yaml"
FIXTURE_SIZE = {"H": 12, "W": 10}
FIXTURE_DIR = os.path.join(ROOT, "fpn-compiler/tests/fixtures/onnx")
# specs that need a newer opset than the default 17 (circular padding is `Pad` mode `wrap`, 19)
OPSET = {"circular.yaml": 19}


def save(tensors, path):
    """safetensors writer (F32), numpy only."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        data = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """safetensors reader (F32), numpy only."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<f4").reshape(t["shape"])
    return out


def run(cmd):
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def accepted(s, v):
    """Whether `fpn sizes --json`'s set `s` holds `v`."""
    if v < s["min"] or (s["max"] is not None and v > s["max"]):
        return False
    if v in s["listed"]:
        return True
    return v >= s["threshold"] and (v % s["period"]) in s["residues"]


def sizes_for(fpn, spec):
    """Input-size environments: two where the spec has symbols, else one (empty)."""
    syms = json.loads(run([fpn, "sizes", spec, "--json"]))["symbols"]  # docs/json.md
    if not syms:
        return [{}]
    envs = []
    for target in (40, 67):
        env = {}
        for s in syms:
            if "determined_by" in s:  # tied to another symbol by a merge: `H4 = ceil(H3/2)`
                continue
            v = target
            while not accepted(s["set"], v) and v < target + 10_000:
                v += 1
            env[s["symbol"]] = v
        for s in syms:
            if "determined_by" in s:
                env[s["symbol"]] = dependent(s["expr"], env)
        envs.append(env)
    return envs


def dependent(expr, env):
    """The value of a dependent symbol's expression (`ceil(H3/2)`, `2*H4`, `floor(H/4)`)."""
    if not re.fullmatch(r"[A-Za-z_0-9+\-*/() ]+", expr):
        raise ValueError(f"unexpected expression {expr!r}")
    from fractions import Fraction
    import math

    names = {k: Fraction(v) for k, v in env.items()}
    names.update(ceil=math.ceil, floor=math.floor)
    return int(eval(expr, {"__builtins__": {}}, names))  # noqa: S307 (by-hand tool, checked)


def eval_dim(d, env):
    """A dim of the ONNX input: a number or an expression of the symbols (exact `/`)."""
    if d.dim_param == "N" or (not d.dim_param and d.dim_value == 0):
        return None
    if not d.dim_param:
        return d.dim_value
    expr = d.dim_param
    if not re.fullmatch(r"[A-Za-z_0-9+\-*/() ]+", expr):
        raise ValueError(f"unexpected dim {expr!r}")
    v = eval(expr.replace("/", "//"), {"__builtins__": {}}, dict(env))  # noqa: S307 (by-hand tool, checked)
    return int(v)


def random_weights(model, rng):
    """Random values for every state_dict initializer of `model` (names without `/`)."""
    w = {}
    for t in model.graph.initializer:
        if "/" in t.name:
            continue
        a = numpy_helper.to_array(t)
        if t.name.endswith("running_var"):
            v = rng.uniform(0.5, 2.0, a.shape)
        elif t.name.endswith("running_mean"):
            v = rng.normal(0, 0.2, a.shape)
        elif a.ndim == 1 and not t.name.endswith("bias") and "weight" in t.name and a.size <= 8 and np.all(a == 1) and "norm" not in t.name and "bn" not in t.name:
            v = rng.uniform(-0.3, 1.5, a.shape)  # fusion weights, some negative (relu'd away)
        elif a.ndim == 1:
            v = rng.normal(1.0 if t.name.endswith("weight") else 0.0, 0.2, a.shape)
        else:
            v = a * rng.uniform(0.8, 1.2, a.shape)
        w[t.name] = v.astype(np.float32)
    return w


def rel(got, ref):
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / scale


def torch_module(fpn, spec, weights):
    """The generated PyTorch module of `spec` (`fpn gen --target torch`, tools/fpn_torch.py) with
    `weights` loaded with `strict=True`, in eval mode."""
    import torch

    import fpn_torch

    fpn_torch.use(fpn)
    model = fpn_torch.build(spec)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=True)
    return model.eval()


def check_spec(fpn, spec, rng, tmp, fixture=False):
    import torch

    rows = []
    base = os.path.join(tmp, os.path.basename(spec)[:-5])
    opset = ["--opset", str(OPSET.get(os.path.basename(spec), 17))]
    run([fpn, "export", spec, "--onnx", base + ".seed.onnx"] + opset)
    names = random_weights(onnx.load(base + ".seed.onnx"), rng)
    save(names, base + ".w.safetensors")
    run([fpn, "export", spec, "--onnx", base + ".onnx", "--weights", base + ".w.safetensors"] + opset)
    run([fpn, "export", spec, "--onnx", base + ".fold.onnx", "--weights", base + ".w.safetensors", "--fold-bn"] + opset)
    model = onnx.load(base + ".onnx")
    onnx.checker.check_model(model, full_check=True)
    onnx.checker.check_model(onnx.load(base + ".fold.onnx"), full_check=True)
    sess = ort.InferenceSession(base + ".onnx", providers=["CPUExecutionProvider"])
    fold = ort.InferenceSession(base + ".fold.onnx", providers=["CPUExecutionProvider"])
    tm = torch_module(fpn, spec, names)
    tm64 = torch_module(fpn, spec, names).double()
    envs = [FIXTURE_SIZE] if fixture else sizes_for(fpn, spec)
    for env in envs:
        inputs = {}
        for i in model.graph.input:
            dims = [eval_dim(d, env) for d in i.type.tensor_type.shape.dim]
            dims[0] = 1
            inputs[i.name] = rng.standard_normal(dims).astype(np.float32)
        save(inputs, base + ".x.safetensors")
        run([fpn, "run", spec, "--weights", base + ".w.safetensors", "--input", base + ".x.safetensors",
             "--output", base + ".y.safetensors"])
        got = load(base + ".y.safetensors")
        outs = [o.name for o in model.graph.output]
        o32 = dict(zip(outs, sess.run(outs, inputs)))
        of = dict(zip(outs, fold.run(outs, inputs)))
        with torch.no_grad():
            t32 = {k: v.numpy() for k, v in tm(**{k: torch.from_numpy(v) for k, v in inputs.items()}).items()}
            t64 = {k: v.numpy() for k, v in tm64(**{k: torch.from_numpy(v).double() for k, v in inputs.items()}).items()}
        assert list(t32) == outs, f"torch outputs {list(t32)} vs ONNX {outs}"
        err = lambda got_: max(rel(got_[o], t64[o]) for o in outs)  # noqa: E731
        e_fpn, e_torch, e_ort, e_fold = err(got), err(t32), err(o32), err(of)
        ok = e_fpn <= 2 * max(e_torch, 2.0**-23)
        # the oldest and newest opsets give the same outputs as the default (within float32
        # noise: opset 20+ writes `Gelu`, older ones its formula); circular padding below 19 is
        # refused with an error naming the node
        e_opsets = 0.0
        for other in (14, 21):
            path = f"{base}.opset{other}.onnx"
            cmd = [fpn, "export", spec, "--onnx", path, "--weights", base + ".w.safetensors", "--opset", str(other)]
            if other < OPSET.get(os.path.basename(spec), 14):
                r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                assert r.returncode == 1 and "needs opset" in r.stderr, r.stderr
                continue
            run(cmd)
            onnx.checker.check_model(onnx.load(path), full_check=True)
            oo = dict(zip(outs, ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(outs, inputs)))
            e_opsets = max(e_opsets, max(rel(oo[o], o32[o].astype(np.float64)) for o in outs))
        ok = ok and e_opsets <= 1e-6
        size = " ".join(f"{k}={v}" for k, v in env.items()) or "fixed"
        rows.append((spec, size, e_fpn, e_torch, e_ort, e_fold, e_opsets, ok))
        if fixture:
            os.makedirs(FIXTURE_DIR, exist_ok=True)
            save(names, os.path.join(FIXTURE_DIR, "unet_decoder.weights.safetensors"))
            save(inputs, os.path.join(FIXTURE_DIR, "unet_decoder.input.safetensors"))
            save(o32, os.path.join(FIXTURE_DIR, "unet_decoder.ort_output.safetensors"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fpn", default=os.path.join(ROOT, "target/release/fpn"))
    ap.add_argument("--specs", nargs="*")
    ap.add_argument("--fixture", action="store_true")
    a = ap.parse_args()
    specs = a.specs or [
        f"{d}/{f}"
        for d in ("specs", "tools/onnx_specs")
        for f in sorted(os.listdir(os.path.join(ROOT, d)))
        if f.endswith(".yaml")
    ]
    rng = np.random.default_rng(15)
    import torch

    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, torch {torch.__version__}; "
          "error = max|engine − PyTorch float64| / max|PyTorch float64|, worst output")
    print("| spec | size | fpn run | PyTorch f32 | ORT f32 | ORT f32 `--fold-bn` | ORT opset 14/21 vs 17 | fpn ≤ 2×PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        if a.fixture:
            for r in check_spec(a.fpn, FIXTURE_SPEC, np.random.default_rng(1515), tmp, fixture=True):
                print(f"fixture: {r}")
        for spec in specs:
            for spec_, size, e_fpn, e_torch, e_ort, e_fold, e_opsets, ok in check_spec(a.fpn, spec, rng, tmp):
                bad += not ok
                print(f"| {os.path.basename(spec_)} | {size} | {e_fpn:.2e} | {e_torch:.2e} | {e_ort:.2e} | {e_fold:.2e} | {e_opsets:.1e} | {'yes' if ok else 'NO'} |", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
