"""Checkpoints in a run directory: names, rotation, and choosing the one to resume from.

A run writes ``checkpoint_<step, 8+ digits>.h5`` files into its checkpoint directory
(``<out>/checkpoints`` for the ``pdekit`` command) and, at the end, ``<out>/checkpoint.h5``.
Resuming accepts one file or a run directory. A file that fails verification (missing or wrong
checksum, truncated, another format) is reported on the warning channel and the newest good
checkpoint beside it is used instead; only when none is usable does resuming fail, with every
rejected file and its reason in one message.

A run directory belongs to one run at a time. :func:`claim_run_dir` takes an advisory lock on it
(``.pdekit.lock``, holding the PID of the run; a second run refuses, naming that PID; the lock of
a process that died is taken over with a warning), and records the run's id in
``.pdekit-run.json``. A directory already holding another run's results is refused (or, on
request, emptied of them, or passed over for a fresh ``<out>-2``, ``<out>-3``, ...). Each periodic
checkpoint's owner is recorded in ``.pdekit-owners.json`` beside it, and :func:`rotate` deletes
only checkpoints of the run that holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pdekit.checkpoints.hdf5 import (
    Checkpoint,
    _check_header,
    load_checkpoint_bytes,
    open_checkpoint_file,
)
from pdekit.checkpoints.sealed import HEADER_SIZE, body_digest, pid_alive
from pdekit.errors import CheckpointError, OutputError

_PERIODIC = re.compile(r"^checkpoint_(\d+)\.h5$")
FINAL_NAME = "checkpoint.h5"
LOCK_NAME = ".pdekit.lock"
RUN_NAME = ".pdekit-run.json"
OWNERS_NAME = ".pdekit-owners.json"
#: files whose presence means a directory holds a run's results
RESULT_NAMES = (FINAL_NAME, "solution.pvd", "fields.h5", "errors.json", "solution.png")

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


def rotate(directory: Path, keep: int, current: int, run_id: str | None = None) -> list[Path]:
    """Delete periodic checkpoints so that ``checkpoint_<current>`` and the ``keep - 1`` newest
    before it remain. Files of later steps (the abandoned future of a run resumed from an
    earlier checkpoint) are deleted too. Returns the deleted paths.

    Only checkpoints of the run ``run_id`` (default: the run this process holds the lock of,
    on ``directory`` or its parent) are counted and deleted; ``checkpoint_<current>`` is
    recorded as that run's. Without a run id (no lock held) every file counts as the run's.
    """
    directory = Path(directory)
    if run_id is None:
        run_id = held_run_id(directory)
    files = periodic_checkpoints(directory)
    owners: dict[str, str] = {}
    if run_id is not None:
        owners = _read_json(directory / OWNERS_NAME)
        owners[checkpoint_name(current)] = run_id
        files = [p for p in files if owners.get(p.name) == run_id]
    older = [p for p in files if periodic_step(p) < current]
    later = [p for p in files if periodic_step(p) > current]
    doomed = older[: max(0, len(older) - (keep - 1))] + later
    for p in doomed:
        p.unlink(missing_ok=True)
        owners.pop(p.name, None)
    if run_id is not None:
        present = {p.name for p in periodic_checkpoints(directory)}
        _write_json(directory / OWNERS_NAME, {k: v for k, v in owners.items() if k in present})
    return doomed


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


# -- one run per directory: lock, run record, checkpoint owners ------------------------------------
_HELD: dict[Path, RunLock] = {}


class RunLock:
    """An advisory lock (``fcntl.flock``) on a run directory, held by this process.

    ``run_id`` names the run; ``directory`` is the locked run directory. :meth:`release` (or
    leaving the ``with`` block) frees it; a process that dies frees it too (the kernel drops
    the lock), leaving its PID in the lock file for the next run to report.
    """

    def __init__(self, directory: Path, fd: int, run_id: str, created: Path | None = None):
        self.directory, self._fd, self.run_id = directory, fd, run_id
        #: the outermost directory the claim created (None: the directory existed)
        self.created = created
        #: a note for the user, e.g. that a fresh directory was chosen (None: nothing to say)
        self.note: str | None = None

    def release(self) -> None:
        if self._fd is None:
            return
        _HELD.pop(self.directory.resolve(), None)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # no PID left behind: the next run sees no stale lock
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def abandon(self) -> None:
        """Release the lock of a run that failed before writing anything: its run record goes,
        and the directories the claim created too, when empty."""
        if holds_results(self.directory, ignore_record=True):
            self.release()
            return
        (self.directory / RUN_NAME).unlink(missing_ok=True)
        if self.created is not None:
            (self.directory / LOCK_NAME).unlink(missing_ok=True)
        self.release()
        with contextlib.suppress(OSError):
            (self.directory / "checkpoints").rmdir()  # only when empty
        if self.created is None:
            return
        made = [self.directory, *self.directory.parents]
        for d in made[: made.index(self.created) + 1]:
            try:
                d.rmdir()
            except OSError:
                return

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def held_run_id(directory: Path) -> str | None:
    """Id of the run whose lock this process holds on ``directory`` or its parent (else None)."""
    directory = Path(directory).resolve()
    for d in (directory, directory.parent):
        if d in _HELD:
            return _HELD[d].run_id
    return None


def lock_run_dir(directory: Path, warn: Warn) -> int:
    """Take the lock of ``directory`` (which exists); returns the lock file's descriptor.

    Raises OutputError naming the PID of the run holding it. A PID left by a process that
    died is reported on ``warn`` and the lock taken over.
    """
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create the run lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _lock_pid(fd)
        os.close(fd)
        who = f"PID {holder}" if holder else "another process"
        raise OutputError(
            f"run directory {directory} is in use by another pdekit run ({who}); wait for it "
            "to finish or choose another --out"
        ) from None
    holder = _lock_pid(fd)
    if holder and holder != os.getpid() and not pid_alive(holder):
        warn(
            f"took over the stale lock of {directory} left by PID {holder}, which is no longer "
            "running (a run that was killed)"
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def holds_results(directory: Path, ignore_record: bool = False) -> bool:
    """Whether ``directory`` holds a run's results (outputs, checkpoints or a run record)."""
    if not directory.is_dir():
        return False
    if not ignore_record and (directory / RUN_NAME).exists():
        return True
    if any((directory / n).exists() for n in RESULT_NAMES):
        return True
    return bool(periodic_checkpoints(directory) or periodic_checkpoints(directory / "checkpoints"))


