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
    The reference is left out when the problem has none. A field the problem fixes only up to
    a constant (``problem.gauge_fields``) is written shifted, at each time, to the reference's
    mean over the grid, as ``Solution.errors`` compares it.
    """
    flat = point_arrays(solution, grid.points(), gauge=True)
    return {k: v.reshape(grid.shape) for k, v in flat.items()}


def point_arrays(solution, points: np.ndarray, gauge: bool = False) -> dict[str, np.ndarray]:
    """Prediction, reference and pointwise error per field at points (n, len(coordinates)).

    Names as in :func:`solution_arrays`; each array has shape (n,). ``gauge``: the points are
    a grid, shift gauge fields to the reference's constant (``Solution.gauged``).
    """
    out = dict(solution(points))
    try:
        ref = solution.problem.reference()(points)
    except NotImplementedError:
        ref = {}
    if gauge and ref:
        out = solution.gauged(out, ref, points)
    for k, r in ref.items():
        if k in out:
            r = np.asarray(r).reshape(-1)
            out[f"{k}_reference"] = r
            out[f"{k}_error"] = out[k] - r
    return out
