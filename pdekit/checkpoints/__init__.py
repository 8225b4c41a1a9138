"""HDF5 checkpoints: save, load, verify (never pickle); run directories and resuming."""

from pdekit.checkpoints.hdf5 import (
    Checkpoint,
    load_checkpoint,
    load_checkpoint_bytes,
    save_checkpoint,
)
from pdekit.checkpoints.rundir import (
    checkpoint_name,
    ensure_writable_dir,
    find_resumable,
    rotate,
)
from pdekit.checkpoints.sealed import remove_stale_temporaries

__all__ = [
    "Checkpoint",
    "checkpoint_name",
    "ensure_writable_dir",
    "find_resumable",
    "load_checkpoint",
    "load_checkpoint_bytes",
    "remove_stale_temporaries",
    "rotate",
    "save_checkpoint",
]