def clear_results(directory: Path) -> None:
    """Delete a previous run's results from ``directory`` (its checkpoints, outputs, records)."""
    for d in (directory, directory / "checkpoints"):
        for p in periodic_checkpoints(d):
            p.unlink(missing_ok=True)
        (d / OWNERS_NAME).unlink(missing_ok=True)
    for name in (*RESULT_NAMES, RUN_NAME):
        (directory / name).unlink(missing_ok=True)


def claim_run_dir(
    out: str | os.PathLike,
    *,
    label: str,
    warn: Warn,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
    fresh_if_taken: bool = False,
) -> RunLock:
    """Lock a run directory for a new run (or for continuing the run it holds) and record it.

    Parameters
    ----------
    out: the run directory (created if needed).
    label: what the run is (``"porous_medium/heat, pinn"``), kept in the run record.
    warn: where warnings go (a stale lock taken over, a fresh directory chosen).
    resume: the checkpoint or run directory resumed from; one inside ``out`` continues the run
        ``out`` holds (same run id, its results kept).
    overwrite: delete another run's results in ``out`` instead of refusing.
    fresh_if_taken: when ``out`` is locked or holds another run's results, use the first free
        ``<out>-2``, ``<out>-3``, ... instead (the default ``--out``); the lock's ``note``
        says so.

    Raises OutputError when ``out`` is locked (naming the holder's PID) or holds another run's
    results, or cannot be written.
    """
    base = Path(out)
    for n in range(1, 1000):
        directory = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            lock = _claim(directory, label, warn, resume, overwrite)
        except OutputError:
            if fresh_if_taken and not (directory.exists() and not directory.is_dir()):
                continue
            raise
        if n > 1:
            lock.note = f"{base} holds another run; this run writes to {directory}"
        return lock
    raise OutputError(f"no free run directory {base}-N for N < 1000; choose --out")


def _claim(directory: Path, label: str, warn: Warn, resume, overwrite: bool) -> RunLock:
    missing = [d for d in [directory, *directory.parents] if not os.path.lexists(d)]
    created = missing[-1] if missing else None
    ensure_writable_dir(directory, "run directory")
    fd = lock_run_dir(directory, warn)
    try:
        record = _read_json(directory / RUN_NAME)
        continuing = resume is not None and _inside(Path(resume), directory)
        if not continuing and holds_results(directory):
            if not overwrite:
                was = f" ({record['label']})" if record.get("label") else ""
                raise OutputError(
                    f"run directory {directory} holds the results of another run{was}; pass "
                    "--overwrite to replace them, --resume to continue that run, or choose "
                    "another --out"
                )
            clear_results(directory)
            record = {}
        run_id = record.get("run_id") if continuing else None
        run_id = run_id or uuid.uuid4().hex[:16]
        if continuing:  # checkpoints of a run written before run ids existed become its own
            _adopt(directory / "checkpoints", run_id)
            _adopt(directory, run_id)
        _write_json(
            directory / RUN_NAME,
            {"run_id": run_id, "label": label, "pid": os.getpid(), "started": time.time()},
        )
    except BaseException:
        os.close(fd)
        raise
    lock = RunLock(directory, fd, run_id, created)
    _HELD[directory.resolve()] = lock
    return lock


def _adopt(directory: Path, run_id: str) -> None:
    files = periodic_checkpoints(directory)
    if not files:
        return
    owners = _read_json(directory / OWNERS_NAME)
    for p in files:
        owners.setdefault(p.name, run_id)
    _write_json(directory / OWNERS_NAME, owners)


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


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
    """The bytes of a checkpoint and the checkpoint they hold. The header is checked against
    the file's bytes streamed from disk before they are read into memory (through one open
    file): a damaged file, even one too large for memory (a sparse 8 GiB file once raised
    MemoryError here instead of falling back), is rejected without being loaded; the bytes read
    are checked again by :func:`load_checkpoint_bytes`."""
    try:
        with open(path, "rb") as fh:
            _check_header(fh.read(HEADER_SIZE), lambda: body_digest(fh), str(path))
            fh.seek(0)
            data = fh.read()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except MemoryError:
        raise CheckpointError(
            f"cannot read checkpoint {path}: its {path.stat().st_size} bytes do not fit in memory"
        ) from None
    return data, load_checkpoint_bytes(data, str(path))
