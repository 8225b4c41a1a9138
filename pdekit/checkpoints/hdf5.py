"""HDF5 checkpoints that describe themselves: write atomically, verify on read, never unpickle.

Layout (format ``pdekit-checkpoint``, version 1)::

    /                      attrs: format, format_version, pdekit_version, problem,
                                  problem_params (JSON), solver, solver_config (JSON), step,
                                  created (ISO time), sha256 (digest of everything else)
    /model                 the model's state_dict (tensors)
    /trainer               optimizer, scheduler, task (sampler) and RNG states, loss history
    /extras                solver-specific state of the solution (e.g. causal weight history)

Writes go to a temporary file in the same directory, are flushed and fsynced, then renamed into
place, so a crash never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from pdekit._version import __version__
from pdekit.checkpoints.tree import digest, read_tree, write_tree
from pdekit.errors import CheckpointError

FORMAT = "pdekit-checkpoint"
FORMAT_VERSION = 1


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


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically (temp file, fsync, rename). Returns the path."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create directory {parent} for checkpoint: {exc}") from None
    tmp = parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
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
            f.flush()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        try:  # make the rename itself durable
            dir_fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, with_trainer: bool = True) -> Checkpoint:
    """Read and verify a checkpoint; raise CheckpointError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"{path} is not a readable HDF5 checkpoint ({exc})") from None
    with f:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise CheckpointError(f"{path} is not a pdekit checkpoint (format attribute {fmt!r})")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format version {version}; this pdekit reads version "
                f"{FORMAT_VERSION}. Load it with the pdekit version that wrote it "
                f"({f.attrs.get('pdekit_version')!r})."
            )
        stored = f.attrs.get("sha256")
        try:
            actual = digest(f)
        except Exception as exc:  # truncated datasets raise from h5py in many ways
            raise CheckpointError(f"{path} is corrupt: cannot read its data ({exc})") from None
        if stored is None or stored != actual:
            raise CheckpointError(f"{path} is corrupt: checksum mismatch (file damaged or edited)")
        try:
            return Checkpoint(
                problem=str(f.attrs["problem"]),
                problem_params=json.loads(f.attrs["problem_params"]),
                solver=str(f.attrs["solver"]),
                solver_config=json.loads(f.attrs["solver_config"]),
                step=int(f.attrs["step"]),
                model=read_tree(f["model"]),
                trainer=read_tree(f["trainer"]) if with_trainer and "trainer" in f else None,
                extras=read_tree(f["extras"]) if "extras" in f else {},
                pdekit_version=str(f.attrs["pdekit_version"]),
                created=str(f.attrs.get("created", "")),
            )
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path} is incomplete or malformed: {exc}") from None
