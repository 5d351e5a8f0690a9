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
the total is a few percent above the bench's ORT time.
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
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            per_node[node].append(e["dur"])
            op_of[node] = e.get("args", {}).get("op_name", "?")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
