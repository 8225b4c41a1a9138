"""HDF5 cache of computed reference solutions.

A computed reference (the output of one of our reference solvers) is a set of named numpy arrays:
grid axes and field values. It is stored once per *key* -- the problem name, its parameters and
the solver settings -- in a user cache directory, and read back on the next request:

>>> arrays = load_or_compute("navier_stokes/kolmogorov", {"nu": 1e-3, "seed": 0},
...                          {"solver": "spectral_ns", "n": 128}, compute)   # doctest: +SKIP

Directory: ``$PDEKIT_CACHE_DIR`` when set, else ``~/.cache/pdekit``.

File layout (one file per key, ``<family>__<name>-<hash16>.h5``): a 512-byte header
``pdekit-reference-cache sha256=<hex>`` holding the SHA-256 of every byte after it (HDF5's user
block, :mod:`pdekit.checkpoints.sealed`), then the HDF5 file: one dataset per array, and the
root attributes ``format_version``, ``pdekit_version``, ``key`` (the canonical JSON of the key)
and ``checksum`` (SHA-256 over every dataset's name, dtype, shape and bytes).

An entry is trusted only if its header matches its bytes (checked before the HDF5 library parses
the file, which a damaged file can crash), it opens, its format version and key JSON equal the
requested ones, and its checksum matches its contents; anything else (stale, truncated, edited,
unreadable, or written before the header, format 1) is recomputed and rewritten, with a
warning. Writes go to a temporary file in the same directory that is fsynced and renamed into
place, so a reader never sees a half-written entry and concurrent writers of the same key are
harmless (the last rename wins; both wrote the same result). A temporary file carries its
writer's PID (``<entry>.h5.<PID>-<random>.tmp``); the next write in the directory removes those
of dead writers (and unnamed ones over an hour old), never a live process's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdekit._version import __version__
from pdekit.checkpoints import sealed

#: bump when the file layout changes; older entries are then recomputed (2: the header)
CACHE_FORMAT_VERSION = 2
#: start of an entry's header (see :mod:`pdekit.checkpoints.sealed`)
HEADER_MAGIC = b"pdekit-reference-cache sha256="

Arrays = dict[str, np.ndarray]


class CacheWarning(UserWarning):
    """A cache entry was not usable (stale or corrupt) or could not be written."""


def cache_dir() -> Path:
    """The reference cache directory: ``$PDEKIT_CACHE_DIR``, else ``~/.cache/pdekit``."""
    env = os.environ.get("PDEKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "pdekit"


def canonical_key(problem: str, params: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """The canonical JSON of a cache key (sorted keys, no whitespace, floats as repr).

    Parameters and settings must be JSON-serialisable (numbers, strings, booleans, lists).
    """
    key = {
        "format_version": CACHE_FORMAT_VERSION,
        "problem": problem,
        "params": dict(params),
        "settings": dict(settings),
    }
    return json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=False)


def cache_path(problem: str, params: Mapping[str, Any], settings: Mapping[str, Any]) -> Path:
    """Where the entry of this key lives (it may not exist)."""
    digest = hashlib.sha256(canonical_key(problem, params, settings).encode()).hexdigest()
    return cache_dir() / f"{problem.replace('/', '__')}-{digest[:16]}.h5"


def checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(a.dtype.str.encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_entry(path: Path, key: str) -> Arrays | None:
    """The arrays of the entry at ``path`` if it is present, current and intact, else None.

    "Not present" is silent; a stale or corrupt entry warns (:class:`CacheWarning`) and gives None.
    """
    if not path.exists():
        return None
    try:
        fh = open(path, "rb")
    except OSError as exc:
        return _refuse(path, f"is unreadable ({exc}); recomputing")
    with fh:  # checked and parsed through one open file: a rename in between changes neither
        state = sealed.header_state(
            fh.read(sealed.HEADER_SIZE), lambda: sealed.body_digest(fh), HEADER_MAGIC
        )
        if state != sealed.SEALED:
            why = {
                sealed.UNSEALED: "has no header (a plain HDF5 file, not written by this cache)",
                sealed.FOREIGN: "does not start with a cache header (damaged or not an entry)",
                sealed.MISMATCH: "does not match the digest in its header (damaged or edited)",
            }[state]
            return _refuse(path, f"{why}; not parsed, recomputing")
        fh.seek(0)
        try:
            with h5py.File(fh, "r") as f:
                version = int(f.attrs.get("format_version", -1))
                stored_key = _as_str(f.attrs.get("key", ""))
                stored_sum = _as_str(f.attrs.get("checksum", ""))
                arrays = {name: np.asarray(f[name][()]) for name in f.keys()}
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            return _refuse(path, f"is unreadable ({exc}); recomputing")
    if version != CACHE_FORMAT_VERSION or stored_key != key:
        warnings.warn(
            f"reference cache entry {path} is stale (format {version}, key differs: "
            f"{stored_key != key}); recomputing",
            CacheWarning,
            stacklevel=3,
        )
        return None
    if checksum(arrays) != stored_sum:
        warnings.warn(
            f"reference cache entry {path} fails its checksum (corrupt); recomputing",
            CacheWarning,
            stacklevel=3,
        )
        return None
    return arrays


def _refuse(path: Path, why: str) -> None:
    """Warn that the entry at ``path`` is not used, and why (for :func:`read_entry`)."""
    warnings.warn(f"reference cache entry {path} {why}", CacheWarning, stacklevel=4)


def write_entry(path: Path, key: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` under ``key`` to ``path``: sealed, atomically
    (:func:`~pdekit.checkpoints.sealed.write_sealed_hdf5`); temporaries that older writers of
    this cache left behind are removed first."""
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)

    def fill(f) -> None:
        for name, a in arrays.items():
            f.create_dataset(name, data=np.asarray(a))
        f.attrs["format_version"] = CACHE_FORMAT_VERSION
        f.attrs["pdekit_version"] = __version__
        f.attrs["key"] = key
        f.attrs["checksum"] = checksum({k: np.asarray(v) for k, v in arrays.items()})

    sealed.write_sealed_hdf5(path, HEADER_MAGIC, fill, what="reference cache entry")


