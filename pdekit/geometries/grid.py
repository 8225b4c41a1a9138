"""Tensor-product grids of coordinate axes: where solutions are evaluated, scored and written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class TensorGrid:
    """The tensor product of 1D coordinate axes, in a fixed coordinate order.

    ``points()`` returns an (n, d) array in the order of ``coordinates`` with 'ij' indexing, so
    ``values.reshape(grid.shape)`` puts axis k of the array along ``coordinates[k]``.
    """

    def __init__(self, axes: Mapping[str, Sequence[float]]):
        self.axes = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in axes.items()}
        self.coordinates = tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes.values())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def points(self) -> np.ndarray:
        mesh = np.meshgrid(*self.axes.values(), indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1)

    def spatial(self) -> TensorGrid:
        """The grid without its time axis ``"t"`` (if any)."""
        return TensorGrid({k: v for k, v in self.axes.items() if k != "t"})

    def __repr__(self) -> str:
        return "TensorGrid(" + ", ".join(f"{k}: {v.size}" for k, v in self.axes.items()) + ")"


def uniform_axis(lo: float, hi: float, n: int, periodic: bool = False) -> np.ndarray:
    """``n`` equispaced values on [lo, hi]; a periodic axis leaves out the duplicate endpoint hi."""
    if periodic:
        return lo + (hi - lo) * np.arange(n) / n
    return np.linspace(lo, hi, n)
