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


@numba.njit(inline="always", cache=True)
def _central2(f, r, flat, st, w, c):
    """(first, second) central differences at an interior sample, unit spacing.

    ``c`` = the five first-derivative weights at offsets -2..2 followed by the five
    second-derivative weights (zero-padded when w = 1), as a tuple of floats: scalars do not
    alias the arrays and carry no reference counts.
    """
    if w == 1:
        a, b, e = f[r, flat - st], f[r, flat], f[r, flat + st]
        return c[1] * a + c[3] * e, c[6] * a + c[7] * b + c[8] * e
    a, b, m = f[r, flat - 2 * st], f[r, flat - st], f[r, flat]
    d, e = f[r, flat + st], f[r, flat + 2 * st]
    d1 = c[0] * a + c[1] * b + c[3] * d + c[4] * e
    return d1, c[5] * a + c[6] * b + c[7] * m + c[8] * d + c[9] * e


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


# -- interior samples: central stencils, scalars only (vectorisable) ------------------------------
@numba.njit(parallel=True, cache=True)
def _heat_inner_2d(u, u_t, kappa, n0, n1, ih2x, ih2y, w, c, out):
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c  # scalars outside the parallel loop
    for p0 in numba.prange(w, n0 - w):
        i = np.int64(p0)
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        for j in range(w, n1 - w):
            f = i * n1 + j
            uxx = _central2(u, 0, f, n1, w, cc)[1]
            uyy = _central2(u, 0, f, 1, w, cc)[1]
            out[0, f] = u_t[0, f] - kappa * (ih2x * uxx + ih2y * uyy)


@numba.njit(parallel=True, cache=True)
def _heat_inner_3d(u, u_t, kappa, n0, n1, n2, ih2x, ih2y, ih2z, w, c, out):
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    s0 = n1 * n2
    for p0 in numba.prange(w, n0 - w):
        i = np.int64(p0)
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        for j in range(w, n1 - w):
            for k in range(w, n2 - w):
                f = i * s0 + j * n2 + k
                uxx = _central2(u, 0, f, s0, w, cc)[1]
                uyy = _central2(u, 0, f, n2, w, cc)[1]
                uzz = _central2(u, 0, f, 1, w, cc)[1]
                out[0, f] = u_t[0, f] - kappa * (ih2x * uxx + ih2y * uyy + ih2z * uzz)


@numba.njit(parallel=True, cache=True)
def _ns_inner_2d(vel, p, vel_t, nu, n0, n1, ihx, ihy, ih2x, ih2y, w, c, out):
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    for p0 in numba.prange(w, n0 - w):
        i = np.int64(p0)
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        for j in range(w, n1 - w):
            f = i * n1 + j
            u, v = vel[0, f], vel[1, f]
            ux, uxx = _central2(vel, 0, f, n1, w, cc)
            uy, uyy = _central2(vel, 0, f, 1, w, cc)
            vx, vxx = _central2(vel, 1, f, n1, w, cc)
            vy, vyy = _central2(vel, 1, f, 1, w, cc)
            px = _central2(p, 0, f, n1, w, cc)[0]
            py = _central2(p, 0, f, 1, w, cc)[0]
            ux, uy, vx, vy = ihx * ux, ihy * uy, ihx * vx, ihy * vy
            lap_u = ih2x * uxx + ih2y * uyy
            lap_v = ih2x * vxx + ih2y * vyy
            out[0, f] = vel_t[0, f] + u * ux + v * uy + ihx * px - nu * lap_u
            out[1, f] = vel_t[1, f] + u * vx + v * vy + ihy * py - nu * lap_v
            out[2, f] = ux + vy


@numba.njit(parallel=True, cache=True)
def _ns_inner_3d(vel, p, vel_t, nu, n0, n1, n2, ih, ih2, w, c, out):
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = c
    hx, hy, hz = ih
    h2x, h2y, h2z = ih2
    s0 = n1 * n2
    for p0 in numba.prange(w, n0 - w):
        i = np.int64(p0)
        cc = (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)
        for j in range(w, n1 - w):
            for k in range(w, n2 - w):
                f = i * s0 + j * n2 + k
                u, v, ww = vel[0, f], vel[1, f], vel[2, f]
                div = 0.0
                for m in range(3):
                    dx, dxx = _central2(vel, m, f, s0, w, cc)
                    dy, dyy = _central2(vel, m, f, n2, w, cc)
                    dz, dzz = _central2(vel, m, f, 1, w, cc)
                    dx, dy, dz = hx * dx, hy * dy, hz * dz
                    conv = u * dx + v * dy + ww * dz
                    lap = h2x * dxx + h2y * dyy + h2z * dzz
                    if m == 0:
                        dp = hx * _central2(p, 0, f, s0, w, cc)[0]
                        div += dx
                    elif m == 1:
                        dp = hy * _central2(p, 0, f, n2, w, cc)[0]
                        div += dy
                    else:
                        dp = hz * _central2(p, 0, f, 1, w, cc)[0]
                        div += dz
                    out[m, f] = vel_t[m, f] + conv + dp - nu * lap
                out[3, f] = div


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
    edge = np.zeros(shape, dtype=bool)
    for a in range(d):
        index = [slice(None)] * d
        index[a] = np.r_[0:w, shape[a] - w : shape[a]]
        edge[tuple(index)] = True
    return shape_arr, strides, periodic, 1.0 / spacing, 1.0 / spacing**2, np.flatnonzero(edge)


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
    if len(shape) == 2:
        _heat_inner_2d(uf, utf, k, n[0], n[1], inv_h2[0], inv_h2[1], w, c, out)
    else:
        _heat_inner_3d(uf, utf, k, n[0], n[1], n[2], *inv_h2, w, c, out)
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
    if d == 2:
        _ns_inner_2d(vel, pf, vel_t, nu, n[0], n[1], *inv_h, *inv_h2, w, c, out)
    else:
        ih, ih2 = tuple(inv_h.tolist()), tuple(inv_h2.tolist())
        _ns_inner_3d(vel, pf, vel_t, nu, n[0], n[1], n[2], ih, ih2, w, c, out)
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
