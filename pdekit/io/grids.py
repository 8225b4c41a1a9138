"""Helpers shared by the writers: split an evaluation grid into space and time, gather arrays."""

from __future__ import annotations

import numpy as np

from pdekit.geometries.grid import TensorGrid


def space_time(grid: TensorGrid) -> tuple[TensorGrid, np.ndarray | None]:
    """The spatial part of ``grid`` and its times (None for a steady problem)."""
    if "t" in grid.axes:
        if grid.coordinates[-1] != "t":
            raise ValueError("time must be the last coordinate")
        return grid.spatial(), grid.axes["t"]
    return grid, None


def solution_arrays(solution, grid: TensorGrid) -> dict[str, np.ndarray]:
    """Prediction, reference and pointwise error per field, grid-shaped.

    Names: ``{field}``, ``{field}_reference``, ``{field}_error`` (prediction minus reference).
    The reference is left out when the problem has none.
    """
    pred = solution.on(grid)
    out = dict(pred)
    try:
        ref = solution.reference_on(grid)
    except NotImplementedError:
        ref = {}
    for k, r in ref.items():
        if k in pred:
            out[f"{k}_reference"] = r
            out[f"{k}_error"] = pred[k] - r
    return out
