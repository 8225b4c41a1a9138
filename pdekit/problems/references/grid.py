"""References given on a tensor grid, evaluated anywhere by local polynomial interpolation."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from pdekit.problems.base import Reference, _as_points

#: nodes of the local Lagrange stencil per interpolation order
_STENCIL = {1: 2, 3: 4}


class GridReference(Reference):
    """A reference solution known on the nodes of a tensor grid.

    Called on points (n, len(coordinates)) it returns ``{field: (n,)}`` by tensor-product local
    Lagrange interpolation along each axis:

    * ``order=3`` (default): 4-point cubic stencil, error O(h^4) times the fourth derivative for
      smooth data (interpolation of a smooth field on an h-grid; the test measures the order);
      continuous but not C^1 across nodes, and it can overshoot near fronts;
    * ``order=1``: multilinear, error O(h^2), no overshoot (for fields with fronts or kinks).

    Non-periodic axes may be non-uniform (strictly increasing); near their ends the stencil is
    shifted inwards (one-sided, same order). Points outside a non-periodic axis raise ValueError.
    Periodic axes must be uniform with the duplicate endpoint left out
    (:func:`~pdekit.geometries.uniform_axis` with ``periodic=True``); their period is
    ``len(axis) * spacing`` and any coordinate value is wrapped into it.

    Parameters
    ----------
    axes:
        Coordinate name -> 1D node array, in the problem's coordinate order.
    values:
        Field name -> array of shape ``tuple(len(a) for a in axes.values())`` ('ij' indexing).
    periodic:
        One flag per coordinate.
    description, accuracy, source:
        As for every :class:`~pdekit.problems.base.Reference`; ``accuracy`` should state the
        discretisation error of the data and, where it dominates, the interpolation error.
    order:
        1 or 3, see above.
    """

    source = "computed"

    def __init__(
        self,
        axes: Mapping[str, Sequence[float]],
        values: Mapping[str, np.ndarray],
        periodic: Sequence[bool],
        *,
        description: str,
        accuracy: str,
        source: str = "computed",
        order: int = 3,
    ):
        self.axes = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in axes.items()}
        self.coordinates = tuple(self.axes)
        self.periodic = tuple(bool(p) for p in periodic)
        if len(self.periodic) != len(self.axes):
            raise ValueError(f"need {len(self.axes)} periodic flags; got {len(self.periodic)}")
        if order not in _STENCIL:
            raise ValueError(f"interpolation order must be one of {sorted(_STENCIL)}; got {order}")
        self.order = order
        self.shape = tuple(a.size for a in self.axes.values())
        for name, a in self.axes.items():
            _check_axis(name, a, self.periodic[self.coordinates.index(name)], _STENCIL[order])
        self.values = {k: np.asarray(v, dtype=float) for k, v in values.items()}
        for k, v in self.values.items():
            if v.shape != self.shape:
                raise ValueError(f"field {k!r} has shape {v.shape}; the grid is {self.shape}")
        self.fields = tuple(self.values)
        self.description = description
        self.accuracy = accuracy
        self.source = source

    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        pts = _as_points(points, len(self.coordinates))
        stencils = [
            _axis_stencil(a, p, pts[:, i], self.order, c)
            for i, (c, a, p) in enumerate(zip(self.coordinates, self.axes.values(), self.periodic))
        ]
        m = _STENCIL[self.order]
        out = {k: np.zeros(len(pts)) for k in self.values}
        for combo in itertools.product(range(m), repeat=len(stencils)):
            weight = np.ones(len(pts))
            index = []
            for (idx, w), j in zip(stencils, combo):
                weight = weight * w[:, j]
                index.append(idx[:, j])
            index_t = tuple(index)
            for k, v in self.values.items():
                out[k] += weight * v[index_t]
        return out

    def __repr__(self) -> str:
        grid = " x ".join(f"{c}:{n}" for c, n in zip(self.coordinates, self.shape))
        return f"GridReference({grid}, fields={self.fields})"


# -- helpers ---------------------------------------------------------------------------------------
def _check_axis(name: str, a: np.ndarray, periodic: bool, m: int) -> None:
    if a.size < m or not np.all(np.isfinite(a)):
        raise ValueError(f"axis {name!r} needs at least {m} finite nodes; got {a.size}")
    d = np.diff(a)
    if np.any(d <= 0):
        raise ValueError(f"axis {name!r} must be strictly increasing")
    if periodic and np.ptp(d) > 1e-9 * d.mean():
        raise ValueError(f"periodic axis {name!r} must be uniform")


def _axis_stencil(
    a: np.ndarray, periodic: bool, x: np.ndarray, order: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Node indices (n, m) and Lagrange weights (n, m) of the points ``x`` on axis ``a``."""
    m = _STENCIL[order]
    n = a.size
    if periodic:
        h = (a[-1] - a[0]) / (n - 1)
        s = (x - a[0]) / h
        i = np.floor(s).astype(np.int64)
        r = s - i  # in [0, 1): position in the cell [i, i + 1], in units of h
        offsets = np.arange(m) - (m // 2 - 1)  # cubic: -1, 0, 1, 2; linear: 0, 1
        idx = np.mod(i[:, None] + offsets, n)
        nodes = offsets.astype(float)[None, :]
        return idx, _lagrange(r[:, None], np.broadcast_to(nodes, idx.shape))
    span = a[-1] - a[0]
    tol = 1e-10 * span
    if np.any(x < a[0] - tol) or np.any(x > a[-1] + tol):
        bad = x[(x < a[0] - tol) | (x > a[-1] + tol)][0]
        raise ValueError(
            f"coordinate {name}={bad} lies outside the reference grid [{a[0]}, {a[-1]}]"
        )
    x = np.clip(x, a[0], a[-1])
    i = np.clip(np.searchsorted(a, x, side="right") - 1, 0, n - 2)
    start = np.clip(i - (m // 2 - 1), 0, n - m)
    idx = start[:, None] + np.arange(m)
    # local coordinates relative to the stencil keep the weights well conditioned
    h = a[idx[:, 1]] - a[idx[:, 0]]
    nodes = (a[idx] - a[idx[:, :1]]) / h[:, None]
    return idx, _lagrange(((x - a[idx[:, 0]]) / h)[:, None], nodes)


def _lagrange(x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Lagrange basis weights at x (n, 1) for the nodes (n, m): w[:, k] = prod (x-X_j)/(X_k-X_j)."""
    m = nodes.shape[1]
    w = np.ones(nodes.shape)
    for k in range(m):
        for j in range(m):
            if j != k:
                w[:, k] *= (x[:, 0] - nodes[:, j]) / (nodes[:, k] - nodes[:, j])
    return w
