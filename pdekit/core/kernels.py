"""numba kernels: PDE residual diagnostics of gridded fields, outside autograd, on the CPU.

After training, a solution is evaluated on a large grid and its residual is measured by finite
differences, independently of the derivative engine it was trained with.  These kernels do that
in one fused, multi-threaded pass per equation (``numba.njit(parallel=True, cache=True)``).

Grid convention: node-located samples of :mod:`pdekit.core.stencil` on every axis (the
evaluation grid of a problem: ``linspace`` on bounded axes, the duplicate endpoint left out on
periodic ones), in 2 or 3 dimensions, C order.  A bounded axis is closed with the same one-sided
stencils as ``StencilFields(..., location="node", boundary="free")``: the stencil rows are taken
from :func:`pdekit.core.stencil.axis_derivative` itself, so each kernel has an exact torch twin
(the tests compare them to round-off).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numba
import numpy as np
import torch

from pdekit.core.stencil import ORDERS, Boundary, axis_derivative
from pdekit.errors import ParameterError


# -- stencil rows, from the torch operator ------------------------------------------------------
@cache
def stencil_rows(k: int, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the node-located k-th derivative operator of ``order`` (unit spacing).

    Returns ``(center, left, right)``: the central weights (2w + 1 samples around the point),
    and for the w samples nearest each end of a bounded axis their one-sided weights over the
    first (``left``) or last (``right``) q samples of the axis.
    """
    if order not in ORDERS:
        raise ParameterError(f"stencil order must be one of {list(ORDERS)}; got {order!r}")
    n = 4 * (order + 4)
    eye = torch.eye(n, dtype=torch.float64)
    op = axis_derivative(eye, 0, k, 1.0, order=order, boundary=Boundary.free(), source="node")
    op = op[:, :n].numpy()  # op[i, j]: weight of sample j in the derivative at node i
    w = order // 2
    center = op[n // 2, n // 2 - w : n // 2 + w + 1].copy()
    q = int(max(np.flatnonzero(np.abs(op[i]) > 0).max() for i in range(w))) + 1
    left = op[:w, :q].copy()
    right = op[n - w :, n - q :].copy()
    return center, left, right


# -- the inner stencil, shared by the kernels ---------------------------------------------------
@numba.njit(inline="always", cache=True)
def _along(f, r, flat, i, n, stride, periodic, center, left, right):
    """sum_m w_m f[r, ...] along one axis at sample ``flat``, whose index on the axis is i."""
    base = flat - i * stride
    w = (center.size - 1) // 2
    s = 0.0
    if periodic:
        for m in range(center.size):
            ii = i + m - w
            if ii < 0:
                ii += n
            elif ii >= n:
                ii -= n
            s += center[m] * f[r, base + ii * stride]
    elif i < w:
        for m in range(left.shape[1]):
            s += left[i, m] * f[r, base + m * stride]
    elif i >= n - w:
        q = right.shape[1]
        for m in range(q):
            s += right[i - (n - w), m] * f[r, base + (n - q + m) * stride]
    else:
        for m in range(center.size):
            s += center[m] * f[r, base + (i + m - w) * stride]
    return s


# -- boundary samples: wrapped or one-sided rows, any dimension ---------------------------------
@numba.njit(inline="always", cache=True)
def _edge_d12(f, r, flat, a, shape, strides, periodic, c1, l1, r1, c2, l2, r2):
    """(first, second) derivative of row r of ``f`` along axis a at any sample (unit spacing)."""
    i = (flat // strides[a]) % shape[a]
    n, st, per = shape[a], strides[a], periodic[a]
    return _along(f, r, flat, i, n, st, per, c1, l1, r1), _along(
        f, r, flat, i, n, st, per, c2, l2, r2
    )


@numba.njit(parallel=True, cache=True)
def _heat_edge(
    u, u_t, kappa, points, shape, strides, periodic, inv_h2, c1, l1, r1, c2, l2, r2, out
):
    for q in numba.prange(points.size):
        flat = points[q]
        lap = 0.0
        for a in range(shape.size):
            d2 = _edge_d12(u, 0, flat, a, shape, strides, periodic, c1, l1, r1, c2, l2, r2)[1]
            lap += inv_h2[a] * d2
        out[0, flat] = u_t[0, flat] - kappa * lap


@numba.njit(parallel=True, cache=True)
def _ns_edge(
    vel, p, vel_t, nu, points, shape, strides, periodic, inv_h, inv_h2, c1, l1, r1, c2, l2, r2, out
):
    d = shape.size
    for q in numba.prange(points.size):
        flat = points[q]
        div = 0.0
        for k in range(d):  # momentum equation of velocity component k
            conv = 0.0
            lap = 0.0
            for a in range(d):
                d1, d2 = _edge_d12(
                    vel, k, flat, a, shape, strides, periodic, c1, l1, r1, c2, l2, r2
                )
                conv += vel[a, flat] * inv_h[a] * d1
                lap += inv_h2[a] * d2
                if a == k:
                    div += inv_h[a] * d1
            dp = _edge_d12(p, 0, flat, k, shape, strides, periodic, c1, l1, r1, c2, l2, r2)[0]
            out[k, flat] = vel_t[k, flat] + conv + inv_h[k] * dp - nu * lap
        out[d, flat] = div


# -- interior samples: central stencils on row views (contiguous, vectorisable) ---------------
# Each interior kernel walks the grid's rows (the last, contiguous axis) and reads every
# neighbour along the other axes as another row view, so the innermost loop is a plain unit-stride
# loop LLVM vectorises (flat index arithmetic defeats that: measured 2x slower). The stencil
# half-width w (1 or 2) reaches the row loop as a literal through an ``inline="always"`` call in
# each branch of ``if w == 1``, so each copy of the loop is compiled for its own order.
@numba.njit(inline="always", cache=True)
def _rows(f, i, w):
    """Rows i-2..i+2 of the 2D array f (i-2 and i+2 stand in for themselves only when w = 2)."""
    lo = i - 2 if w == 2 else i
    hi = i + 2 if w == 2 else i
    return (f[lo], f[i - 1], f[i], f[i + 1], f[hi])


@numba.njit(inline="always", cache=True)
def _rows0(f, i, j, w):
    """Rows (i-2..i+2, j) of the 3D array f, the neighbours of row (i, j) along axis 0."""
    lo = i - 2 if w == 2 else i
    hi = i + 2 if w == 2 else i
    return (f[lo, j], f[i - 1, j], f[i, j], f[i + 1, j], f[hi, j])


@numba.njit(inline="always", cache=True)
def _across(r, j, w, c):
    """(first, second) central differences at column j across the rows ``r`` (unit spacing).

    ``c`` = the five first-derivative weights at offsets -2..2 followed by the five
    second-derivative weights (zero-padded when w = 1), as a tuple of floats: scalars do not
    alias the arrays and carry no reference counts.
    """
    if w == 1:
        a, b, e = r[1][j], r[2][j], r[3][j]
        return c[1] * a + c[3] * e, c[6] * a + c[7] * b + c[8] * e
    a, b, m, d, e = r[0][j], r[1][j], r[2][j], r[3][j], r[4][j]
    return c[0] * a + c[1] * b + c[3] * d + c[4] * e, (
        c[5] * a + c[6] * b + c[7] * m + c[8] * d + c[9] * e
    )


@numba.njit(inline="always", cache=True)
def _along_row(row, j, w, c):
    """(first, second) central differences at column j along one row (unit spacing)."""
    if w == 1:
        a, b, e = row[j - 1], row[j], row[j + 1]
        return c[1] * a + c[3] * e, c[6] * a + c[7] * b + c[8] * e
    a, b, m, d, e = row[j - 2], row[j - 1], row[j], row[j + 1], row[j + 2]
    return c[0] * a + c[1] * b + c[3] * d + c[4] * e, (
        c[5] * a + c[6] * b + c[7] * m + c[8] * d + c[9] * e
    )


@numba.njit(inline="always", cache=True)
def _heat_row(u, u_t, kappa, ih2, ra, rb, w, c, out):
    """Heat residual along one row; ``ra``/``rb``: the row's neighbours on the other axes
    (``rb`` is read only on a 3D grid, where ``ih2`` has three entries)."""
    for j in range(w, u.size - w):
        s = ih2[-1] * _along_row(u, j, w, c)[1] + ih2[0] * _across(ra, j, w, c)[1]
        if len(ih2) == 3:
            s += ih2[1] * _across(rb, j, w, c)[1]
        out[j] = u_t[j] - kappa * s


@numba.njit(parallel=True, cache=True)
def _heat_inner_2d(u, u_t, kappa, ih2, w, c, out):
    """u, u_t, out: (n0, n1) arrays; ih2: (1/hx^2, 1/hy^2)."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c  # scalars outside the parallel loop
    for i in numba.prange(w, u.shape[0] - w):
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        if w == 1:
            r = _rows(u, i, 1)
            _heat_row(u[i], u_t[i], kappa, ih2, r, r, 1, cc, out[i])
        else:
            r = _rows(u, i, 2)
            _heat_row(u[i], u_t[i], kappa, ih2, r, r, 2, cc, out[i])


@numba.njit(parallel=True, cache=True)
def _heat_inner_3d(u, u_t, kappa, ih2, w, c, out):
    """u, u_t, out: (n0, n1, n2) arrays; ih2: (1/hx^2, 1/hy^2, 1/hz^2)."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    for i in numba.prange(w, u.shape[0] - w):
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        for j in range(w, u.shape[1] - w):
            if w == 1:
                ra, rb = _rows0(u, i, j, 1), _rows(u[i], j, 1)
                _heat_row(u[i, j], u_t[i, j], kappa, ih2, ra, rb, 1, cc, out[i, j])
            else:
                ra, rb = _rows0(u, i, j, 2), _rows(u[i], j, 2)
                _heat_row(u[i, j], u_t[i, j], kappa, ih2, ra, rb, 2, cc, out[i, j])


@numba.njit(inline="always", cache=True)
def _ns_row_2d(u, v, p, ut, vt, ru, rv, rp, nu, ih, ih2, w, c, o0, o1, o2):
    """2D Navier-Stokes residual along one row (x: across rows, y: along the row)."""
    for j in range(w, u.size - w):
        ux, uxx = _across(ru, j, w, c)
        vx, vxx = _across(rv, j, w, c)
        uy, uyy = _along_row(u, j, w, c)
        vy, vyy = _along_row(v, j, w, c)
        px = _across(rp, j, w, c)[0]
        py = _along_row(p, j, w, c)[0]
        ux, uy, vx, vy = ih[0] * ux, ih[1] * uy, ih[0] * vx, ih[1] * vy
        a, b = u[j], v[j]
        o0[j] = ut[j] + a * ux + b * uy + ih[0] * px - nu * (ih2[0] * uxx + ih2[1] * uyy)
        o1[j] = vt[j] + a * vx + b * vy + ih[1] * py - nu * (ih2[0] * vxx + ih2[1] * vyy)
        o2[j] = ux + vy


@numba.njit(parallel=True, cache=True)
def _ns_inner_2d(vel, p, vel_t, nu, ih, ih2, w, c, out):
    """vel, vel_t: (2, n0, n1); p: (n0, n1); out: (3, n0, n1); ih, ih2: 1/h, 1/h^2 per axis."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    u, v = vel[0], vel[1]
    for i in numba.prange(w, p.shape[0] - w):
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        ui, vi, pi, uti, vti = u[i], v[i], p[i], vel_t[0, i], vel_t[1, i]
        o0, o1, o2 = out[0, i], out[1, i], out[2, i]
        if w == 1:
            ru, rv, rp = _rows(u, i, 1), _rows(v, i, 1), _rows(p, i, 1)
            _ns_row_2d(ui, vi, pi, uti, vti, ru, rv, rp, nu, ih, ih2, 1, cc, o0, o1, o2)
        else:
            ru, rv, rp = _rows(u, i, 2), _rows(v, i, 2), _rows(p, i, 2)
            _ns_row_2d(ui, vi, pi, uti, vti, ru, rv, rp, nu, ih, ih2, 2, cc, o0, o1, o2)


@numba.njit(inline="always", cache=True)
def _ns_row_3d(vel, p, vel_t, nu, i, j, ih, ih2, w, c, out):
    """3D Navier-Stokes residual along row (i, j) (x, y: across rows, z: along the row)."""
    u, v, s = vel[0, i, j], vel[1, i, j], vel[2, i, j]
    ra = (_rows0(vel[0], i, j, w), _rows0(vel[1], i, j, w), _rows0(vel[2], i, j, w))
    rb = (_rows(vel[0, i], j, w), _rows(vel[1, i], j, w), _rows(vel[2, i], j, w))
    pa, pb, pc = _rows0(p, i, j, w), _rows(p[i], j, w), p[i, j]
    row = (u, v, s)
    for k in range(w, u.size - w):
        a, b, e = u[k], v[k], s[k]
        div = 0.0
        for m in range(3):
            dx, dxx = _across(ra[m], k, w, c)
            dy, dyy = _across(rb[m], k, w, c)
            dz, dzz = _along_row(row[m], k, w, c)
            dx, dy, dz = ih[0] * dx, ih[1] * dy, ih[2] * dz
            if m == 0:
                dp = ih[0] * _across(pa, k, w, c)[0]
                div += dx
            elif m == 1:
                dp = ih[1] * _across(pb, k, w, c)[0]
                div += dy
            else:
                dp = ih[2] * _along_row(pc, k, w, c)[0]
                div += dz
            lap = ih2[0] * dxx + ih2[1] * dyy + ih2[2] * dzz
            out[m, i, j, k] = vel_t[m, i, j, k] + a * dx + b * dy + e * dz + dp - nu * lap
        out[3, i, j, k] = div


@numba.njit(parallel=True, cache=True)
def _ns_inner_3d(vel, p, vel_t, nu, ih, ih2, w, c, out):
    """vel, vel_t: (3, n0, n1, n2); p: (n0, n1, n2); out: (4, n0, n1, n2)."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    for i in numba.prange(w, p.shape[0] - w):
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        for j in range(w, p.shape[1] - w):
            if w == 1:
                _ns_row_3d(vel, p, vel_t, nu, i, j, ih, ih2, 1, cc, out)
            else:
                _ns_row_3d(vel, p, vel_t, nu, i, j, ih, ih2, 2, cc, out)


# -- public face --------------------------------------------------------------------------------
def _grid(shape, spacing, periodic, order):
    """Checked grid facts: shape, C strides, periodic flags, 1/h, 1/h^2, boundary samples."""
    d = len(shape)
    if d not in (2, 3):
        raise ParameterError(f"grid kernels work on 2D or 3D grids; got {d} dimensions")
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (d,)).copy()
    periodic = np.broadcast_to(np.asarray(periodic, dtype=np.bool_), (d,)).copy()
    if np.any(spacing <= 0):
        raise ParameterError(f"spacing must be positive; got {spacing.tolist()}")
    for n, per in zip(shape, periodic):
        if n < (order + 1 if per else order + 3):  # samples the one-sided closure reads
            raise ParameterError(f"axis of {n} samples is too short for an order-{order} stencil")
    shape_arr = np.asarray(shape, dtype=np.int64)
    strides = np.ones(d, dtype=np.int64)
    for a in range(d - 2, -1, -1):
        strides[a] = strides[a + 1] * shape_arr[a + 1]
    w = order // 2
    # flat indices of the samples within w of a face: the union of one slab pair per axis,
    # built from the slabs alone (a full-grid mask cost 0.8 ms of a 5 ms 2048^2 residual)
    # (disjoint: the slab of axis a takes only interior positions along the axes before it)
    slabs = []
    for a in range(d):
        ranges = [np.arange(w if b < a else 0, m - w if b < a else m) for b, m in enumerate(shape)]
        ranges[a] = np.r_[0:w, shape[a] - w : shape[a]]
        flat = sum(g.astype(np.int64) * s for g, s in zip(np.ix_(*ranges), strides))
        slabs.append(np.ravel(flat))
    edge = np.sort(np.concatenate(slabs))
    return shape_arr, strides, periodic, 1.0 / spacing, 1.0 / spacing**2, edge


def _weights(order: int):
    """Central weights as a tuple of 10 floats (zero-padded at order 2), and all stencil rows."""
    ops = stencil_rows(1, order) + stencil_rows(2, order)
    pad = [0.0] * (2 - order // 2)
    return tuple(pad + ops[0].tolist() + pad + pad + ops[3].tolist() + pad), ops


def _flat(x, shape, name) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.shape != tuple(shape):
        raise ParameterError(f"{name} must have the grid shape {tuple(shape)}; got {a.shape}")
    return a.reshape(-1)


def heat_residual(
    u: np.ndarray,
    u_t: np.ndarray,
    diffusivity: float,
    spacing: float | Sequence[float],
    periodic: bool | Sequence[bool] = True,
    order: int = 2,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Residual ``u_t - k (sum_a d2u/dx_a^2)`` of a gridded field (2D or 3D, node samples).

    Parameters
    ----------
    u, u_t:
        The field and its time derivative on the grid (same shape).
    diffusivity:
        k.
    spacing, periodic:
        Per axis (or one value for all): sample spacing, and periodic (else bounded with
        one-sided closures).
    order:
        Stencil order, 2 or 4.
    out:
        Optional float64 C-contiguous array of the grid's shape to write into (saves the
        allocation and first-touch of a new array in repeated evaluations).
    """
    shape = np.shape(u)
    n, strides, per, inv_h, inv_h2, edge = _grid(shape, spacing, periodic, order)
    c, ops = _weights(order)
    uf, utf = _flat(u, shape, "u")[None], _flat(u_t, shape, "u_t")[None]
    k = float(diffusivity)
    result = _output(out, shape, 1)
    out = result.reshape(1, -1)
    w = order // 2
    ih2 = tuple(inv_h2.tolist())
    inner = _heat_inner_2d if len(shape) == 2 else _heat_inner_3d
    inner(uf.reshape(shape), utf.reshape(shape), k, ih2, w, c, result)
    _heat_edge(uf, utf, k, edge, n, strides, per, inv_h2, *ops, out)
    return result


def navier_stokes_residual(
    velocity: Sequence[np.ndarray],
    pressure: np.ndarray,
    nu: float,
    spacing: float | Sequence[float],
    periodic: bool | Sequence[bool] = True,
    velocity_t: Sequence[np.ndarray] | None = None,
    order: int = 2,
    out: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Incompressible Navier-Stokes residual of gridded fields (2D or 3D, node samples).

    ``[u_c,t + sum_a u_a du_c/dx_a + dp/dx_c - nu lap u_c  for each c] + [div u]``; the time
    derivatives default to zero (steady flow). ``velocity`` (and ``velocity_t``) may be one
    array of shape ``(d, *grid)``, used without a copy when float64 and C-contiguous, or a
    sequence of d arrays (stacked into one). ``out``: optional float64 C-contiguous array of
    shape ``(d + 1, *grid)`` to write into; the returned list holds views of it.
    """
    shape = np.shape(pressure)
    n, strides, per, inv_h, inv_h2, edge = _grid(shape, spacing, periodic, order)
    d = len(shape)
    if len(velocity) != d:
        raise ParameterError(f"velocity needs {d} components on a {d}D grid; got {len(velocity)}")
    vel = _stacked(velocity, shape, "velocity")
    if velocity_t is None:
        vel_t = np.zeros_like(vel)
    else:
        vel_t = _stacked(velocity_t, shape, "velocity_t")
    pf = _flat(pressure, shape, "pressure")[None]
    c, ops = _weights(order)
    nu = float(nu)
    result = _output(out, shape, d + 1)
    out = result.reshape(d + 1, -1)
    w = order // 2
    ih, ih2 = tuple(inv_h.tolist()), tuple(inv_h2.tolist())
    grid = (d, *shape)
    inner = _ns_inner_2d if d == 2 else _ns_inner_3d
    inner(vel.reshape(grid), pf.reshape(shape), vel_t.reshape(grid), nu, ih, ih2, w, c, result)
    _ns_edge(vel, pf, vel_t, nu, edge, n, strides, per, inv_h, inv_h2, *ops, out)
    return [o.reshape(shape) for o in out]


def _stacked(components, shape, name) -> np.ndarray:
    """(d, n) float64 view of d gridded components (no copy for a contiguous (d, *shape) array)."""
    if isinstance(components, np.ndarray) and components.ndim == len(shape) + 1:
        if components.shape[1:] != tuple(shape):
            raise ParameterError(
                f"{name} must have shape (d, *{tuple(shape)}); got {components.shape}"
            )
        return np.ascontiguousarray(components, dtype=np.float64).reshape(len(components), -1)
    return np.stack([_flat(c, shape, name) for c in components])


def _output(out, shape, fields: int) -> np.ndarray:
    """A new output array, or the caller's after checking it can be written in place."""
    want = tuple(shape) if fields == 1 else (fields, *shape)
    if out is None:
        return np.empty(want)
    if out.shape != want or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ParameterError(
            f"out must be a C-contiguous float64 array of shape {want}; got {out.dtype} "
            f"{out.shape}{'' if out.flags.c_contiguous else ' (not contiguous)'}"
        )
    return out
