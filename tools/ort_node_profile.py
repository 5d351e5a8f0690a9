#!/usr/bin/env python3
"""Per-node times of an ONNX model in ONNX Runtime, to set beside fpn's per-conv profile.

Run by hand (not by CI), on an ONNX file the forward bench exported (tools/bench_reference.py
caches them in $TMPDIR/fpn-bench-onnx/, one per spec, settings, batch and shape):

    python3 tools/ort_node_profile.py /tmp/fpn-bench-onnx/yolov8_b1_image3x640x640_*.onnx \
        --threads 1 --runs 30 --top 40

and beside it fpn's side of the same forward:

    FPN_BENCH_PROFILE=1 FPN_BENCH_NO_PYTHON=1 FPN_BENCH_NO_MEMORY=1 FPN_BENCH_THREADS=1 \
        FPN_BENCH_ROUNDS=1 cargo bench -p fpn --bench forward -- yolov8

The session is made as the bench's reference makes it (intra-op threads as given, inter-op 1,
every graph optimisation: ORT's NCHWc transformer rewrites the convs, so node names end in
`_nchwc` and BN and most activations are folded into the convs). ORT's profiler
(`enable_profiling`) records each node's kernel time per run; this prints the median over the
timed runs, summed per op type, then the slowest nodes. The input is uniform noise in [0, 1) of
the model's input shapes (symbolic dimensions as 1). Profiling costs a little time per node, so
the total is a few percent above the bench's ORT time. With `--fpn FILE` (the bench's output
with FPN_BENCH_PROFILE=1 for the same spec, batch and threads) it also prints both engines'
conv times side by side per conv shape (weight, input, stride), by time fpn loses.
"""

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", help="the ONNX file")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs after 3 warm-up runs")
    ap.add_argument("--top", type=int, default=40, help="slowest nodes to list")
    ap.add_argument(
        "--fpn",
        metavar="FILE",
        help="the bench's output with FPN_BENCH_PROFILE=1 for the same spec, batch and threads: "
        "prints fpn's and ORT's conv times side by side, per conv shape",
    )
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess0 = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        i.name: rng.random([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.float32)
        for i in sess0.get_inputs()
    }
    for _ in range(3):
        sess0.run(None, feeds)
    del sess0

    with tempfile.TemporaryDirectory() as tmp:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
        for _ in range(3 + args.runs):
            sess.run(None, feeds)
        with open(sess.end_profiling()) as f:
            events = json.load(f)

    per_node = collections.defaultdict(list)
    op_of = {}
    key_of = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            per_node[node].append(e["dur"])
            op_of[node] = e.get("args", {}).get("op_name", "?")
            key_of[node] = conv_key(e.get("args", {}))
    if not per_node:
        print("no node events in the profile", file=sys.stderr)
        return 1
    # The first 3 runs of this session warm it up; keep the timed runs only.
    med = {n: statistics.median(d[3:] or d) / 1000.0 for n, d in per_node.items()}
    by_op = collections.Counter()
    for n, ms in med.items():
        by_op[op_of[n]] += ms
    print(f"{args.onnx}: {args.threads} thread(s), median of {args.runs} runs")
    print(f"total {sum(med.values()):.3f} ms over {len(med)} nodes")
    print("\n| op | ms |\n|---|---:|")
    for op, ms in by_op.most_common():
        print(f"| {op} | {ms:.3f} |")
    print("\n| node | op | ms |\n|---|---|---:|")
    for n, ms in sorted(med.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"| {n} | {op_of[n]} | {ms:.3f} |")
    if args.fpn:
        side_by_side(args.fpn, {n: ms for n, ms in med.items() if op_of[n] == "Conv"}, key_of)
    return 0


def conv_key(a):
    """(weight, input, stride) of a Conv event's args, as fpn's profile names a conv; the
    stride is read off the shapes (ceil(in / out) per axis), which holds for the usual
    paddings. None where the shapes are missing."""
    try:
        x, w = (list(d.values())[0] for d in a["input_type_shape"][:2])
        y = list(a["output_type_shape"][0].values())[0]
    except (KeyError, IndexError, AttributeError, ValueError):
        return None
    if len(x) != 4 or len(w) != 4 or len(y) != 4 or 0 in y:
        return None
    stride = (-(-x[2] // y[2]), -(-x[3] // y[3]))
    return (tuple(w), tuple(x), stride)


def side_by_side(path, ort_ms, key_of):
    """fpn's per-conv profile table (the bench's FPN_BENCH_PROFILE=1 output) beside ORT's
    Conv nodes of the same weight, input and stride, slowest first by time fpn loses."""
    import re

    row = re.compile(r"^\| \[([\d, ]+)\] \| \[([\d, ]+)\] \| \[([\d, ]+)\] \| (\d+) \| (\d+) \| ([\d.]+) \|")
    fpn = {}
    with open(path) as f:
        for line in f:
            m = row.match(line)
            if m:
                w, x, s = (tuple(int(v) for v in m.group(i).split(",")) for i in (1, 2, 3))
                fpn.setdefault((w, x, s), (int(m.group(5)), float(m.group(6))))
    ort_by = collections.defaultdict(lambda: [0, 0.0])
    for n, ms in ort_ms.items():
        if key_of.get(n):
            ort_by[key_of[n]][0] += 1
            ort_by[key_of[n]][1] += ms
    rows = []
    for k in set(fpn) | set(ort_by):
        fc, fms = fpn.get(k, (0, float("nan")))
        oc, oms = ort_by.get(k, (0, float("nan")))
        rows.append((k, fc, fms, oc, oms))
    rows.sort(key=lambda r: -(r[2] - r[4]) if r[2] == r[2] and r[4] == r[4] else 0)
    print(f"\nfpn ({path}) beside ORT, per conv shape; ORT's convs include what it fused into them")
    print("\n| weight | input | stride | fpn calls | fpn ms | ort calls | ort ms | fpn/ort |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for (w, x, s), fc, fms, oc, oms in rows:
        ratio = fms / oms if oms and oms == oms and fms == fms else float("nan")
        print(f"| {list(w)} | {list(x)} | {list(s)} | {fc} | {fms:.3f} | {oc} | {oms:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
