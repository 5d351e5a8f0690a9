"""The PyTorch module fpn generates for a spec, for the tools that compare fpn with PyTorch.

Where a tool's PyTorch model would only restate a spec (seed 001's neck, PANet, BiFPN, the U-Net
decoder, seed 003's FPN and shared head), it uses the module `fpn gen --target torch` generates
(docs/onnx.md) instead of a hand-written copy:

  * `build(spec)` runs `fpn gen --target torch SPEC -o <tmp>/<stem>.py`, imports that file and
    returns an instance of its class (named as the spec). Its `state_dict()` names and shapes are
    the spec's, each parameter module is registered at its `state_dict` prefix and called through
    its own `__call__` (forward hooks see every call: a shared head's once per level, in the
    order of the spec's levels), and `forward(**inputs)` returns a dict of the spec's outputs.
  * `on_body(spec, body, image)`: for a spec whose backbone is an independent anchor (torchvision's
    ResNet, or torch_parity.py's TinyResNet, which is checked against it), the anchor `body` under
    the spec's node `body` and, for everything after it, the module fpn generates for the spec
    with node `body` cut off (its outputs become inputs, of the shapes the anchor gives at input
    shape `image`). The anchor keeps its own forward; only the restated part is generated.

The fpn binary: `use(path)` (the tools' `--fpn`), else `$FPN`, else the first that exists of
`$CARGO_TARGET_DIR/release/fpn` and this checkout's `target/release/fpn` (`cargo build --release
-p fpn-cli`). Generated files
live in a temporary directory removed at exit; the same spec text is generated once.
Needs torch and PyYAML (for `on_body`), not torchvision.
"""
import argparse
import atexit
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_binary = None
_tmp = None
_generated = {}  # sha1 of the spec text -> the imported module


def use(path):
    """Use the fpn binary at `path` (None: the default search)."""
    global _binary
    _binary = path


def add_argument(parser):
    """The tools' `--fpn PATH` option; `parse_args()` then calls `use(PATH)`."""

    class Use(argparse.Action):
        def __call__(self, parser, namespace, value, option_string=None):
            use(value)
            setattr(namespace, self.dest, value)

    parser.add_argument("--fpn", metavar="PATH", action=Use,
                        help="the fpn binary for `fpn gen --target torch` (default: $FPN, else "
                             "$CARGO_TARGET_DIR/release/fpn, else target/release/fpn)")


def binary():
    explicit = _binary or os.environ.get("FPN")
    if explicit:
        if not os.path.isfile(explicit):
            raise SystemExit(f"fpn binary {explicit} not found")
        return os.path.abspath(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    for path in [os.path.join(ROOT, t, "release", "fpn") for t in (target, "target") if t]:
        if os.path.isfile(path):
            return path
    raise SystemExit("no fpn binary: build it (cargo build --release -p fpn-cli), or give --fpn PATH or FPN=PATH")


def _tmpdir():
    global _tmp
    if _tmp is None:
        _tmp = tempfile.mkdtemp(prefix="fpn-torch-")
        atexit.register(shutil.rmtree, _tmp, True)
    return _tmp


def _instance(module):
    """An instance of the one public nn.Module class of a generated module (named as the spec)."""
    classes = [v for k, v in vars(module).items()
               if not k.startswith("_") and isinstance(v, type) and issubclass(v, nn.Module)
               and v.__module__ == module.__name__]
    if len(classes) != 1:
        raise SystemExit(f"{module.__file__}: expected one public nn.Module class, found {classes}")
    return classes[0]()


def build(spec):
    """An instance of the module `fpn gen --target torch spec` generates (`spec` a path, relative
    ones from the repository root): PyTorch's default init, in training mode as any new module."""
    spec = os.path.join(ROOT, spec)
    with open(spec, "rb") as fh:
        key = hashlib.sha1(fh.read()).hexdigest()
    if key not in _generated:
        stem = os.path.splitext(os.path.basename(spec))[0]
        path = os.path.join(_tmpdir(), f"{stem}_{key[:12]}.py")
        r = subprocess.run([binary(), "gen", "--target", "torch", spec, "-o", path], cwd=ROOT,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"fpn gen --target torch {os.path.relpath(spec, ROOT)} failed:\n{r.stderr}")
        loader = importlib.util.spec_from_file_location(f"fpn_gen_{stem}_{key[:12]}", path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        _generated[key] = module
    return _instance(_generated[key])


def call(model, inputs):
    """Runs a generated module on `{input name: tensor}`; returns `{output name: tensor}`."""
    return model(**inputs)


def is_fusion(module):
    """A BiFPN fast-normalised-fusion module of a generated file (`_Fuse`, parameter `weight`)."""
    return type(module).__name__ == "_Fuse"


def _read_yaml(path):
    """A spec as fpn reads it (YAML 1.2): PyYAML's safe loader with only `true`/`false` as booleans
    (YAML 1.1 would read the key `on:` as True)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {c: [(t, rx) for t, rx in rs if t != "tag:yaml.org,2002:bool"]
                                      for c, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))
    with open(path) as fh:
        return yaml.load(fh, Loader=Loader)


def cut_body(spec, node, features):
    """The spec with node `node` removed: each reference `node.X` becomes an input `X` of shape
    `features[X]` (C, H, W) and the symbols go (the sizes are concrete now). Written as JSON (which
    YAML 1.2 reads) to the temporary directory; returns (its path, the input names)."""
    doc = _read_yaml(os.path.join(ROOT, spec))
    used = []

    def rewrite(v):
        if isinstance(v, dict):
            return {k: rewrite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [rewrite(x) for x in v]
        if isinstance(v, str) and v.startswith(node + "."):
            name = v[len(node) + 1:]
            if name not in features:
                raise SystemExit(f"{spec}: `{v}` is used but the anchor gives only {', '.join(features)}")
            used.append(name)
            return name
        return v

    del doc["nodes"][node]
    doc["nodes"], doc["outputs"] = rewrite(doc["nodes"]), rewrite(doc["outputs"])
    doc.pop("symbols", None)
    doc["inputs"] = {k: list(s) for k, s in features.items() if k in used}
    text = json.dumps(doc, indent=1)
    stem = os.path.splitext(os.path.basename(spec))[0]
    path = os.path.join(_tmpdir(), f"{stem}_without_{node}.json")
    with open(path, "w") as fh:
        fh.write(text)
    return path, list(doc["inputs"])


class OnBody(nn.Module):
    """An anchor `body` (its forward returns `{feature name: tensor}`) under `body.*`, and the
    generated rest of the spec's modules at the root under their own names (`neck.*`, `head.*`,
    …), so `state_dict()` is the spec's. `forward(image)` is the anchor's forward, then the
    generated one on the features named `inputs`."""

    def __init__(self, body, rest, inputs):
        super().__init__()
        self.body = body
        for name, child in rest.named_children():
            self.add_module(name, child)
        self.__dict__["_rest"] = rest  # not a child: its children are registered above
        self.inputs = inputs

    def forward(self, image):
        features = self.body(image)
        return self._rest(**{k: features[k] for k in self.inputs})


def on_body(spec, body, image):
    """`OnBody` of the anchor `body` and the generated module of `spec` without its node `body`;
    `image` is the input shape (C, H, W) it will run at, on which `body` gives the shapes of the
    cut spec's inputs."""
    training = body.training
    body.eval()  # no batch-norm statistics update
    with torch.no_grad():
        features = {k: tuple(v.shape[1:]) for k, v in body(torch.zeros(1, *image)).items()}
    body.train(training)
    path, inputs = cut_body(spec, "body", features)
    return OnBody(body, build(path), inputs)