#: a writer's temporary file: ``<entry>.h5.<PID>-<random>.tmp`` (``<entry>.h5.<random>.tmp``
#: before the PID was part of the name)
_TEMP = re.compile(r"^.+\.h5\.(?:(\d+)-)?[A-Za-z0-9_]+\.tmp$")
#: age after which a temporary file without a PID in its name is taken as abandoned
STALE_TEMP_AGE_S = 3600.0


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files of killed writers of ``directory``: those naming a dead PID,
    and those without a PID (older versions) last modified over ``STALE_TEMP_AGE_S`` ago.
    A live process's temporary file is never removed. Returns the deleted paths."""
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        m = _TEMP.match(p.name)
        if m is None:
            continue
        try:
            if m.group(1) is not None:
                stale = not sealed.pid_alive(int(m.group(1)))
            else:
                stale = now - p.stat().st_mtime > STALE_TEMP_AGE_S
            if stale and p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


def load_or_compute(
    problem: str,
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    compute: Callable[[], Mapping[str, np.ndarray]],
) -> Arrays:
    """The cached arrays of this key, computing and storing them when absent, stale or corrupt.

    Parameters
    ----------
    problem:
        Registered problem name (``"navier_stokes/kolmogorov"``).
    params:
        The problem's parameters (``problem.params()``).
    settings:
        Everything else the result depends on: solver name, resolution, time step, and a solver
        version number to bump when the solver's output changes.
    compute:
        Returns the arrays (names are HDF5 dataset names: no ``/``).

    Notes
    -----
    If the cache directory cannot be written the computed arrays are returned anyway, with a
    :class:`CacheWarning`.
    """
    key = canonical_key(problem, params, settings)
    path = cache_path(problem, params, settings)
    arrays = read_entry(path, key)
    if arrays is not None:
        return arrays
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    for name in arrays:
        if not name or "/" in name:
            raise ValueError(f"cache array names must be non-empty without '/'; got {name!r}")
    try:
        write_entry(path, key, arrays)
    except OSError as exc:
        warnings.warn(
            f"could not write reference cache entry {path}: {exc}", CacheWarning, stacklevel=2
        )
    return arrays


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
