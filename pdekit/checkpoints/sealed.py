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
if it says ``"sealed"`` (or, where the caller accepts files written before the header existed,
``"unsealed"``: an HDF5 signature at offset 0).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

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
