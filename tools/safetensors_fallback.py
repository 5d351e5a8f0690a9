"""`save_file` for the fixture scripts: safetensors' own when installed, else a small writer.

The format is an 8-byte little-endian header length, a JSON header (dtype, shape, data offsets per
tensor, padded to 8 bytes) and the raw little-endian data. The writer covers the dtypes the
fixtures use (F32, F64, I64) and needs neither safetensors nor numpy.
"""

try:
    from safetensors.torch import save_file  # noqa: F401
except ImportError:

    def save_file(tensors, path):
        """Writes `{name: tensor}` to `path` as safetensors."""
        import json
        import struct

        import torch

        kinds = {torch.float32: ("F32", "f"), torch.float64: ("F64", "d"), torch.int64: ("I64", "q")}
        header, blobs, off = {}, [], 0
        for name in sorted(tensors):
            t = tensors[name]
            dtype, fmt = kinds[t.dtype]
            data = struct.pack(f"<{t.numel()}{fmt}", *t.flatten().tolist())
            header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
            blobs.append(data)
            off += len(data)
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
