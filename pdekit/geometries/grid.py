"""Grids: tensor products of coordinate axes (where solutions are evaluated, scored and written)
and uniform cell grids with centred, nodal and staggered (MAC) locations for grid solvers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pdekit.errors import ParameterError, UnknownNameError


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


class Grid:
    """A uniform grid of ``n[k]`` cells along each axis of the box [lo, hi], for grid solvers.

    Values live at one of these *locations* (the staggered marker-and-cell, MAC, arrangement of
    Harlow & Welch 1965 puts velocity component k on the faces normal to axis k and pressure at
    cell centres):

    * ``"center"``: cell centres, lo + (i + 1/2) h, i = 0 .. n - 1;
    * ``"node"``: cell vertices, lo + i h, i = 0 .. n (i = 0 .. n - 1 on a periodic axis, where
      hi is the same point as lo);
    * ``"face_x"``, ``"face_y"``, ``"face_z"``: centres of the faces normal to that axis, i.e.
      node positions along it and centre positions along the others.

    Arrays of values have the shape :meth:`shape_of` and 'ij' indexing (axis k of the array runs
    along ``coordinates[k]``), the convention of :class:`TensorGrid`; :meth:`points` lists
    their positions in the same (C) order.
    """

    LOCATIONS = ("center", "node", "face_x", "face_y", "face_z")

    def __init__(
        self,
        lo: Sequence[float],
        hi: Sequence[float],
        n: Sequence[int] | int,
        periodic: Sequence[bool] | bool = False,
        coordinates: Sequence[str] | None = None,
    ):
        lo = np.asarray(lo, dtype=float).reshape(-1)
        hi = np.asarray(hi, dtype=float).reshape(-1)
        dim = lo.size
        if hi.size != dim or dim not in (1, 2, 3):
            raise ParameterError(f"lo and hi must be 1D, 2D or 3D points; got {lo}, {hi}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
            raise ParameterError(f"need finite lo < hi on every axis; got lo={lo}, hi={hi}")
        n = np.broadcast_to(np.asarray(n), (dim,))
        if not np.all(n == np.round(n)) or np.any(n < 1):
            raise ParameterError(f"cells per axis n must be integers >= 1; got {n.tolist()}")
        per = np.broadcast_to(np.asarray(periodic, dtype=bool), (dim,))
        names = tuple(coordinates) if coordinates is not None else tuple("xyz"[:dim])
        if len(names) != dim or len(set(names)) != dim:
            raise ParameterError(f"need {dim} distinct coordinate names; got {names}")
        self.dim, self.lo, self.hi = dim, lo, hi
        self.n = tuple(int(k) for k in n)
        self.periodic = tuple(bool(p) for p in per)
        self.coordinates = names

    @classmethod
    def on(cls, box, n: Sequence[int] | int, coordinates: Sequence[str] | None = None) -> Grid:
        """The grid of ``n`` cells per axis over a box geometry (its bounds and periodic axes)."""
        lo, hi = box.bounds
        return cls(lo, hi, n, box.periodic, coordinates)

    # -- geometry ------------------------------------------------------------------------------
    @property
    def spacing(self) -> np.ndarray:
        """Cell size h along each axis: (hi - lo) / n."""
        return (self.hi - self.lo) / np.array(self.n)

    @property
    def shape(self) -> tuple[int, ...]:
        """Cells per axis (the shape of cell-centred arrays)."""
        return self.n

    @property
    def bounds(self) -> np.ndarray:
        return np.stack([self.lo, self.hi])

    def cell_volume(self) -> float:
        return float(np.prod(self.spacing))

    def volume(self) -> float:
        return float(np.prod(self.hi - self.lo))

    def axis(self, k: int, location: str = "center") -> np.ndarray:
        """1D coordinates along axis ``k`` of the values at ``location``."""
        on_nodes = location == "node" or location == f"face_{'xyz'[k]}"
        self._check_location(location)
        h, n = self.spacing[k], self.n[k]
        if on_nodes:
            count = n if self.periodic[k] else n + 1
            return self.lo[k] + h * np.arange(count)
        return self.lo[k] + h * (np.arange(n) + 0.5)

    def axes(self, location: str = "center") -> dict[str, np.ndarray]:
        """``{coordinate: 1D coordinates}`` of the values at ``location``."""
        return {c: self.axis(k, location) for k, c in enumerate(self.coordinates)}

    def shape_of(self, location: str = "center") -> tuple[int, ...]:
        return tuple(a.size for a in self.axes(location).values())

    def points(self, location: str = "center") -> np.ndarray:
        """(N, dim) positions of the values at ``location``, in C order of :meth:`shape_of`."""
        return self.tensor(location).points()

    def tensor(self, location: str = "center") -> TensorGrid:
        """The positions at ``location`` as a :class:`TensorGrid` (for evaluating solutions)."""
        return TensorGrid(self.axes(location))

    def face_to_center(self, values: np.ndarray, k: int) -> np.ndarray:
        """Average values on the faces normal to axis ``k`` onto cell centres (second order;
        exact for fields linear along axis k). Turns MAC velocities into a centred vector."""
        values = np.asarray(values, dtype=float)
        expected = self.shape_of(f"face_{'xyz'[k]}")
        if values.shape != expected:
            raise ParameterError(
                f"face_{'xyz'[k]} values need shape {expected}; got {values.shape}"
            )
        upper = np.roll(values, -1, axis=k) if self.periodic[k] else np.delete(values, 0, axis=k)
        lower = values if self.periodic[k] else np.delete(values, -1, axis=k)
        return 0.5 * (lower + upper)

    # -- pyvista -------------------------------------------------------------------------------
    def to_pyvista(self, point_data=None, cell_data=None):
        """A ``pyvista.ImageData`` covering the whole box, with optional data.

        ``point_data``: ``{name: array of shape_of("node")}`` (with trailing components, e.g.
        (..., 3) for vectors); periodic axes are closed by repeating the first slice at hi.
        ``cell_data``: ``{name: array of shape_of("center")}``. 2D grids lie in z = 0.
        """
        import pyvista as pv

        dims = [k + 1 for k in self.n] + [1] * (3 - self.dim)
        origin = list(self.lo) + [0.0] * (3 - self.dim)
        spacing = list(self.spacing) + [1.0] * (3 - self.dim)
        image = pv.ImageData(dimensions=dims, origin=origin, spacing=spacing)
        for name, values in (point_data or {}).items():
            image.point_data[name] = self._flatten(self._close_periodic(values), "node")
        for name, values in (cell_data or {}).items():
            image.cell_data[name] = self._flatten(values, "center")
        return image

    def _close_periodic(self, values):
        values = np.asarray(values)
        self._check_shape(values, "node")
        for k in range(self.dim):
            if self.periodic[k]:
                values = np.concatenate([values, np.take(values, [0], axis=k)], axis=k)
        return values

    def _flatten(self, values, location):
        """VTK order (x fastest), trailing components kept."""
        values = np.asarray(values)
        if location == "center":
            self._check_shape(values, location)
        axes = list(range(self.dim))
        reversed_axes = np.moveaxis(values, axes, axes[::-1])  # (..., y, x): x runs fastest
        return reversed_axes.reshape((-1,) + values.shape[self.dim :])

    def _check_shape(self, values, location):
        expected = self.shape_of(location)
        if values.shape[: self.dim] != expected:
            raise ParameterError(
                f"{location} values need leading shape {expected}; got {values.shape}"
            )

    def _check_location(self, location):
        valid = self.LOCATIONS[: 2 + self.dim]
        if location not in valid:
            raise UnknownNameError("grid location", location, valid)

    def __repr__(self) -> str:
        per = f", periodic={self.periodic}" if any(self.periodic) else ""
        return f"Grid(lo={self.lo.tolist()}, hi={self.hi.tolist()}, n={list(self.n)}{per})"
