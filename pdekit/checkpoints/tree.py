"""Nested state (dicts, lists, tensors, arrays, scalars, strings) to and from HDF5, without pickle.

A state tree is what ``model.state_dict()``, ``optimizer.state_dict()`` and our trainer produce:
dicts with str or int keys, lists/tuples, torch tensors, numpy arrays, and JSON scalars. Each node
becomes an HDF5 group or dataset with a ``kind`` attribute; dict keys are stored in a JSON
attribute so integer keys (optimizer state) survive. Python ints larger than 64 bits (numpy RNG
state) are kept exactly as JSON. Lists of Python floats (or of 64-bit ints), such as a loss
history, are packed into one float64 (int64) dataset, so a checkpoint's size and write time do
not grow with the number of datasets a long history would otherwise need.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import h5py
import numpy as np
import torch

_SCALARS = (bool, int, float, str, type(None))
#: tensor dtypes a checkpoint may hold (looked up by name, never by arbitrary attribute)
_DTYPES = {
    name: getattr(torch, name)
    for name in (
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "complex64",
        "complex128",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "bool",
    )
}


_PACKED = {"float_list": np.float64, "int_list": np.int64}


def _packable(items: list) -> bool:
    """A non-empty list of Python floats only, or of 64-bit Python ints only."""
    if not items:
        return False
    first = type(items[0])
    if first is float:
        return all(type(v) is float for v in items)
    if first is int:
        return all(type(v) is int and -(2**63) <= v < 2**63 for v in items)
    return False


def write_tree(group: h5py.Group, name: str, obj: Any) -> None:
    """Write ``obj`` as ``group[name]``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:
            arr = t.float().numpy()
        else:
            arr = t.numpy()
        ds = group.create_dataset(name, data=arr)
        ds.attrs["kind"] = "tensor"
        ds.attrs["dtype"] = dtype
    elif isinstance(obj, np.ndarray):
        ds = group.create_dataset(name, data=obj)
        ds.attrs["kind"] = "ndarray"
    elif isinstance(obj, np.generic):
        write_tree(group, name, obj.item())
    elif isinstance(obj, _SCALARS):
        ds = group.create_dataset(name, data=np.zeros(0, dtype=np.uint8))
        ds.attrs["kind"] = "json"
        ds.attrs["value"] = json.dumps(obj)
    elif isinstance(obj, dict):
        g = group.create_group(name)
        g.attrs["kind"] = "dict"
        keys = list(obj)
        for k in keys:
            if not isinstance(k, str | int) or isinstance(k, bool):
                raise TypeError(f"state dict keys must be str or int; got {k!r}")
        g.attrs["keys"] = json.dumps(keys)
        for i, k in enumerate(keys):
            write_tree(g, str(i), obj[k])
    elif isinstance(obj, list) and _packable(obj):
        # a loss history: one float64/int64 dataset, not one dataset per entry (exact both ways)
        kind = "float_list" if type(obj[0]) is float else "int_list"
        ds = group.create_dataset(name, data=np.asarray(obj, dtype=_PACKED[kind]))
        ds.attrs["kind"] = kind
    elif isinstance(obj, list | tuple):
        g = group.create_group(name)
        g.attrs["kind"] = "tuple" if isinstance(obj, tuple) else "list"
        g.attrs["length"] = len(obj)
        for i, v in enumerate(obj):
            write_tree(g, str(i), v)
    else:
        raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint (no pickle)")


def read_tree(node: h5py.Group | h5py.Dataset) -> Any:
    """Inverse of :func:`write_tree`."""
    kind = node.attrs.get("kind")
    if kind == "tensor":
        arr = node[()]
        name = node.attrs["dtype"]
        if name not in _DTYPES:
            raise ValueError(f"unsupported tensor dtype {name!r} at {node.name}")
        return torch.from_numpy(np.array(arr)).to(_DTYPES[name])
    if kind == "ndarray":
        return np.array(node[()])
    if kind == "json":
        return json.loads(node.attrs["value"])
    if kind in _PACKED:
        return np.asarray(node[()], dtype=_PACKED[kind]).reshape(-1).tolist()
    if kind == "dict":
        keys = json.loads(node.attrs["keys"])
        return {k: read_tree(node[str(i)]) for i, k in enumerate(keys)}
    if kind in ("list", "tuple"):
        items = [read_tree(node[str(i)]) for i in range(int(node.attrs["length"]))]
        return tuple(items) if kind == "tuple" else items
    raise ValueError(f"unknown node kind {kind!r} at {node.name}")


def digest(group: h5py.Group) -> str:
    """SHA-256 of every node's name, attributes and data, in a fixed order.

    Attributes named ``sha256`` are left out, so the digest can be stored on the root.
    """
    h = hashlib.sha256()

    def visit(obj: h5py.Group | h5py.Dataset) -> None:
        h.update(obj.name.encode())
        for key in sorted(obj.attrs):
            if key == "sha256":
                continue
            value = obj.attrs[key]
            h.update(key.encode())
            h.update(np.asarray(value).tobytes() if not isinstance(value, str) else value.encode())
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            h.update(str(obj.dtype).encode())
            h.update(np.ascontiguousarray(data).tobytes())
        else:
            for key in sorted(obj):
                visit(obj[key])

    visit(group)
    return h.hexdigest()


def tree_to_bytes(obj: Any) -> bytes:
    """A state tree as the bytes of an in-memory HDF5 file (for sending between processes)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        write_tree(f, "tree", obj)
    return buf.getvalue()


def tree_from_bytes(data: bytes) -> Any:
    """Inverse of :func:`tree_to_bytes`."""
    with h5py.File(io.BytesIO(data), "r") as f:
        return read_tree(f["tree"])
