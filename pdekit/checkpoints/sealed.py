"""HDF5 files that carry the SHA-256 of their own bytes in a header, checked before parsing.

libhdf5 is not robust against damaged files: a flipped byte can crash the process (a
segmentation fault inside ``attrs.__getitem__`` was seen on a fuzzed checkpoint) instead of
raising an error, so a digest stored *inside* the HDF5 structure is checked too late. pdekit's
HDF5 files that it reads back (checkpoints, the reference cache) therefore start with a header
of ``HEADER_SIZE`` bytes in HDF5's user block, which the library leaves alone (the magic ends
in ``sha256=``, e.g. ``pdekit-checkpoint sha256=``)::

    <magic><64 hex digits>\\n\\0...\\0      (HEADER_SIZE bytes)
    <the HDF5 file, written with userblock_size=HEADER_SIZE>

The digest covers every byte after the header. A file is written with
``h5py.File(path, "w", userblock_size=HEADER_SIZE)``, closed, then :func:`seal` ed; a reader
calls :func:`header_state` on the first ``HEADER_SIZE`` bytes and opens the file with h5py only
if it says ``"sealed"``. A header-less HDF5 file (``"unsealed"``: the signature at offset 0) is
never parsed: nothing vouches for its bytes. A user who trusts one seals it with
:func:`seal_file` (``pdekit seal FILE``), which puts the header in front of its bytes unparsed.

Writers put their bytes in a temporary file beside the target and rename it into place
(:func:`write_atomically`); temporary files of writers that were killed are removed by the next
write in that directory (:func:`remove_stale_temporaries`), never one of a live process.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

#: bytes before the HDF5 data (a power of two of at least 512, as HDF5 requires)
HEADER_SIZE = 512
#: the HDF5 format signature, at offset 0 of a file without a user block
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: what :func:`header_state` finds
SEALED = "sealed"  # the header's digest matches the bytes after it
UNSEALED = "unsealed"  # a plain HDF5 file (signature at offset 0): no header to check
FOREIGN = "foreign"  # neither the expected header nor an HDF5 signature
MISMATCH = "mismatch"  # the expected header, but its digest is not that of the bytes after it


def header(magic: bytes, hexdigest: str) -> bytes:
    """The ``HEADER_SIZE`` bytes of a header holding ``hexdigest``."""
    return (magic + hexdigest.encode("ascii") + b"\n").ljust(HEADER_SIZE, b"\0")


def body_digest(fh) -> str:
    """SHA-256 (hex) of an open binary file's bytes after the header."""
    fh.seek(HEADER_SIZE)
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def seal(path: str | os.PathLike, magic: bytes) -> None:
    """Write the header of a closed HDF5 file written with ``userblock_size=HEADER_SIZE``."""
    with open(path, "r+b") as fh:
        hexdigest = body_digest(fh)
        fh.seek(0)
        fh.write(header(magic, hexdigest))


