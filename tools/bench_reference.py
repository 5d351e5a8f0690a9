#!/usr/bin/env python3
"""Reference timings for `benches/forward.rs`: one shipped spec's model in PyTorch (eager) and
in ONNX Runtime, at given input shapes and batch, on 2 threads.

The model is built by the same builders as tools/torch_shapes.py: the package's own model where
one exists (torchvision, the seeds' code), else the module `fpn gen --target torch` generates for
the spec (tools/fpn_torch.py; seed001_neck, and seed003's FPN and head on torchvision's ResNet),
so its structure equals the spec's. The fpn binary for those: `--fpn PATH`, else $FPN, else
$CARGO_TARGET_DIR/release/fpn, else target/release/fpn (`cargo build --release -p fpn-cli`).
Weights are PyTorch's random init (values do not matter for speed). PyTorch runs in eval mode under
`torch.inference_mode()` with `torch.set_num_threads(2)`; BatchNorm stays a separate op (eager
does not fold it). The same module is exported with `torch.onnx.export` (opset 17) and run by
onnxruntime with intra_op_num_threads=2, inter_op_num_threads=1 and every graph optimisation
(ORT folds BN into the convs and fuses activations).

Each engine: warm-up runs, then N timed runs with N chosen so the timed runs last about
`--seconds` (at least `--min-runs`); reports the best and the median wall time in milliseconds,
and `*_cpu_ms`: the process CPU time (all threads, `time.process_time_ns`) per run over the N
runs (the lowest over rounds). On a loaded machine CPU time is the steadier number: time spent
descheduled does not count (time spent spinning in a thread pool's barriers does). With
`--rounds R > 1` PyTorch and ORT are measured alternately R times and the best / median are
over all rounds (interleaving spreads a shared machine's load over both).

Peak resident memory (`--memory`; Linux only): each engine runs in a fresh process of this script
(`--memory-only torch|ort`), so what one engine freed cannot be reused by the other. There, after
the imports (also those a builder makes lazily, LAZY_IMPORTS), the peak is reset (`echo 5 >
/proc/self/clear_refs`) and VmRSS read (base); the model is loaded (PyTorch: the builder; ORT: a
session of the exported file, `--onnx-file`) and the input made; the peak is read, reset, VmRSS
read (before); 3 forwards run; VmHWM is read. `*_peak_mib` is VmHWM minus before: what the forward
adds to the loaded model. `*_total_mib` is the higher of the two peaks minus base: loading and
the forward together (weights, pre-packed copies, what loading keeps, the forward's memory). The
first alone can mislead: memory that loading freed stays resident and a forward reuses it (ORT's
ResNet-50 FPN forward adds 0.4 MiB). benches/forward.rs measures fpn the same way.

Prints exactly one JSON line on stdout:
  {"torch_ms": best, "torch_median_ms": …, "torch_runs": …, "torch_cpu_ms": …, "ort_ms": best,
   "ort_median_ms": …, "ort_runs": …, "ort_cpu_ms": …, "torch": version, "ort": version, …}
and with `--memory` also "torch_peak_mib", "torch_total_mib", "ort_peak_mib" and "ort_total_mib"
(null with "memory_error" when not measurable).
A missing onnxruntime / onnx or a failed export gives "ort_ms": null and "ort_error"; the
script still exits 0 as long as PyTorch ran. Log lines go to stderr.

Usage (from the repository root):
  python3 tools/bench_reference.py --spec specs/seed001_neck.yaml \
      --shape c3=128,52,52 --shape c4=256,26,26 --shape c5=512,13,13 --batch 1
  python3 tools/bench_reference.py --spec specs/resnet50_fpn.yaml --shape image=3,224,224
  python3 tools/bench_reference.py --spec specs/seed000_pyramid_block.yaml \
      --set cin=64 --set cout=64 --set size=128 --shape x=64,128,128 --memory
Shapes are per-sample `C,H,W` (the spec's input order need not be followed); inputs not given
use the spec's fixed shape. Symbolic specs (resnet50_fpn, seed001_neck_on_resnet18) take H and
W from the image shape. `--set NAME=VALUE` (repeatable) sets a spec parameter as `fpn check
--set` does; it goes to the spec's builder as a keyword argument (seed 000: `cin`, `cout`,
`size`), and a builder that does not take it is an error.
"""
import argparse
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import fpn_torch  # noqa: E402  (the modules fpn generates)
import torch_shapes  # noqa: E402  (the builders; importing it runs nothing)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_shape(s):
    name, _, dims = s.partition("=")
    parts = [int(d) for d in dims.replace("x", ",").split(",") if d]
    if not name or len(parts) != 3:
        raise SystemExit(f"--shape {s!r}: expected NAME=C,H,W")
    return name, tuple(parts)


