"""HDF5 checkpoints that describe themselves: write atomically, verify on read, never unpickle.

Layout (format ``pdekit-checkpoint``, version 1)::

    /                      attrs: format, format_version, pdekit_version, problem,
                                  problem_params (JSON), solver, solver_config (JSON), step,
                                  created (ISO time), sha256 (digest of everything else)
    /model                 the model's state_dict (tensors)
    /trainer               optimizer, scheduler, task (sampler) and RNG states, loss history
    /extras                solver-specific state of the solution (e.g. causal weight history)

The file starts with a header of ``HEADER_SIZE`` bytes that the HDF5 library leaves alone (its
"user block"): ``pdekit-checkpoint sha256=<hex>``, the SHA-256 of every byte after the header
(:mod:`pdekit.checkpoints.sealed`). Readers check it before the HDF5 library parses a byte of
the file, because libhdf5 is not robust against damaged files: a flipped byte can crash the
process (a segmentation fault in ``attrs.__getitem__`` was seen on a fuzzed copy) instead of
raising an error. A header-less HDF5 file (signature at offset 0) is refused unparsed, with the
command that seals a file its user trusts (``pdekit seal FILE``:
:func:`pdekit.checkpoints.sealed.seal_file`). Before any data is read, every dataset's declared
size is checked against the bytes the file stores for it, so a small file cannot make the
reader allocate gigabytes (a dataset declared with 2^28 elements and no data stored).

A checkpoint is built in memory (libhdf5 never writes to the disk, so a full disk cannot leave
its library state broken), then written to a temporary file in the same directory, fsynced and
renamed into place: a crash or a full disk never leaves a partial checkpoint under the final
name, and a full disk is reported in one line naming ENOSPC and the newest checkpoint left.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from pdekit._version import __version__
from pdekit.checkpoints import sealed
from pdekit.checkpoints.sealed import HEADER_SIZE
from pdekit.checkpoints.tree import check_sizes, digest, read_tree, write_tree
from pdekit.errors import CheckpointError

FORMAT = "pdekit-checkpoint"
FORMAT_VERSION = 1
HEADER_MAGIC = sealed.CHECKPOINT_MAGIC


def seal(path: str | os.PathLike) -> None:
    """Write the header of a checkpoint file written with ``userblock_size=HEADER_SIZE``: the
    digest of everything after it. (Also for tools that edit a checkpoint on purpose.)"""
    sealed.seal(path, HEADER_MAGIC)


def _check_header(head: bytes, body_digest, name: str) -> None:
    """Refuse, before any parsing, a file whose header does not match its bytes."""
    state = sealed.header_state(head, body_digest, HEADER_MAGIC)
    if state == sealed.FOREIGN:
        raise CheckpointError(
            f"{name} is not a readable HDF5 checkpoint (random bytes or truncated?): it starts "
            "with neither a pdekit checkpoint header nor an HDF5 signature"
        )
    if state == sealed.MISMATCH:
        raise CheckpointError(
            f"{name} is corrupt: checksum mismatch (file damaged or edited; its bytes do not "
            "match the digest in its header, so it was not parsed)"
        )
    if state == sealed.UNSEALED:
        raise CheckpointError(
            f"{name} has no pdekit header (a plain HDF5 file): pdekit does not parse files that "
            "nothing vouches for (a damaged one can crash libhdf5); if you trust it, seal it with "
            f"`pdekit seal {name}` and load it again"
        )


@contextlib.contextmanager
def open_checkpoint_file(path: str | os.PathLike) -> Iterator[h5py.File]:
    """A checkpoint file opened for reading by h5py once its header matches its bytes: the
    header is checked and the file parsed through one open file object, so nothing between the
    check and the parse (a rename over the path) can hand libhdf5 unchecked bytes.

    Raises CheckpointError: unreadable, a header that does not match (not parsed), or bytes
    that h5py cannot open."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
    with fh:
        try:
            head = fh.read(HEADER_SIZE)
            _check_header(head, lambda: sealed.body_digest(fh), str(path))
            fh.seek(0)
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
        try:
            f = h5py.File(fh, "r")
        except Exception as exc:  # h5py raises OSError, ValueError, ... on non-HDF5 bytes
            raise CheckpointError(
                f"{path} is not a readable HDF5 checkpoint (random bytes or truncated?): "
                f"{_first_line(exc)}"
            ) from None
        with f:
            yield f


@dataclass
class Checkpoint:
    """The content of a checkpoint file."""

    problem: str
    problem_params: dict[str, Any]
    solver: str
    solver_config: dict[str, Any]
    step: int
    model: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    pdekit_version: str = __version__
    created: str = ""
    #: where it was read from (set by the loaders; not stored in the file)
    source: str = ""


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically (temp file, fsync, rename). Returns the path."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create directory {parent} for checkpoint: {exc}") from None
    try:
        image = _image(ckpt)
    except OSError as exc:  # an in-memory file: only an odd h5py failure gets here
        raise CheckpointError(f"cannot write checkpoint {path}: {_first_line(exc)}") from None
    body = memoryview(image)[HEADER_SIZE:]
    head = sealed.header(HEADER_MAGIC, hashlib.sha256(body).hexdigest())
    try:
        sealed.write_atomically(path, (head, body), what="checkpoint")
    except OSError as exc:
        raise CheckpointError(f"{exc}; {_newest_left(path)}") from None
    return path


