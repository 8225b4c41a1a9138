"""Finite differences on uniform grids: cell-centred, node-centred and staggered (MAC) fields.

Every operator here is a pure function of a tensor and a few grid facts (spacing, where the
samples sit, the boundary); :class:`StencilFields` composes them behind the fields accessor so a
problem's pointwise residual runs unchanged on gridded data.

Grid conventions, per axis of ``n`` cells of width ``h`` starting at ``origin``:

* a ``"cell"``-located field has samples at cell centres ``origin + (i + 1/2) h``, i < n;
* a ``"node"``-located field has samples on the cell faces ``origin + i h``, i <= n on a bounded
  axis (both end faces included, like ``numpy.linspace``) and i < n on a periodic one (the
  duplicate endpoint left out). A MAC grid in 2D stores ``p`` at (cell, cell), ``u`` at
  (node, cell) and ``v`` at (cell, node).

Derivatives use the symmetric stencils of Fornberg (1988), "Generation of finite difference
formulas on arbitrarily spaced grids", Math. Comp. 51: central stencils of order 2 or 4 between
co-located samples and the compact half-offset stencils between staggered ones.  Near a
non-periodic boundary the stencil reads ghost samples that are extrapolated by the polynomial of
degree ``order + 1`` through the nearest interior samples and the boundary condition (the
boundary value for Dirichlet, the outward normal derivative for Neumann, the boundary value
that satisfies ``a u + b du/dn = g`` for Robin (:func:`robin_boundary_value`), nothing for
``"free"``). The ghost error is O(h^(order+2)), so first and second derivatives keep the
declared order up to the boundary, and the operator of order p for the k-th derivative (k = 0:
interpolation between staggered locations) is exact on polynomials of degree p + k - 1 everywhere.

All operators are sums of shifted slices of the input, so they are differentiable in torch,
keep dtype and device, and accept any number of leading batch dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from pdekit.core.fields import Fields, Key, Spec
from pdekit.errors import ParameterError

ORDERS = (2, 4)
LOCATIONS = ("cell", "node")
SIDE_KINDS = ("free", "dirichlet", "neumann", "robin")
_OFFSET = {"cell": 0.5, "node": 0.0}  # sample position of index 0, in cells from the origin


# -- boundary conditions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """The condition at one end of a non-periodic axis.

    kind:
        ``"free"`` (no data: one-sided extrapolation from the interior), ``"dirichlet"`` (the
        field's value on the boundary face), ``"neumann"`` (its outward normal derivative) or
        ``"robin"`` (``a * value + b * outward normal derivative``).
    value:
        A number, or a tensor broadcastable to the field's boundary slice (the field's shape
        without this axis, batch dimensions included).
    a, b:
        The Robin coefficients, numbers or tensors like ``value`` (``"robin"`` only).
    """

    kind: str = "free"
    value: Any = 0.0
    a: Any = 1.0
    b: Any = 0.0

    def __post_init__(self):
        if self.kind not in SIDE_KINDS:
            raise ParameterError(
                f"boundary side kind must be one of {list(SIDE_KINDS)}; got {self.kind!r}"
            )


@dataclass(frozen=True)
class Boundary:
    """The boundary treatment of one grid axis: periodic, or a :class:`Side` at each end."""

    lo: Side = Side()
    hi: Side = Side()
    periodic: bool = False

    @classmethod
    def make_periodic(cls) -> Boundary:
        return cls(periodic=True)

    @classmethod
    def free(cls) -> Boundary:
        return cls(Side("free"), Side("free"))

    @classmethod
    def dirichlet(cls, lo: Any = 0.0, hi: Any = 0.0) -> Boundary:
        return cls(Side("dirichlet", lo), Side("dirichlet", hi))

    @classmethod
    def neumann(cls, lo: Any = 0.0, hi: Any = 0.0) -> Boundary:
        """Outward normal derivatives: ``lo`` = -du/dx at the lower end, ``hi`` = du/dx."""
        return cls(Side("neumann", lo), Side("neumann", hi))

    @classmethod
    def robin(cls, a: Any, b: Any, lo: Any = 0.0, hi: Any = 0.0) -> Boundary:
        """``a u + b du/dn = lo`` at the lower end and ``= hi`` at the upper (n outward)."""
        return cls(Side("robin", lo, a, b), Side("robin", hi, a, b))


BoundarySpec = Boundary | str
_NAMED = {
    "periodic": Boundary.make_periodic(),
    "free": Boundary.free(),
    "dirichlet": Boundary.dirichlet(),
    "neumann": Boundary.neumann(),
}


def as_boundary(spec: BoundarySpec) -> Boundary:
    """A :class:`Boundary` from itself or a name (homogeneous data for dirichlet/neumann)."""
    if isinstance(spec, Boundary):
        return spec
    if isinstance(spec, str) and spec in _NAMED:
        return _NAMED[spec]
    raise ParameterError(f"boundary must be a Boundary or one of {sorted(_NAMED)}; got {spec!r}")


def _free_like(b: Boundary) -> Boundary:
    return b if b.periodic else Boundary.free()


# -- stencil weights -----------------------------------------------------------------------------
@cache
def fd_weights(offsets: tuple[float, ...], k: int) -> tuple[float, ...]:
    """Weights w with sum_m w_m u(x + o_m h) = h^k u^(k)(x) + O(h^(len - k)) (Fornberg 1988).

    Solved from the moment conditions sum_m w_m o_m^j / j! = delta_jk in float64.
    """
    o = np.asarray(offsets, dtype=float)
    j = np.arange(o.size)
    fact = np.array([math.factorial(i) for i in j], dtype=float)
    vander = o[None, :] ** j[:, None] / fact[:, None]
    rhs = np.zeros(o.size)
    rhs[k] = 1.0
    return tuple(np.linalg.solve(vander, rhs).tolist())


def stencil_offsets(k: int, order: int, staggered: bool) -> tuple[float, ...]:
    """Sample offsets (in cells) of the symmetric stencil for the k-th derivative of ``order``.

    Co-located: value 1 point, first and second derivative ``order + 1`` points.  Staggered by
    half a cell: value and first derivative ``order`` points, second derivative ``order + 2``.
    """
    if not staggered:
        if k == 0:
            return (0.0,)
        m = order // 2
        return tuple(float(i) for i in range(-m, m + 1))
    npts = order if k < 2 else order + 2
    m = npts // 2
    return tuple(i + 0.5 for i in range(-m, m))


@cache
def ghost_weights(
    kind: str, location: str, order: int, nghost: int
) -> tuple[tuple[tuple[float, ...], ...], int, bool]:
    """Ghost-sample extrapolation at one boundary.

    Returns ``(W, ndata, uses_bc)``: ghost g (g = 1 is nearest the boundary) equals
    ``sum_j W[g-1][j] * data_j``, where the data are the first ``ndata`` interior samples
    counted inward from the boundary, followed (when ``uses_bc``) by the boundary datum:
    the value (Dirichlet) or ``-h * outward derivative`` (Neumann: the derivative along the
    inward coordinate, in cells).  The polynomial has degree ``order + 1``.
    """
    degree = order + 1
    s = _OFFSET[location]
    powers = np.arange(degree + 1)
    rows = []
    uses_bc = kind != "free"
    ndata = degree + 1 - int(uses_bc)
    for j in range(ndata):
        rows.append((j + s) ** powers.astype(float))
    if kind == "dirichlet":
        rows.append((0.0**powers).astype(float))
    elif kind == "neumann":
        rows.append(np.where(powers == 1, 1.0, 0.0))
    a = np.array(rows)
    ghosts = np.array([(s - g) ** powers.astype(float) for g in range(1, nghost + 1)])
    w = np.linalg.solve(a.T, ghosts.T).T  # ghost = w @ data
    return tuple(tuple(r) for r in w.tolist()), ndata, uses_bc


# -- one-axis operator ----------------------------------------------------------------------------
def _sample_count(ncells: int, location: str, periodic: bool) -> int:
    return ncells + 1 if (location == "node" and not periodic) else ncells


def _cells(nsamples: int, location: str, periodic: bool) -> int:
    return nsamples - 1 if (location == "node" and not periodic) else nsamples


def _bc_tensor(value: Any, like: torch.Tensor, dim: int) -> torch.Tensor:
    """Boundary data as a tensor that broadcasts against the boundary slice ``like`` (the
    field with axis ``dim`` of size 1). ``value`` is a number, a tensor with that size-1 axis
    (``like.ndim`` dimensions), or a tensor broadcastable to the slice without the axis
    (right-aligned: its trailing dimensions are the field's after ``dim``)."""
    v = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if v.ndim == 0:
        shape = list(like.shape)
        shape[dim] = 1
        return v.expand(shape)
    if v.ndim == like.ndim:
        return v
    after = like.ndim - 1 - dim  # dimensions of the field after the boundary axis
    return v.unsqueeze(v.ndim - after) if v.ndim > after else v


def _ghosts(
    u: torch.Tensor,
    dim: int,
    side: Side,
    location: str,
    order: int,
    h: float,
    nghost: int,
    lo: bool,
) -> torch.Tensor:
    """The ``nghost`` ghost samples beyond one end of axis ``dim``, ordered along the axis."""
    n = u.shape[dim]
    if side.kind == "robin":
        side = Side("dirichlet", robin_boundary_value(u, dim, side, location, order, h, lo))
    w, ndata, uses_bc = ghost_weights(side.kind, location, order, nghost)
    if n < ndata:
        raise ParameterError(
            f"axis of {n} samples is too short for order {order} near a {side.kind} boundary; "
            f"need at least {ndata}"
        )
    data = [u.narrow(dim, j if lo else n - 1 - j, 1) for j in range(ndata)]
    if uses_bc:
        datum = _bc_tensor(side.value, data[0], dim)
        if side.kind == "neumann":
            datum = -h * datum
        data.append(datum.expand_as(data[0]))
    ghosts = []
    for g in range(nghost):
        acc = sum(c * d for c, d in zip(w[g], data) if c != 0.0)
        ghosts.append(acc)
    if lo:
        ghosts = ghosts[::-1]  # farthest first
    return torch.cat(ghosts, dim=dim)


def _pad(
    u: torch.Tensor,
    dim: int,
    left: int,
    right: int,
    boundary: Boundary,
    location: str,
    order: int,
    h: float,
) -> torch.Tensor:
    if left == 0 and right == 0:
        return u
    n = u.shape[dim]
    if boundary.periodic:
        if max(left, right) > n:
            raise ParameterError(f"periodic axis of {n} samples is too short for the stencil")
        parts = [u.narrow(dim, n - left, left)] if left else []
        parts.append(u)
        if right:
            parts.append(u.narrow(dim, 0, right))
        return torch.cat(parts, dim=dim)
    parts = []
    if left:
        parts.append(_ghosts(u, dim, boundary.lo, location, order, h, left, lo=True))
    parts.append(u)
    if right:
        parts.append(_ghosts(u, dim, boundary.hi, location, order, h, right, lo=False))
    return torch.cat(parts, dim=dim)


@cache
def robin_weights(location: str, order: int) -> tuple[float, ...]:
    """Weights w (cells^-1) of the inward derivative at the boundary, ``p'(0) = w[0] u_b +
    sum_j w[j] d_j``, of the degree ``order + 1`` polynomial through the boundary value u_b
    and the ``order + 1`` nearest interior samples d_j (those after the end sample on nodes)."""
    first = 1 if location == "node" else 0
    offsets = (0.0,) + tuple(j + first + _OFFSET[location] for j in range(order + 1))
    return fd_weights(offsets, 1)


def robin_boundary_value(
    u: torch.Tensor, dim: int, side: Side, location: str, order: int, h: float, lo: bool
) -> torch.Tensor:
    """The boundary value u_b that satisfies ``a u_b + b du/dn = g`` (n outward) together with
    the polynomial of degree ``order + 1`` through u_b and the nearest interior samples.

    With s the inward coordinate in cells, du/dn = -p'(0) / h, so
    ``u_b = (g + (b/h) sum_j w_j d_j) / (a - (b/h) w_0)`` (:func:`robin_weights`); a, b and g
    may vary along the boundary. Error O(h^(order + 2)) in u_b, like the other ghost data.
    """
    n = u.shape[dim]
    w = robin_weights(location, order)
    first = 1 if location == "node" else 0
    need = order + 1 + first
    if n < need:
        raise ParameterError(
            f"axis of {n} samples is too short for order {order} near a robin boundary; "
            f"need at least {need}"
        )
    data = [u.narrow(dim, j + first if lo else n - 1 - j - first, 1) for j in range(order + 1)]
    like = data[0]
    g = _bc_tensor(side.value, like, dim)
    a = _bc_tensor(side.a, like, dim)
    b = _bc_tensor(side.b, like, dim) / h
    inner = sum(c * d for c, d in zip(w[1:], data))
    denom = a - b * w[0]
    if bool((denom == 0).any()):
        raise ParameterError("Robin condition is singular for this cell width (a = b w0 / h)")
    return ((g + b * inner) / denom).expand_as(like)


def _impose_node_dirichlet(u: torch.Tensor, dim: int, b: Boundary, order: int, h: float):
    """On a node-located field the end samples are the boundary values: Dirichlet data, and
    the Robin data's boundary value, are imposed on them."""
    n = u.shape[dim]
    first, mid, last = u.narrow(dim, 0, 1), u.narrow(dim, 1, n - 2), u.narrow(dim, n - 1, 1)
    changed = False
    for end, side in (("lo", b.lo), ("hi", b.hi)):
        if side.kind not in ("dirichlet", "robin"):
            continue
        like = first if end == "lo" else last
        if side.kind == "dirichlet":
            value = _bc_tensor(side.value, like, dim).expand_as(like)
        else:
            value = robin_boundary_value(u, dim, side, "node", order, h, end == "lo")
        if end == "lo":
            first = value
        else:
            last = value
        changed = True
    return torch.cat([first, mid, last], dim=dim) if changed else u


def _node_free(b: Boundary) -> Boundary:
    """On a node-located field Dirichlet (and Robin) data is imposed on the end samples, then
    extrapolated."""
    lo = Side("free") if b.lo.kind in ("dirichlet", "robin") else b.lo
    hi = Side("free") if b.hi.kind in ("dirichlet", "robin") else b.hi
    return Boundary(lo, hi)


def axis_derivative(
    u: torch.Tensor,
    dim: int,
    k: int,
    h: float,
    *,
    order: int = 2,
    boundary: BoundarySpec = "periodic",
    source: str = "cell",
    target: str | None = None,
) -> torch.Tensor:
    """k-th derivative (k = 0: interpolation) of ``u`` along tensor dimension ``dim``.

    Parameters
    ----------
    u:
        Samples, any shape; ``dim`` is the grid axis (negative indices count from the end).
    k:
        Derivative order 0, 1 or 2.
    h:
        Cell width.
    order:
        Accuracy order, 2 or 4.
    boundary:
        Periodic, or the two :class:`Side` conditions.
    source, target:
        Location of the input samples and of the output (``"cell"`` or ``"node"``);
        ``target`` defaults to ``source``.

    Returns
    -------
    Tensor of the target samples along ``dim`` (n cells -> n values at cells, n + 1 at nodes
    of a bounded axis, n at nodes of a periodic axis).
    """
    target = source if target is None else target
    if order not in ORDERS:
        raise ParameterError(f"stencil order must be one of {list(ORDERS)}; got {order!r}")
    if k not in (0, 1, 2):
        raise ParameterError(f"stencil derivative order must be 0, 1 or 2; got {k!r}")
    for name, loc in (("source", source), ("target", target)):
        if loc not in LOCATIONS:
            raise ParameterError(f"{name} location must be one of {list(LOCATIONS)}; got {loc!r}")
    b = as_boundary(boundary)
    if source == target and k == 0:
        return u
    dim = dim % u.ndim
    nsrc = u.shape[dim]
    ncells = _cells(nsrc, source, b.periodic)
    ndst = _sample_count(ncells, target, b.periodic)
    offsets = stencil_offsets(k, order, source != target)
    weights = fd_weights(offsets, k)
    shift = _OFFSET[target] - _OFFSET[source]
    starts = [round(shift + o) for o in offsets]
    left = max(0, -min(starts))
    right = max(0, ndst - 1 + max(starts) - (nsrc - 1))
    if not b.periodic and source == "node":  # Dirichlet data on nodes is the end sample itself
        u = _impose_node_dirichlet(u, dim, b, order, h)
        b = _node_free(b)
    up = _pad(u, dim, left, right, b, source, order, h)
    scale = 1.0 / h**k
    out = None
    for s, w in zip(starts, weights):
        if w == 0.0:
            continue
        term = (w * scale) * up.narrow(dim, s + left, ndst)
        out = term if out is None else out + term
    return out


# -- the fields accessor --------------------------------------------------------------------------
def per_axis(value: Any, naxes: int, what: str) -> list:
    """``value`` repeated per axis, or checked to have one entry per axis."""
    if isinstance(value, str | Boundary) or not isinstance(value, Sequence):
        return [value] * naxes
    if len(value) != naxes:
        raise ParameterError(f"{what} needs one entry per axis ({naxes}); got {len(value)}")
    return list(value)


class StencilFields(Fields):
    """Fields on a uniform grid, derivatives by finite-difference stencils.

    Parameters
    ----------
    values:
        Mapping field -> tensor of shape ``(*batch, *samples)``, one trailing dimension per
        coordinate (in the order of ``coordinates``); any leading dimensions are a batch.
    coordinates:
        Names of the grid axes, e.g. ``("x", "y")`` or ``("x", "t")``.
    spacing:
        Cell width h per axis (a number for all axes).
    origin:
        Lower end of each axis (the domain's lower bound; a number for all axes).
    order:
        Accuracy order of every stencil, 2 or 4.
    boundary:
        Per axis ``"periodic"``, ``"free"`` (one-sided, no data), ``"dirichlet"``/``"neumann"``
        (homogeneous) or a :class:`Boundary`; one spec for all axes, a sequence per axis, or a
        mapping field -> either of those (fields may have different conditions).
    location:
        Where each field's samples sit per axis, ``"cell"`` or ``"node"``: one for all, a
        sequence per axis, or a mapping field -> either (a MAC grid in 2D:
        ``{"u": ("node", "cell"), "v": ("cell", "node"), "p": "cell"}``).
    target:
        Where results are returned, per axis; default the common location of all fields, or
        cell centres when they differ.
    declared:
        The problem's derivative declaration; other requests raise
        :class:`~pdekit.core.fields.UndeclaredDerivativeError`.

    Notes
    -----
    Returns of ``f[...]``, ``f.d(...)`` and ``f.coord(...)`` are grid-shaped:
    ``(*batch, *target_shape)`` for fields and ``target_shape`` for coordinates (it broadcasts
    against the batch), so a pointwise residual runs unchanged; ``.reshape(-1)`` of an
    unbatched result follows the 'ij' point order of ``TensorGrid.points()``.

    A mixed derivative applies one axis at a time; the field's boundary data is used on the
    first axis and ``"free"`` extrapolation on later ones, which keeps the declared order.
    """

    def __init__(
        self,
        values: Mapping[str, torch.Tensor],
        coordinates: Sequence[str],
        spacing: float | Sequence[float],
        *,
        origin: float | Sequence[float] = 0.0,
        order: int = 2,
        boundary: Any = "periodic",
        location: Any = "cell",
        target: str | Sequence[str] | None = None,
        declared: Mapping[str, Iterable[Spec]] | None = None,
    ):
        super().__init__(coordinates, tuple(values), declared)
        d = len(self.coordinates)
        if order not in ORDERS:
            raise ParameterError(f"stencil order must be one of {list(ORDERS)}; got {order!r}")
        self.order = order
        self.spacing = [float(h) for h in per_axis(spacing, d, "spacing")]
        if any(not h > 0 for h in self.spacing):
            raise ParameterError(f"spacing must be positive; got {self.spacing}")
        self.origin = [float(o) for o in per_axis(origin, d, "origin")]
        self._values = {}
        self._bc: dict[str, list[Boundary]] = {}
        self._loc: dict[str, list[str]] = {}
        for name, v in values.items():
            if not isinstance(v, torch.Tensor) or v.ndim < d:
                raise ParameterError(
                    f"value of field {name!r} must be a tensor with at least {d} dimensions"
                )
            self._values[name] = v
            bspec = boundary[name] if isinstance(boundary, Mapping) else boundary
            self._bc[name] = [as_boundary(b) for b in per_axis(bspec, d, "boundary")]
            lspec = location[name] if isinstance(location, Mapping) else location
            locs = per_axis(lspec, d, "location")
            for loc in locs:
                if loc not in LOCATIONS:
                    raise ParameterError(f"location must be one of {list(LOCATIONS)}; got {loc!r}")
            self._loc[name] = locs
        self.periodic = [self._bc[self.fields[0]][a].periodic for a in range(d)]
        for name in self.fields:
            if [b.periodic for b in self._bc[name]] != self.periodic:
                raise ParameterError("all fields must agree on which axes are periodic")
        self.cells = self._count_cells()
        if target is None:
            locs = {tuple(v) for v in self._loc.values()}
            target = list(locs.pop()) if len(locs) == 1 else ["cell"] * d
        self.target = list(per_axis(target, d, "target"))
        self.shape = tuple(
            _sample_count(self.cells[a], self.target[a], self.periodic[a]) for a in range(d)
        )

    def _count_cells(self) -> list[int]:
        d = len(self.coordinates)
        cells = None
        for name, v in self._values.items():
            c = [
                _cells(v.shape[v.ndim - d + a], self._loc[name][a], self.periodic[a])
                for a in range(d)
            ]
            if cells is None:
                cells = c
            elif c != cells:
                raise ParameterError(
                    f"field {name!r} of shape {tuple(v.shape)} does not fit the grid of "
                    f"{cells} cells set by field {self.fields[0]!r}"
                )
        return cells

    def _apply(self, field: str, counts: Sequence[int]) -> torch.Tensor:
        u = self._values[field]
        d = len(self.coordinates)
        locs, bcs = self._loc[field], self._bc[field]
        axes = [a for a in range(d) if counts[a] > 0]
        axes += [a for a in range(d) if counts[a] == 0 and locs[a] != self.target[a]]
        for i, a in enumerate(axes):
            b = bcs[a] if i == 0 else _free_like(bcs[a])
            u = axis_derivative(
                u,
                u.ndim - d + a,
                counts[a],
                self.spacing[a],
                order=self.order,
                boundary=b,
                source=locs[a],
                target=self.target[a],
            )
        return u

    def _value(self, field: str) -> torch.Tensor:
        return self._apply(field, [0] * len(self.coordinates))

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        counts = [key.count(a) for a in range(len(self.coordinates))]
        if max(counts) > 2:
            raise ParameterError(
                f"StencilFields computes derivatives up to second order per axis; got {key}"
            )
        return self._apply(field, counts)

    def _coord(self, index: int) -> torch.Tensor:
        v = next(iter(self._values.values()))
        n = self.shape[index]
        pos = self.origin[index] + self.spacing[index] * (
            torch.arange(n, dtype=v.dtype, device=v.device) + _OFFSET[self.target[index]]
        )
        view = [1] * len(self.shape)
        view[index] = n
        return pos.reshape(view).expand(self.shape)