def parse_set(s):
    """`NAME=VALUE` -> (name, int | float | str), as `fpn check --set` reads a value."""
    name, eq, value = s.partition("=")
    if not name.isidentifier() or not eq or not value:
        raise SystemExit(f"--set {s!r}: expected NAME=VALUE")
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


def build(spec, shapes, params=None):
    key = os.path.basename(spec)
    if key not in torch_shapes.SPECS:
        raise SystemExit(f"no PyTorch builder for {key} (tools/torch_shapes.py SPECS)")
    builder, sizes = torch_shapes.SPECS[key]
    params = params or {}
    takes = inspect.signature(builder).parameters
    unknown = [k for k in params if k not in takes or takes[k].kind != inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if unknown:
        raise SystemExit(f"the PyTorch builder of {key} does not take --set {', '.join(unknown)} "
                         "(tools/torch_shapes.py SPECS)")
    if sizes is None:
        model, inputs, run = builder(**params)
    else:
        # symbolic H, W: taken from the (single) image input
        img = shapes.get("image")
        if img is None:
            raise SystemExit(f"{key} has symbolic sizes: give --shape image=3,H,W")
        model, inputs, run = builder(img[1], img[2], **params)
    inputs = dict(inputs)
    for k, v in shapes.items():
        if k not in inputs:
            raise SystemExit(f"{key} has no input `{k}` (inputs: {', '.join(inputs)})")
        inputs[k] = v
    return model, inputs, run


class Positional(torch.nn.Module):
    """Positional inputs, tuple of outputs: the form torch.onnx.export and ORT want."""

    def __init__(self, model, run, names, out_names):
        super().__init__()
        self.model = model
        self._run = run
        self.names = names
        self.out_names = out_names

    def forward(self, *xs):
        outs = self._run(self.model, dict(zip(self.names, xs)))
        return tuple(outs[k] for k in self.out_names)


def time_fn(fn, seconds, min_runs, max_runs, warmup):
    """Wall times (ms) of N runs, and the process CPU time (all threads) per run over them."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    n = int(max(min_runs, min(max_runs, seconds / max(one, 1e-6))))
    ts = []
    c0 = time.process_time_ns()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    cpu = (time.process_time_ns() - c0) / 1e6 / n
    return ts, cpu


def status_kib(key):
    """A `kB` field of /proc/self/status (VmRSS, VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {key}")


def reset_peak():
    """Sets VmHWM to the current VmRSS (Linux: `echo 5 > /proc/self/clear_refs`)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


MEMORY_RUNS = 3  # forwards of the memory measurement, as benches/forward.rs

# Modules a tools/torch_shapes.py builder imports when called: imported before the memory
# baseline, so a spec's total is its model's, not also the package's code.
LAZY_IMPORTS = {"yolov8.yaml": ["yolov8_fixture", "ultralytics.nn.tasks"]}


def peaks_mib(load):
    """(forward, total) peak resident memory in MiB: `load()` makes the model and its input and
    returns the forward; see the module doc."""
    reset_peak()
    base = status_kib("VmRSS")
    fwd = load()
    load_hwm = status_kib("VmHWM")
    reset_peak()
    before = status_kib("VmRSS")
    for _ in range(MEMORY_RUNS):
        fwd()
    hwm = status_kib("VmHWM")
    return (hwm - before) / 1024, (max(load_hwm, hwm) - base) / 1024


def memory_children(args, onnx_file):
    """Runs `--memory-only torch` and, given the exported file, `--memory-only ort` (each a fresh
    process of this script with the same spec, shapes, settings and threads) and returns their
    peaks, or why not."""
    out, errors = {}, []
    argv = [a for a in sys.argv[1:] if a != "--memory"]
    engines = [("torch", [])] + ([("ort", ["--onnx-file", onnx_file])] if onnx_file else [])
    for engine, extra in engines:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, *extra, "--memory-only", engine],
                           capture_output=True, text=True, check=False)
        line = next((l for l in reversed(p.stdout.splitlines()) if l.startswith("{")), None)
        got = json.loads(line) if line else {}
        value = got.get("peak_mib")
        for key in ("peak_mib", "total_mib"):
            out[f"{engine}_{key}"] = None if got.get(key) is None else round(got[key], 2)
        if value is None:
            err = next((l for l in reversed(p.stderr.splitlines()) if l.strip()), "no output")
            errors.append(f"{engine}: {err}")
    if errors:
        out["memory_error"] = "; ".join(errors)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--shape", action="append", default=[], help="NAME=C,H,W (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a spec parameter, passed to its builder (repeatable, a later one wins)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0, help="target timed seconds per engine and round")
    ap.add_argument("--min-runs", type=int, default=5)
    ap.add_argument("--max-runs", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--memory", action="store_true",
                    help="also measure each engine's peak resident memory (fresh processes)")
    ap.add_argument("--memory-only", choices=["torch", "ort"],
                    help="only measure this engine's peak resident memory; print {\"peak_mib\": …}")
    ap.add_argument("--onnx-file", help="with --memory-only ort: the exported model")
    fpn_torch.add_argument(ap)
    ap.add_argument("--onnx-dir", default=os.path.join(tempfile.gettempdir(), "fpn-bench-onnx"),
                    help="where exported .onnx files are kept (reused when present)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shapes = dict(parse_shape(s) for s in args.shape)
    params = dict(parse_set(s) for s in args.set)
    if args.memory_only:
        memory_only(args, shapes, params)
        return
    model, inputs, run = build(args.spec, shapes, params)
    model.eval()
    names = list(inputs)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.rand(args.batch, *inputs[k], generator=gen) * 2 - 1 for k in names]
    with torch.inference_mode():
        out_names = list(run(model, dict(zip(names, xs))))
    wrapped = Positional(model, run, names, out_names).eval()

    result = {
        "spec": args.spec,
        "inputs": {k: [args.batch, *inputs[k]] for k in names},
        "torch": torch.__version__,
        "threads": args.threads,
    }

    def torch_fwd():
        with torch.inference_mode():
            wrapped(*xs)

    sess = None
    if not args.no_ort:
        try:
            sess, ort_info = make_ort(args, wrapped, xs, names, out_names, inputs)
            result.update(ort_info)
        except Exception as e:  # noqa: BLE001 -- any failure: report, keep torch numbers
            log(f"bench_reference: ONNX Runtime unavailable: {type(e).__name__}: {e}")
            result["ort_error"] = f"{type(e).__name__}: {e}"
            sess = None
    feeds = {k: x.numpy() for k, x in zip(names, xs)}

    torch_ts, ort_ts, torch_cpu, ort_cpu = [], [], [], []
    for r in range(args.rounds):
        ts, cpu = time_fn(torch_fwd, args.seconds, args.min_runs, args.max_runs, args.warmup if r == 0 else 1)
        torch_ts += ts
        torch_cpu.append(cpu)
        if sess is not None:
            ts, cpu = time_fn(lambda: sess.run(None, feeds), args.seconds, args.min_runs, args.max_runs,
                              args.warmup if r == 0 else 1)
            ort_ts += ts
            ort_cpu.append(cpu)

    result["torch_ms"] = round(min(torch_ts), 4)
    result["torch_median_ms"] = round(statistics.median(torch_ts), 4)
    result["torch_runs"] = len(torch_ts)
    result["torch_cpu_ms"] = round(min(torch_cpu), 4)
    if ort_ts:
        result["ort_ms"] = round(min(ort_ts), 4)
        result["ort_median_ms"] = round(statistics.median(ort_ts), 4)
        result["ort_runs"] = len(ort_ts)
        result["ort_cpu_ms"] = round(min(ort_cpu), 4)
    else:
        result["ort_ms"] = None
    if args.memory:  # after the export: the ORT child loads the cached file
        result.update(memory_children(args, onnx_path(args, names, inputs) if sess is not None else None))
    print(json.dumps(result), flush=True)


def memory_only(args, shapes, params):
    """`--memory-only ENGINE`: this process only loads that engine's model (ORT: a session of
    `--onnx-file`; no PyTorch model there) and prints {"peak_mib": …, "total_mib": …}."""
    if args.memory_only == "torch":
        os.environ.setdefault("YOLO_OFFLINE", "1")
        for name in LAZY_IMPORTS.get(os.path.basename(args.spec), []):
            importlib.import_module(name)

        def load():
            model, inputs, run = build(args.spec, shapes, params)
            model.eval()
            gen = torch.Generator().manual_seed(0)
            xs = {k: torch.rand(args.batch, *s, generator=gen) * 2 - 1 for k, s in inputs.items()}

            def fwd():
                with torch.inference_mode():
                    run(model, xs)
            return fwd
    else:
        if not args.onnx_file:
            raise SystemExit("--memory-only ort needs --onnx-file")
        import numpy as np  # noqa: PLC0415 -- onnxruntime's dependency
        import onnxruntime  # noqa: F401, PLC0415 -- imported before the baseline

        def load():
            sess = make_ort_session(args, args.onnx_file)
            rng = np.random.default_rng(0)
            feeds = {i.name: rng.random(i.shape, dtype=np.float32) * 2 - 1 for i in sess.get_inputs()}
            return lambda: sess.run(None, feeds)
    forward, total = peaks_mib(load)
    print(json.dumps({"engine": args.memory_only, "peak_mib": round(forward, 3), "total_mib": round(total, 3)}),
          flush=True)


def onnx_path(args, names, inputs):
    """Where the exported model of this spec, batch and shapes is cached."""
    tag = "_".join(f"{k}{'x'.join(map(str, inputs[k]))}" for k in names)
    stem = os.path.splitext(os.path.basename(args.spec))[0]
    sets = "".join(f"_{s.replace('=', '')}" for s in args.set)
    return os.path.join(args.onnx_dir, f"{stem}{sets}_b{args.batch}_{tag}_torch{torch.__version__}.onnx")


def make_ort(args, wrapped, xs, names, out_names, inputs):
    import onnxruntime as ort  # noqa: PLC0415 -- optional

    os.makedirs(args.onnx_dir, exist_ok=True)
    path = onnx_path(args, names, inputs)
    exporter = "cached"
    if not os.path.exists(path):
        tmp = path + f".{os.getpid()}.tmp"
        t0 = time.perf_counter()
        with torch.no_grad():
            try:
                # The TorchScript exporter needs nothing beyond torch and onnx.
                torch.onnx.export(wrapped, tuple(xs), tmp, opset_version=17, input_names=names,
                                  output_names=out_names, dynamo=False)
                exporter = "torchscript"
            except Exception as e:  # noqa: BLE001
                log(f"bench_reference: TorchScript ONNX export failed ({e}); trying dynamo=True")
                torch.onnx.export(wrapped, tuple(xs), tmp, opset_version=17, input_names=names,
                                  output_names=out_names, dynamo=True, external_data=False)
                exporter = "dynamo"
        os.replace(tmp, path)
        log(f"bench_reference: exported {path} in {time.perf_counter() - t0:.1f}s ({exporter})")
    sess = make_ort_session(args, path)
    return sess, {"ort": ort.__version__, "onnx_exporter": exporter, "onnx_opset": 17}


def make_ort_session(args, path):
    """An ORT CPU session of `path`: `--threads` intra-op, 1 inter-op, every optimisation."""
    import onnxruntime as ort  # noqa: PLC0415 -- optional

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


if __name__ == "__main__":
    main()
