"""Axis-aligned primitives: interval, rectangle, box (any dimension, periodic axes allowed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries.csg import CSGOperators
from pdekit.geometries.sampling import split_counts, unit_samples

_AXES = "xyz"


class Hyperrectangle(CSGOperators):
    """The box [lo_0, hi_0] x ... x [lo_{d-1}, hi_{d-1}].

    Boundary tags are ``"{axis}min"`` / ``"{axis}max"`` for each non-periodic axis
    (``"xmin"``, ``"ymax"``...), with the aliases ``"left"``/``"right"`` (x) and
    ``"bottom"``/``"top"`` (y in 2D, z in 3D). Periodic axes have no boundary. Non-periodic
    boxes take part in constructive solid geometry (:mod:`pdekit.geometries.csg`):
    ``Rectangle(...) - Disk(...)``.
    """

    convex = True

    def __init__(self, lo: Sequence[float], hi: Sequence[float], periodic: Sequence[bool] = ()):
        lo = np.asarray(lo, dtype=float).reshape(-1)
        hi = np.asarray(hi, dtype=float).reshape(-1)
        if lo.shape != hi.shape or lo.size == 0:
            raise ParameterError(
                f"lower and upper corners must have the same length; got {lo}, {hi}"
            )
        if np.any(hi <= lo) or not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)):
            raise ParameterError(f"need finite lo < hi on every axis; got lo={lo}, hi={hi}")
        self.dim = lo.size
        self.lo, self.hi = lo, hi
        per = tuple(bool(p) for p in periodic) or (False,) * self.dim
        if len(per) != self.dim:
            raise ParameterError(f"periodic needs {self.dim} flags; got {len(per)}")
        self._periodic = per
        self._tags: dict[str, tuple[int, int]] = {}
        for axis in range(self.dim):
            if not per[axis]:
                self._tags[f"{_AXES[axis]}min"] = (axis, -1)
                self._tags[f"{_AXES[axis]}max"] = (axis, +1)
        self._aliases = {"left": "xmin", "right": "xmax"}
        if self.dim >= 2:
            top_axis = _AXES[self.dim - 1]
            self._aliases.update({"bottom": f"{top_axis}min", "top": f"{top_axis}max"})

    # -- protocol ------------------------------------------------------------------------------
    @property
    def bounds(self) -> np.ndarray:
        return np.stack([self.lo, self.hi])

    @property
    def periodic(self) -> tuple[bool, ...]:
        return self._periodic

    @property
    def boundary_tags(self) -> tuple[str, ...]:
        return tuple(self._tags)

    def volume(self) -> float:
        return float(np.prod(self.hi - self.lo))

    def contains(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        eps = 1e-12 * (self.hi - self.lo)
        return np.all((x >= self.lo - eps) & (x <= self.hi + eps), axis=1)

    def sample_interior(self, n: int, rng=None, method: str = "sobol") -> np.ndarray:
        return self.lo + (self.hi - self.lo) * unit_samples(n, self.dim, method, rng)

    def facet(self, tag: str) -> tuple[int, int]:
        """(axis, side) of a boundary tag: side -1 at the lower bound, +1 at the upper."""
        return self._tags[self._resolve(tag)]

    def facet_area(self, tag: str) -> float:
        axis, _ = self._tags[self._resolve(tag)]
        span = np.delete(self.hi - self.lo, axis)
        return float(np.prod(span)) if span.size else 1.0

    def sample_boundary(
        self, n: int, tag: str | None = None, rng=None, method: str = "sobol"
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(rng)
        tags = [self._resolve(tag)] if tag is not None else list(self._tags)
        if not tags:
            raise ParameterError("this domain is periodic in every direction: it has no boundary")
        areas = np.array([self.facet_area(t) for t in tags])
        counts = split_counts(n, areas / areas.sum(), rng)
        pts, nrm = [], []
        for t, k in zip(tags, counts):
            axis, side = self._tags[t]
            u = unit_samples(k, self.dim, method, rng)
            p = self.lo + (self.hi - self.lo) * u
            p[:, axis] = self.hi[axis] if side > 0 else self.lo[axis]
            normal = np.zeros((k, self.dim))
            normal[:, axis] = side
            pts.append(p)
            nrm.append(normal)
        return np.concatenate(pts), np.concatenate(nrm)

    def boundary_area(self, tag: str | None = None) -> float:
        """Total length/area of the boundary, or of one face (``"xmin"``, ``"left"``...)."""
        tags = list(self._tags) if tag is None else [tag]
        return float(sum(self.facet_area(t) for t in tags))

    def signed_distance(self, x: np.ndarray) -> np.ndarray:
        """Exact Euclidean signed distance to the box surface (negative inside)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        q = np.abs(x - (self.lo + self.hi) / 2) - (self.hi - self.lo) / 2
        return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)

    def boundary_nodes(self, h: float, tag: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nodes of a grid of spacing about ``h`` on each face (corners and edges included),
        and the faces' outward normals."""
        tags = list(self._tags) if tag is None else [self._resolve(tag)]
        pts, nrm = [], []
        for t in tags:
            axis, side = self._tags[t]
            axes = [
                np.linspace(lo, hi, max(int(np.ceil((hi - lo) / h)), 1) + 1)
                for lo, hi in zip(self.lo, self.hi)
            ]
            axes[axis] = np.array([self.hi[axis] if side > 0 else self.lo[axis]])
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dim)
            normal = np.zeros((len(grid), self.dim))
            normal[:, axis] = side
            pts.append(grid)
            nrm.append(normal)
        return np.concatenate(pts), np.concatenate(nrm)

    def mesh(self, h: float | None = None):
        """A structured quad (2D) or hexahedral (3D) :class:`~pdekit.geometries.mesh.MeshGeometry`
        of spacing about ``h`` (default: the longest side / 50), faces tagged as here."""
        from pdekit.geometries.meshing import box_mesh

        return box_mesh(self, h)

    def to_pyvista(self, h: float | None = None):
        """The box's structured mesh (:meth:`mesh`) as a ``pyvista.UnstructuredGrid``."""
        return self.mesh(h).to_pyvista()

    # -- helpers -------------------------------------------------------------------------------
    def _resolve(self, tag: str) -> str:
        name = self._aliases.get(tag, tag)
        if name not in self._tags:
            raise UnknownNameError(
                "boundary tag",
                tag,
                list(self._tags) + [a for a, t in self._aliases.items() if t in self._tags],
            )
        return name

    def __repr__(self) -> str:
        per = f", periodic={self._periodic}" if any(self._periodic) else ""
        return f"{type(self).__name__}(lo={self.lo.tolist()}, hi={self.hi.tolist()}{per})"


class Interval(Hyperrectangle):
    """The interval [a, b]; ``periodic=True`` identifies a and b."""

    def __init__(self, a: float, b: float, periodic: bool = False):
        super().__init__([a], [b], (periodic,))


class Rectangle(Hyperrectangle):
    """The rectangle [x0, x1] x [y0, y1]."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float], periodic: Sequence[bool] = ()):
        if len(lo) != 2 or len(hi) != 2:
            raise ParameterError("a Rectangle needs 2D corners")
        super().__init__(lo, hi, periodic)


class Box(Hyperrectangle):
    """The box [x0, x1] x [y0, y1] x [z0, z1]."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float], periodic: Sequence[bool] = ()):
        if len(lo) != 3 or len(hi) != 3:
            raise ParameterError("a Box needs 3D corners")
        super().__init__(lo, hi, periodic)
