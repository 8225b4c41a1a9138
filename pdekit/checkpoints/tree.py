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


def check_sizes(group: h5py.Group, file_size: int) -> None:
    """Refuse, before any data is read, a node whose declared size the file cannot hold.

    Every dataset's declared bytes (shape x item size) must be stored in the file (pdekit
    writes datasets uncompressed, so the two are equal) and every attribute's must fit in the
    file, and all together must fit in ``file_size``: a small crafted file cannot make a
    reader allocate more memory than its own size (a dataset declaring 2^28 float64 values
    with no data stored, read as its fill value, would take 2 GiB). Reads metadata only.

    Raises ValueError naming the node, its declared size and what the file holds.
    """
    total = 0

    def declared(shape, dtype) -> int:
        n = dtype.itemsize
        for extent in shape or ():
            n *= int(extent)
        return n

    def attributes(obj) -> None:
        nonlocal total
        for key in obj.attrs:
            attr = h5py.h5a.open(obj.id, key.encode())
            size = declared(attr.shape, attr.dtype)
            if size > file_size:
                raise ValueError(
                    f"attribute {key!r} of {obj.name} declares {size} bytes in a file of "
                    f"{file_size}"
                )
            total += size

    def visit(name: str, obj) -> None:
        nonlocal total
        attributes(obj)
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.dtype.kind not in "biufc":
            raise ValueError(f"dataset {obj.name} has type {obj.dtype}, which pdekit never writes")
        size = declared(obj.shape, obj.dtype)
        stored = obj.id.get_storage_size()
        if size > stored or stored > file_size:
            raise ValueError(
                f"dataset {obj.name} declares shape {obj.shape} {obj.dtype} ({size} bytes) but "
                f"the file stores {stored} bytes for it (file size {file_size}); refusing to "
                "read it"
            )
        total += size

    attributes(group)
    group.visititems(visit)
    if total > file_size:
        raise ValueError(f"its nodes declare {total} bytes in all, more than its {file_size} bytes")


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


def check_optimizer_state(
    optimizer: torch.optim.Optimizer,
    state: dict,
    model: torch.nn.Module | None = None,
    source: str = "the checkpoint",
) -> None:
    """Refuse an optimiser state (``optimizer.state_dict()`` form) that does not fit the
    parameters of ``optimizer``, before ``optimizer.load_state_dict`` accepts it and the first
    step fails (torch checks only the number of parameters per group).

    Every per-parameter state tensor that is not a scalar (Adam's ``exp_avg``, SGD's
    ``momentum_buffer``, ...) must have its parameter's shape; L-BFGS keeps flat vectors of all
    parameters, which must have their total size. ``model`` names the parameters in messages.

    Raises CheckpointError, one line naming ``source``, the parameter and both shapes.
    """
    from pdekit.errors import CheckpointError

    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:
        ids = [i for group in state["param_groups"] for i in group["params"]]
        per_param = state["state"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{source}: its optimiser state is malformed") from None
    if len(ids) != len(params):
        raise CheckpointError(
            f"{source}: its optimiser state holds {len(ids)} parameters and this network's "
            f"optimiser {len(params)} (the checkpoint does not fit this network)"
        )
    names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    by_id = dict(zip(ids, params, strict=True))
    flat = isinstance(optimizer, torch.optim.LBFGS)
    total = sum(p.numel() for p in params)
    for key, entry in per_param.items():
        param = by_id.get(key)
        if param is None or not isinstance(entry, dict):
            raise CheckpointError(f"{source}: its optimiser state names unknown parameter {key!r}")
        label = names.get(id(param), f"#{ids.index(key)}")
        for what, value in entry.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if flat and value.dim() == 1:
                if value.numel() != total:
                    raise CheckpointError(
                        f"{source}: optimiser state {what!r} has {value.numel()} values and the "
                        f"parameters {total} (the checkpoint does not fit this network)"
                    )
            elif value.shape != param.shape:
                raise CheckpointError(
                    f"{source}: optimiser state {what!r} of parameter {label!r} has shape "
                    f"{tuple(value.shape)} and the parameter {tuple(param.shape)} (the "
                    "checkpoint does not fit this network)"
                )
