#!/usr/bin/env python3
"""Make the fixture of the YOLOv8 family test (fpn-compiler/tests/it/family.rs
`yolov8_family_matches_ultralytics_at_every_scale`): specs/yolov8.yaml at scales n, s, m, l, x
against the package's own `DetectionModel("yolov8{s}.yaml")`.

For each scale the model is built offline (YOLO_OFFLINE=1, no download; ultralytics reads the
scale from the file name, as `parse_model` documents) and layers 0-21 (backbone and neck, the
inputs of Detect: `model.0.` … `model.21.`) are described by
  * `parameters`: learnable elements (`p.numel()` over `parameters()`, i.e. the state_dict
    without `running_mean`/`running_var`/`num_batches_tracked`), what `fpn check` prints;
  * `tensors`: how many state_dict tensors (without `num_batches_tracked`, which fpn's
    state_dict does not have);
  * `names_shapes_fnv1a64`: the FNV-1a 64-bit hash (hex) of the text with one line
    `name:d0,d1,...\\n` per tensor in sorted-name order; the test hashes fpn's list the same way.
Run with `--list SCALE` to print that text instead (to diff against the test's on a mismatch).

Writes fpn-compiler/tests/fixtures/yolov8_family.json. Run from the repository root:
    YOLO_OFFLINE=1 python3 tools/yolov8_family_counts.py
Made with ultralytics 8.4.190 and torch 2.15.0 (CPU).
"""
import json
import os
import sys

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics.nn.tasks import DetectionModel

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "fpn-compiler", "tests", "fixtures", "yolov8_family.json")
SCALES = ["n", "s", "m", "l", "x"]
LAYERS = 22  # model.0 .. model.21; model.22 is Detect


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def listing(scale):
    """The sorted (name, shape) list of layers 0-21 and the learnable element count."""
    model = DetectionModel(f"yolov8{scale}.yaml", verbose=False)
    keep = {f"model.{i}." for i in range(LAYERS)}
    sd = model.state_dict()
    names = sorted(k for k in sd if k[: k.index(".", 6) + 1] in keep and not k.endswith("num_batches_tracked"))
    learnable = sum(
        p.numel() for n, p in model.named_parameters() if n[: n.index(".", 6) + 1] in keep
    )
    return [(k, list(sd[k].shape)) for k in names], learnable


def text(items):
    return "".join(f"{k}:{','.join(str(d) for d in s)}\n" for k, s in items)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        sys.stdout.write(text(listing(sys.argv[2])[0]))
        return
    out = {
        "source": "tools/yolov8_family_counts.py: DetectionModel(\"yolov8{s}.yaml\") layers 0-21, ultralytics 8.4.190",
        "scales": {},
    }
    for s in SCALES:
        items, learnable = listing(s)
        out["scales"][s] = {
            "parameters": learnable,
            "tensors": len(items),
            "names_shapes_fnv1a64": fnv1a64(text(items).encode()),
        }
        print(s, out["scales"][s])
    with open(OUT, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