def _image(ckpt: Checkpoint) -> bytes:
    """The bytes of the checkpoint file of ``ckpt``, with ``HEADER_SIZE`` zero bytes of user
    block in front (the header is written over them)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=HEADER_SIZE) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["pdekit_version"] = ckpt.pdekit_version
        f.attrs["problem"] = ckpt.problem
        f.attrs["problem_params"] = json.dumps(ckpt.problem_params)
        f.attrs["solver"] = ckpt.solver
        f.attrs["solver_config"] = json.dumps(ckpt.solver_config)
        f.attrs["step"] = int(ckpt.step)
        f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        write_tree(f, "model", ckpt.model)
        if ckpt.trainer is not None:
            write_tree(f, "trainer", ckpt.trainer)
        write_tree(f, "extras", ckpt.extras)
        f.attrs["sha256"] = digest(f)
    return buf.getvalue()


def _newest_left(path: Path) -> str:
    """Which checkpoint a failed write of ``path`` left as the newest one (for its message)."""
    try:
        files = [p for p in path.parent.glob("checkpoint*.h5") if p.is_file()]
        newest = max(files, key=lambda p: p.stat().st_mtime, default=None)
    except OSError:
        newest = None
    if newest is None:
        return f"no checkpoint was written in {path.parent} before"
    return f"earlier checkpoints are intact; the last good one is {newest}"


def load_checkpoint(path: str | os.PathLike, *, with_trainer: bool = True) -> Checkpoint:
    """Read and verify a checkpoint file.

    Raises
    ------
    CheckpointError: naming the file and what is wrong: missing, not HDF5 (random bytes,
        truncated), another format, an unsupported format version, no checksum, a checksum
        mismatch (damaged or edited), or malformed content.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    with open_checkpoint_file(path) as f:
        ckpt = _read(f, str(path), with_trainer)
    ckpt.source = str(path)
    return ckpt


def load_checkpoint_bytes(data: bytes, name: str, *, with_trainer: bool = True) -> Checkpoint:
    """:func:`load_checkpoint` from the bytes of a checkpoint file; ``name`` labels errors."""
    _check_header(data[:HEADER_SIZE], lambda: hashlib.sha256(data[HEADER_SIZE:]).hexdigest(), name)
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except Exception as exc:
        raise CheckpointError(
            f"{name} is not a readable HDF5 checkpoint (random bytes or truncated?): "
            f"{_first_line(exc)}"
        ) from None
    with f:
        ckpt = _read(f, name, with_trainer)
    ckpt.source = name
    return ckpt


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read(f: h5py.File, name: str, with_trainer: bool) -> Checkpoint:
    try:
        return _verified(f, name, with_trainer)
    except CheckpointError:
        raise
    except Exception as exc:  # damaged HDF5 structures fail in many ways inside h5py
        raise CheckpointError(f"{name} is corrupt: {_first_line(exc)}") from None


def _verified(f: h5py.File, name: str, with_trainer: bool) -> Checkpoint:
    fmt = f.attrs.get("format")
    if fmt != FORMAT:
        raise CheckpointError(
            f"{name} is not a pdekit checkpoint (format attribute {fmt!r}, expected {FORMAT!r})"
        )
    version = f.attrs.get("format_version")
    writer = f.attrs.get("pdekit_version")
    if version is None or int(version) != FORMAT_VERSION:
        newer = version is not None and int(version) > FORMAT_VERSION
        hint = "upgrade pdekit" if newer else f"load it with the pdekit that wrote it ({writer})"
        raise CheckpointError(
            f"{name} has checkpoint format version {version}; this pdekit reads version "
            f"{FORMAT_VERSION} only: {hint}"
        )
    try:
        check_sizes(f, f.id.get_filesize())
    except ValueError as exc:
        raise CheckpointError(f"{name} is malformed: {exc}") from None
    stored = f.attrs.get("sha256")
    if stored is None:
        raise CheckpointError(
            f"{name} has no checksum (sha256 attribute): it was cut short or not written by "
            "pdekit; refusing to use it"
        )
    try:
        actual = digest(f)
    except Exception as exc:  # truncated datasets raise from h5py in many ways
        raise CheckpointError(
            f"{name} is corrupt: cannot read its data ({_first_line(exc)})"
        ) from None
    if stored != actual:
        raise CheckpointError(f"{name} is corrupt: checksum mismatch (file damaged or edited)")
    try:
        step = int(f.attrs["step"])
        if step < 0:
            raise ValueError(f"negative step {step}")
        return Checkpoint(
            problem=str(f.attrs["problem"]),
            problem_params=_json_dict(f.attrs["problem_params"], "problem_params"),
            solver=str(f.attrs["solver"]),
            solver_config=_json_dict(f.attrs["solver_config"], "solver_config"),
            step=step,
            model=read_tree(f["model"]),
            trainer=read_tree(f["trainer"]) if with_trainer and "trainer" in f else None,
            extras=read_tree(f["extras"]) if "extras" in f else {},
            pdekit_version=str(f.attrs["pdekit_version"]),
            created=str(f.attrs.get("created", "")),
        )
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{name} is incomplete or malformed: {_first_line(exc)}") from None


def _json_dict(text: str, what: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value
