"""Checkpoints in a run directory: names, rotation, and choosing the one to resume from.

A run writes ``checkpoint_<step, 8+ digits>.h5`` files into its checkpoint directory
(``<out>/checkpoints`` for the ``pdekit`` command) and, at the end, ``<out>/checkpoint.h5``.
Resuming accepts one file or a run directory. A file that fails verification (missing or wrong
checksum, truncated, another format) is reported on the warning channel and the newest good
checkpoint beside it is used instead; only when none is usable does resuming fail, with every
rejected file and its reason in one message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from pdekit.checkpoints.hdf5 import Checkpoint, load_checkpoint_bytes, open_checkpoint_file
from pdekit.errors import CheckpointError, OutputError

_PERIODIC = re.compile(r"^checkpoint_(\d+)\.h5$")
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")
FINAL_NAME = "checkpoint.h5"

Warn = Callable[[str], None]


def checkpoint_name(step: int) -> str:
    """File name of the periodic checkpoint at ``step``."""
    return f"checkpoint_{step:08d}.h5"


def periodic_step(path: Path) -> int | None:
    """The step in a periodic checkpoint's file name (None for other names)."""
    m = _PERIODIC.match(path.name)
    return int(m.group(1)) if m else None


def periodic_checkpoints(directory: Path) -> list[Path]:
    """Periodic checkpoint files of ``directory``, oldest step first."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if periodic_step(p) is not None and p.is_file()]
    return sorted(files, key=periodic_step)


def rotate(directory: Path, keep: int, current: int) -> list[Path]:
    """Delete periodic checkpoints so that ``checkpoint_<current>`` and the ``keep - 1`` newest
    before it remain. Files of later steps (the abandoned future of a run resumed from an
    earlier checkpoint) are deleted too. Returns the deleted paths."""
    older = [p for p in periodic_checkpoints(directory) if periodic_step(p) < current]
    later = [p for p in periodic_checkpoints(directory) if periodic_step(p) > current]
    doomed = older[: max(0, len(older) - (keep - 1))] + later
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files left by checkpoint writers that died (SIGKILL, power loss)."""
    removed = []
    if not directory.is_dir():
        return removed
    for p in directory.iterdir():
        m = _TEMP.match(p.name)
        if m and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_writable_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """Create ``path`` if needed and check a file can be written in it (before hours of work).

    Raises OutputError naming the path and the reason.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what} {path} exists and is not a directory") from None
    except OSError as exc:
        raise OutputError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    probe = path / f".pdekit-write-test-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"pdekit")
    except OSError as exc:
        raise OutputError(f"{what} {path} is not writable: {exc.strerror or exc}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return path


# -- choosing a checkpoint to resume from ----------------------------------------------------------
def _stored_step(path: Path) -> int:
    """Step of a checkpoint file, from its name or its attributes (-1 when unreadable)."""
    step = periodic_step(path)
    if step is not None:
        return step
    try:
        with open_checkpoint_file(path) as f:  # never parses damaged bytes
            return int(f.attrs["step"])
    except Exception:  # unreadable: tried last, and rejected with its reason then
        return -1


def run_candidates(directory: Path) -> list[Path]:
    """Checkpoints of a run directory, newest step first: ``checkpoint_*.h5`` in it and in its
    ``checkpoints/`` folder, and its final ``checkpoint.h5``."""
    files = periodic_checkpoints(directory) + periodic_checkpoints(directory / "checkpoints")
    final = directory / FINAL_NAME
    if final.is_file():
        files.append(final)
    return sorted(files, key=_newest_first)


def _newest_first(p: Path) -> tuple[int, bool]:
    """Sort key: newest step first; at equal steps a periodic file (written during training)
    before the final one."""
    return (-_stored_step(p), p.name == FINAL_NAME)


def find_resumable(path: str | os.PathLike, warn: Warn) -> tuple[Path, bytes, Checkpoint]:
    """The checkpoint to resume from: ``path`` itself, or the newest good one.

    ``path`` is a checkpoint file or a run directory. A file that fails verification is named
    on ``warn`` with its reason, and the newest good checkpoint in its directory (of a step no
    later than the requested one) is used instead. Returns the chosen path, its bytes (so
    other processes can be sent the very same file) and the verified checkpoint.

    Raises CheckpointError when nothing usable is found, naming each rejected file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"cannot resume: {path} does not exist")
    rejected: list[str] = []
    if path.is_dir():
        candidates = run_candidates(path)
        if not candidates:
            raise CheckpointError(
                f"cannot resume: no checkpoint in {path} (looked for checkpoint_*.h5 in it and "
                f"in {path / 'checkpoints'}, and {FINAL_NAME})"
            )
    else:
        try:
            return (path, *_verified_bytes(path))
        except CheckpointError as exc:
            rejected.append(str(exc))
            warn(f"{exc}; looking for the newest good checkpoint beside it")
        limit = periodic_step(path)
        siblings = run_candidates(path.parent)
        if path.parent.name == "checkpoints":
            siblings += run_candidates(path.parent.parent)
        candidates = [
            p
            for p in dict.fromkeys(siblings)
            if p.resolve() != path.resolve() and (limit is None or _stored_step(p) <= limit)
        ]
        # the two folders' files interleave by step (a run's final checkpoint.h5 sits beside
        # its checkpoints/ folder): newest first over both, as run_candidates orders one
        candidates.sort(key=_newest_first)
    for candidate in candidates:
        try:
            data, ckpt = _verified_bytes(candidate)
        except CheckpointError as exc:
            rejected.append(str(exc))
            warn(f"{exc}; trying an older checkpoint")
            continue
        if rejected:
            warn(f"resuming from {candidate} (step {ckpt.step}), the newest good checkpoint")
        return candidate, data, ckpt
    raise CheckpointError("cannot resume: no usable checkpoint: " + "; ".join(rejected))


def _verified_bytes(path: Path) -> tuple[bytes, Checkpoint]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    return data, load_checkpoint_bytes(data, str(path))
