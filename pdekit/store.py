"""The model store: trained models, shipped with pdekit or trained by the user, found by name.

Two places, searched in this order:

* ``user``: ``$PDEKIT_CACHE_DIR/models`` (else ``~/.cache/pdekit/models``), where
  :func:`save` writes the models a user trains (``pdekit train``);
* ``shipped``: the data folder ``pdekit/model_store/`` of the installed package (no code in it).

Each model is one sealed checkpoint file (:mod:`pdekit.checkpoints.hdf5`: the SHA-256 of its
bytes in a 512-byte header, checked before HDF5 parses a byte; files without that header are
refused). What the store lists comes from the file itself:

* ``solver``, ``problem``: the checkpoint's attributes;
* ``family``, ``grid``: the solver config's ``dataset.family`` and ``dataset.grid`` (a model
  trained on a dataset; empty for a problem-level model such as ProbConserv's ANP);
* ``sha256``, ``size``: the header's digest and the file's size in bytes;
* ``command``: the command that trained it (the checkpoint's ``extras.training_command``).

The shipped folder also holds ``index.json``, a listing derived from its files
(:func:`derive_index`); :func:`check_index` compares the two and a test keeps them equal.

>>> from pdekit import store
>>> store.find("fno", "kolmogorov_nu1e-3")            # doctest: +SKIP
StoredModel(fno kolmogorov_nu1e-3 64x64, user: ~/.cache/pdekit/models/...)
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pdekit.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from pdekit.checkpoints import hdf5 as _ckpt
from pdekit.checkpoints.sealed import HDF5_SIGNATURE, HEADER_SIZE
from pdekit.checkpoints.tree import read_tree
from pdekit.errors import CheckpointError, ParameterError
from pdekit.problems.references.cache import cache_dir

#: the shipped models: a data folder of the package
SHIPPED_DIR = Path(__file__).parent / "model_store"
#: the derived listing of the shipped folder
INDEX_NAME = "index.json"
#: the largest shipped model (bytes)
MAX_SHIPPED_BYTES = 20 * 2**20
#: the places, in search order
PLACES = ("user", "shipped")


class StoreWarning(UserWarning):
    """A file of the store was skipped (damaged, unsealed or not a checkpoint)."""


def user_dir() -> Path:
    """Where user-trained models live: ``<cache dir>/models``."""
    return cache_dir() / "models"


def place_dirs() -> dict[str, Path]:
    """``{place: directory}`` in search order."""
    return {"user": user_dir(), "shipped": SHIPPED_DIR}


@dataclass(frozen=True)
class StoredModel:
    """One model of the store (see the module docstring for where each field comes from)."""

    path: Path
    place: str
    solver: str
    problem: str
    family: str
    grid: tuple[int, ...]
    sha256: str
    size: int
    command: str

    def line(self) -> str:
        """One line: solver, family (or problem), grid, place, path, size and digest."""
        grid = "x".join(map(str, self.grid)) or "-"
        return (
            f"{self.solver} {self.family or self.problem} {grid} [{self.place}] {self.path} "
            f"({self.size / 2**20:.2f} MiB, sha256 {self.sha256[:12]})"
        )

    def index_entry(self) -> dict[str, Any]:
        """The model as an entry of ``index.json`` (the file name instead of the path)."""
        entry = asdict(self)
        entry.pop("place")
        entry["file"] = Path(entry.pop("path")).name
        entry["grid"] = list(self.grid)
        return entry

    def __repr__(self) -> str:
        grid = "x".join(map(str, self.grid)) or "-"
        what = f"{self.solver} {self.family or self.problem} {grid}"
        return f"StoredModel({what}, {self.place}: {self.path})"


def describe(path: str | os.PathLike, place: str = "") -> StoredModel:
    """The store entry of a model file, read after its sealed header matched its bytes.

    Raises CheckpointError (one line naming the file): missing, unsealed (no pdekit header),
    damaged (the header's digest is not that of the bytes; nothing parsed), or not a checkpoint.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_SIZE)
    except OSError as exc:
        raise CheckpointError(f"model {path} cannot be read: {exc.strerror or exc}") from None
    if head.startswith(HDF5_SIGNATURE):
        raise CheckpointError(
            f"model {path} is not sealed (no pdekit checkpoint header): the store takes sealed "
            "checkpoints only (written by Solution.save or pdekit.store.save)"
        )
    with _ckpt.open_checkpoint_file(path) as f:  # checks the digest before parsing
        try:
            config = json.loads(f.attrs["solver_config"])
            extras = read_tree(f["extras"]) if "extras" in f else {}
            solver, problem = str(f.attrs["solver"]), str(f.attrs["problem"])
        except Exception as exc:  # a sealed file of another kind
            raise CheckpointError(f"model {path} is not a pdekit checkpoint: {exc}") from None
    data = config.get("dataset", {}) if isinstance(config, dict) else {}
    data = data if isinstance(data, dict) else {}
    grid = data.get("grid", ())
    try:
        axes = grid if isinstance(grid, Sequence) else [grid] if grid else []
        grid = tuple(_cells_entry(n) for n in axes)
    except (TypeError, ValueError, OverflowError):
        raise CheckpointError(
            f"model {path} has an unusable dataset.grid {data.get('grid')!r} in its solver "
            "config (cells per axis: positive integers)"
        ) from None
    magic = _ckpt.HEADER_MAGIC
    return StoredModel(
        path=path,
        place=place,
        solver=solver,
        problem=problem,
        family=str(data.get("family", "")),
        grid=grid,
        sha256=head[len(magic) : len(magic) + 64].decode("ascii"),
        size=path.stat().st_size,
        command=str(extras.get("training_command", "")),
    )


def _cells_entry(n: Any) -> int:
    """One axis's cell count from a stored config: a positive integer, else ValueError."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n != int(n) or n < 1:
        raise ValueError(n)
    return int(n)


def _scan(directory: Path, place: str) -> list[StoredModel]:
    out = []
    for path in sorted(Path(directory).glob("*.h5")):
        try:
            out.append(describe(path, place))
        except CheckpointError as exc:
            warnings.warn(f"skipping {exc}", StoreWarning, stacklevel=3)
    return out


def list(  # noqa: A001  (the store's verb: store.list())
    solver: str | None = None,
    family: str | None = None,
    *,
    problem: str | None = None,
    places: Sequence[str | os.PathLike] | None = None,
) -> list[StoredModel]:
    """The models of the store, user cache first, then shipped; damaged or unsealed files are
    skipped with a one-line :class:`StoreWarning`.

    Parameters
    ----------
    solver, family, problem: keep only models of this solver / family / problem.
    places: directories (or the names ``"user"``, ``"shipped"``) to search, in order
        (default: :data:`PLACES`).
    """
    dirs = place_dirs()
    out = []
    for place in PLACES if places is None else places:
        name = place if place in dirs else "dir"
        for model in _scan(dirs.get(place, Path(place)), name):
            if solver is not None and model.solver != solver:
                continue
            if family is not None and model.family != family:
                continue
            if problem is not None and model.problem != problem:
                continue
            out.append(model)
    return out


def find(
    solver: str,
    family: str,
    grid: int | Iterable[int] | None = None,
    *,
    places: Sequence[str | os.PathLike] | None = None,
) -> StoredModel | None:
    """The first model of ``solver`` trained on ``family`` (and on ``grid`` cells per axis,
    when given) in the user cache, else among the shipped ones; None when there is none.
    ``model.place`` says where it was found."""
    want = None if grid is None else _cells(grid)
    for model in list(solver, family, places=places):
        if want is None or _same(model.grid, want):
            return model
    return None


def _cells(grid: int | Iterable[int]) -> tuple[int, ...]:
    if isinstance(grid, int):
        return (grid,)
    return tuple(int(n) for n in grid)


def _same(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal cells per axis, a single count standing for every axis."""
    return set(a) == set(b) and (len(set(a)) == 1 or a == b)


def save(
    model: Any,
    name: str | None = None,
    *,
    command: str = "",
    directory: str | os.PathLike | None = None,
) -> StoredModel:
    """Write a Solution (or a :class:`~pdekit.checkpoints.Checkpoint`) into the user store
    (or ``directory``) as a sealed checkpoint and return its entry.

    ``name`` is the file's stem (default ``<solver>_<family or problem>_<grid>``); ``command``
    is recorded as ``extras.training_command`` (the file keeps an existing one otherwise).
    An existing file of that name is replaced atomically.
    """
    ckpt: Checkpoint = model.to_checkpoint() if hasattr(model, "to_checkpoint") else model
    if not isinstance(ckpt, Checkpoint):
        raise ParameterError(f"store.save takes a Solution or a Checkpoint; got {model!r}")
    if command:
        ckpt.extras = {**ckpt.extras, "training_command": command}
    data = ckpt.solver_config.get("dataset", {})
    if name is None:
        grid = data.get("grid", "")
        label = data.get("family") or ckpt.problem.replace("/", "-")
        name = f"{ckpt.solver}_{label}" + (f"_{grid}" if grid else "")
    if not name or "/" in name or name.startswith("."):
        raise ParameterError(f"a model name is a plain file stem; got {name!r}")
    target = Path(directory) if directory is not None else user_dir()
    path = save_checkpoint(target / f"{name}.h5", ckpt)
    return describe(path, "user" if directory is None else "dir")


def load(model: StoredModel | str | os.PathLike) -> Checkpoint:
    """The checkpoint of a store entry or model file (verified; never half-read)."""
    path = model.path if isinstance(model, StoredModel) else Path(model)
    describe(path)  # refuses unsealed files the checkpoint loader would still read
    return load_checkpoint(path, with_trainer=False)


# -- the shipped folder's index ----------------------------------------------------------------
def derive_index(directory: str | os.PathLike = SHIPPED_DIR) -> dict[str, Any]:
    """The index of a store folder, derived from its files."""
    models = [m.index_entry() for m in _scan(Path(directory), "shipped")]
    return {"format": "pdekit-model-store", "version": 1, "models": models}


def write_index(directory: str | os.PathLike = SHIPPED_DIR) -> Path:
    """Write ``index.json`` of a store folder (after adding or replacing a shipped model)."""
    path = Path(directory) / INDEX_NAME
    path.write_text(json.dumps(derive_index(directory), indent=2, sort_keys=True) + "\n")
    return path


def check_index(directory: str | os.PathLike = SHIPPED_DIR) -> None:
    """Raise CheckpointError naming the first difference between ``index.json`` and the files
    (a shipped file larger than :data:`MAX_SHIPPED_BYTES` too)."""
    path = Path(directory) / INDEX_NAME
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"model store index {path} is unreadable: {exc}") from None
    derived = derive_index(directory)
    want = {m["file"]: m for m in derived["models"]}
    have = {m.get("file"): m for m in stored.get("models", [])}
    for name in sorted(set(want) | set(have)):
        if want.get(name) != have.get(name):
            what = "missing from the index" if name not in have else "not in the folder"
            if name in want and name in have:
                keys = [k for k in want[name] if want[name][k] != have[name].get(k)]
                what = f"differs in {', '.join(keys)}"
            raise CheckpointError(
                f"model store index {path}: {name} {what} (rebuild it: pdekit.store.write_index())"
            )
    for m in derived["models"]:
        if m["size"] > MAX_SHIPPED_BYTES:
            raise CheckpointError(
                f"shipped model {m['file']} is {m['size'] / 2**20:.1f} MiB; the limit is "
                f"{MAX_SHIPPED_BYTES / 2**20:.0f} MiB"
            )