def header_state(head: bytes, digest_of_body: Callable[[], str], magic: bytes) -> str:
    """Classify a file by its first ``HEADER_SIZE`` bytes (``head``) without parsing it.

    ``digest_of_body`` computes the SHA-256 of the bytes after the header; it is called only
    when ``head`` is a header of this ``magic``. Returns SEALED, UNSEALED, FOREIGN or MISMATCH.
    """
    if head[: len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
        return UNSEALED
    if not head.startswith(magic):
        return FOREIGN
    stored = head[len(magic) : len(magic) + 64].decode("ascii", "replace")
    if len(head) < HEADER_SIZE or stored != digest_of_body():
        return MISMATCH
    return SEALED


# -- sealing a trusted header-less file --------------------------------------------------------
#: the header magic of checkpoints (:mod:`pdekit.checkpoints.hdf5`)
CHECKPOINT_MAGIC = b"pdekit-checkpoint sha256="


def seal_file(path: str | os.PathLike, magic: bytes = CHECKPOINT_MAGIC) -> Path:
    """Give a trusted header-less HDF5 file (signature at offset 0) pdekit's header, in place.

    pdekit never parses a header-less HDF5 file, because nothing vouches for its bytes and a
    damaged one can crash libhdf5. This is the step by which a user vouches for one: the
    header (``magic`` and the SHA-256 of the file's bytes) is put in front of the unchanged
    HDF5 bytes, which stay valid because HDF5 addresses are relative to the superblock. The
    file is not parsed; the result replaces it atomically. A file already sealed with
    ``magic`` is left as it is. Command line: ``pdekit seal FILE``.

    Raises CheckpointError for a file that is neither (a damaged sealed file, random bytes),
    OSError subclass :class:`~pdekit.errors.OutputError` when the result cannot be written.
    """
    from pdekit.errors import CheckpointError

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_SIZE)
            state = header_state(head, lambda: body_digest(fh), magic)
            if state == UNSEALED:
                fh.seek(0)
                h = hashlib.sha256()
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {os_error_text(exc)}") from None
    if state == SEALED:
        return path
    if state != UNSEALED:
        raise CheckpointError(
            f"{path} is not a header-less HDF5 file (it does not start with the HDF5 signature)"
            + (" but a damaged or edited sealed file" if state == MISMATCH else "")
            + "; only a plain HDF5 file can be sealed"
        )

    def chunks():
        yield header(magic, h.hexdigest())
        with open(path, "rb") as src:
            yield from iter(lambda: src.read(1 << 20), b"")

    write_atomically(path, chunks(), what="sealed file")
    return path


# -- writing files atomically ------------------------------------------------------------------
#: name of a writer's temporary file: ``.<final name>.tmp-<writer's PID>``
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")


def temporary_name(path: Path) -> Path:
    """Where a writer of ``path`` puts its bytes before renaming them into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def os_error_text(exc: OSError) -> str:
    """A one-line reason for an OSError, naming a full disk (ENOSPC) or quota (EDQUOT)."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device (ENOSPC)"
    if exc.errno == getattr(errno, "EDQUOT", None):
        return "disk quota exceeded (EDQUOT)"
    text = exc.strerror or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0]


def write_atomically(path: Path, chunks: Iterable[bytes], what: str = "file") -> Path:
    """Write ``chunks`` to ``path`` through :func:`temporary_name`: written, fsynced, renamed.

    A failure (a full disk, a killed process) never leaves a partial file under ``path``; the
    temporary file is removed on any error (a SIGKILL leaves it, and the next write in the
    directory removes it: :func:`remove_stale_temporaries`). Raises
    :class:`~pdekit.errors.OutputError` naming ``path`` and the reason (ENOSPC spelled out).
    """
    from pdekit.errors import OutputError

    path = Path(path)
    remove_stale_temporaries(path.parent)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {what} {path}: {os_error_text(exc)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def write_sealed_hdf5(path: Path, magic: bytes, fill: Callable, what: str = "file") -> Path:
    """Build an HDF5 file in memory (``fill(h5py_file)`` writes its content), put the header of
    ``magic`` and the digest of the rest in its user block, and write it with
    :func:`write_atomically`: the one way pdekit writes a sealed HDF5 file other than a checkpoint
    (the reference cache, datasets). libhdf5 never writes to the disk, so a full disk is one
    :class:`~pdekit.errors.OutputError` and leaves nothing behind."""
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=HEADER_SIZE) as f:
        fill(f)
    body = buf.getbuffer()[HEADER_SIZE:]
    head = header(magic, hashlib.sha256(body).hexdigest())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, (head, body), what=what)


def pid_alive(pid: int) -> bool:
    """Whether a process of this id exists (this process included; unknown counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or a number no process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<PID>`` files of ``directory`` whose writer is dead (killed during
    a write); a live process's temporary file is never touched. Returns the deleted paths."""
    removed: list[Path] = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.match(p.name)
        if m and not pid_alive(int(m.group(1))) and p.is_file() and not p.is_symlink():
            try:
                p.unlink()
            except OSError:
                continue
            removed.append(p)
    return removed
