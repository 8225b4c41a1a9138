"""HDF5 checkpoints: save, load, verify (never pickle)."""

from pdekit.checkpoints.hdf5 import Checkpoint, load_checkpoint, save_checkpoint

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]
