"""Steady lid-driven cavity: Newton's method on the vorticity-streamfunction equations.

On the unit square with u = psi_y, v = -psi_x, w = v_x - u_y = -lap psi, the steady
Navier-Stokes equations are

    lap psi + w = 0,    (1/re) lap w - (psi_y w_x - psi_x w_y) = 0,

with psi = 0 on the walls and the no-slip condition carried by the wall vorticity. Space:
second-order central differences on the uniform (n + 1) x (n + 1) node grid; the wall vorticity
from Jensen's (1959) second-order formula w_0 = -(8 psi_1 - psi_2) / (2 h^2) - 3 U / h (U the
wall's tangential velocity, psi_1, psi_2 the first two nodes inward). The corner nodes take no
part (no stencil reaches them). The discrete equations are solved by Newton's method with a
sparse direct solver, continued in re (factor 1.5 steps) above re = 200.

Velocity by second-order differences of psi (wall values set exactly: u = 1 on the lid corners
included, 0 on the other walls); pressure, fixed by p(0.5, 0.5) = 0 (Botella & Peyret 1998), by
least squares on the node edges from the momentum equation
grad p = -(u.grad) u + (1/re) (-w_y, w_x). The pressure is singular (~ 1/r) at the two lid
corners, where the lid velocity jumps; the discrete solution there is grid-dependent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pdekit.core.stencil import axis_derivative
from pdekit.problems.references.grid import GridReference

ORDER = 2


@dataclass
class CavitySolution:
    """Node values (n + 1, n + 1), indexed [i, j] with x = i h, y = j h."""

    x: np.ndarray
    psi: np.ndarray
    w: np.ndarray
    u: np.ndarray
    v: np.ndarray
    p: np.ndarray
    newton_iterations: int
    residual: float
    #: the n/2 solution this one was started from (grid sequencing), if any
    coarse: CavitySolution | None = None

    def error_estimate(self, exclude: float = 0.05) -> dict[str, float]:
        """Richardson estimate of the discretisation error, ``max |f_n - f_n/2| / (2^2 - 1)`` over
        the common nodes farther than ``exclude`` from both lid corners (where u jumps and p
        is singular, so no estimate holds). Needs the coarse solution."""
        if self.coarse is None:
            raise ValueError("no coarse solution to estimate the error from")
        X, Y = np.meshgrid(self.coarse.x, self.coarse.x, indexing="ij")
        far = np.minimum(np.hypot(X, Y - 1), np.hypot(X - 1, Y - 1)) > exclude
        out = {}
        for k in ("u", "v", "p"):
            fine = getattr(self, k)[::2, ::2]
            out[k] = float(np.abs(fine - getattr(self.coarse, k))[far].max()) / (2**ORDER - 1)
        return out


class _System:
    """Unknowns and the residual/Jacobian of the discrete equations.

    Unknowns: psi at the interior nodes, then w at every node but the corners. Each equation
    takes the row of one unknown: the Poisson equation that of psi at its node, the vorticity
    transport equation that of w at its (interior) node, Jensen's formula that of w at its wall
    node; so the Jacobian is square.
    """

    def __init__(self, n: int, re: float):
        self.n, self.re, self.h = n, re, 1.0 / n
        N = n + 1
        self.pid = -np.ones((N, N), dtype=np.int64)
        self.pid[1:-1, 1:-1] = np.arange((n - 1) ** 2).reshape(n - 1, n - 1)
        self.npsi = (n - 1) ** 2
        corner = np.zeros((N, N), dtype=bool)
        corner[[0, 0, -1, -1], [0, -1, 0, -1]] = True
        self.wid = -np.ones((N, N), dtype=np.int64)
        self.wid[~corner] = self.npsi + np.arange(N * N - 4)
        self.size = self.npsi + N * N - 4
        I, J = np.meshgrid(np.arange(1, n), np.arange(1, n), indexing="ij")
        self.I, self.J = I.ravel(), J.ravel()
        # wall nodes (no corners): (node, first inward neighbour, second, lid velocity)
        k = np.arange(1, n)
        self.walls = (
            (k, 0 * k, 0, 1, 0.0),  # bottom
            (k, 0 * k + n, 0, -1, 1.0),  # lid
            (0 * k, k, 1, 0, 0.0),  # left
            (0 * k + n, k, -1, 0, 0.0),  # right
        )

    def fields(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        N = self.n + 1
        psi = np.zeros((N, N))
        psi[1:-1, 1:-1] = x[: self.npsi].reshape(self.n - 1, self.n - 1)
        w = np.zeros((N, N))
        w[self.wid >= 0] = x[self.npsi :]
        return psi, w

    def residual_and_jacobian(self, x: np.ndarray, jacobian: bool = True):
        psi, w = self.fields(x)
        h, re, I, J = self.h, self.re, self.I, self.J
        rows, cols, vals = [], [], []
        res = np.zeros(self.size)

        def add(r, c_ids, v):
            ok = c_ids >= 0  # boundary psi are known zeros, not unknowns
            rows.append(r[ok])
            cols.append(c_ids[ok])
            vals.append(np.broadcast_to(v, r.shape)[ok])

        # E1 at interior node k (row k): lap psi + w = 0
        r1 = self.pid[I, J]
        lap_psi = (
            psi[I + 1, J] + psi[I - 1, J] + psi[I, J + 1] + psi[I, J - 1] - 4 * psi[I, J]
        ) / h**2
        res[r1] = lap_psi + w[I, J]
        # E2 at interior node (row of its w unknown): lap w / re - (u w_x + v w_y)
        r2 = self.wid[I, J]
        a = (psi[I, J + 1] - psi[I, J - 1]) / (2 * h)  # u
        c = (psi[I + 1, J] - psi[I - 1, J]) / (2 * h)  # -v
        b = (w[I + 1, J] - w[I - 1, J]) / (2 * h)  # w_x
        d = (w[I, J + 1] - w[I, J - 1]) / (2 * h)  # w_y
        lap_w = (w[I + 1, J] + w[I - 1, J] + w[I, J + 1] + w[I, J - 1] - 4 * w[I, J]) / h**2
        res[r2] = lap_w / re - (a * b - c * d)
        # wall nodes (row of their w unknown): Jensen's formula
        wall_rows = []
        for ii, jj, di, dj, U in self.walls:
            rw = self.wid[ii, jj]
            p1, p2 = psi[ii + di, jj + dj], psi[ii + 2 * di, jj + 2 * dj]
            res[rw] = w[ii, jj] + (8 * p1 - p2) / (2 * h**2) + 3 * U / h
            wall_rows.append((rw, ii, jj, di, dj))
        if not jacobian:
            return res, None
        s2 = 1.0 / h**2
        add(r1, self.pid[I + 1, J], s2)
        add(r1, self.pid[I - 1, J], s2)
        add(r1, self.pid[I, J + 1], s2)
        add(r1, self.pid[I, J - 1], s2)
        add(r1, self.pid[I, J], -4 * s2)
        add(r1, self.wid[I, J], 1.0)
        g = 1 / (2 * h)
        add(r2, self.pid[I, J + 1], -b * g)
        add(r2, self.pid[I, J - 1], b * g)
        add(r2, self.pid[I + 1, J], d * g)
        add(r2, self.pid[I - 1, J], -d * g)
        sr = 1.0 / (re * h**2)
        add(r2, self.wid[I + 1, J], sr - a * g)
        add(r2, self.wid[I - 1, J], sr + a * g)
        add(r2, self.wid[I, J + 1], sr + c * g)
        add(r2, self.wid[I, J - 1], sr - c * g)
        add(r2, self.wid[I, J], -4 * sr)
        for rw, ii, jj, di, dj in wall_rows:
            add(rw, self.wid[ii, jj], 1.0)
            add(rw, self.pid[ii + di, jj + dj], 8 / (2 * h**2))
            add(rw, self.pid[ii + 2 * di, jj + 2 * dj], -1 / (2 * h**2))
        A = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.size, self.size),
        )
        return res, A


def solve(
    re: float, n: int, *, tol: float = 1e-10, max_iter: int = 60, coarsest: int = 64
) -> CavitySolution:
    """Steady cavity flow at Reynolds number ``re`` on an n x n-cell grid (n even).

    Grid sequencing: for n > ``coarsest`` the solution on n/2 cells, interpolated, starts
    Newton's method on n cells; on the coarsest grid Newton starts from rest and, for re > 200,
    is continued in re through 200, 300, 450, ... Converged when the Newton update is below
    ``tol`` times the largest ``|w|`` (the update of a quadratically converging iteration bounds the
    remaining error).
    """
    if n < 8 or n % 2:
        raise ValueError(f"cavity grid needs an even number of cells >= 8; got {n}")
    system = _System(n, re)
    coarse = None
    if n > coarsest and n % 4 == 0:
        coarse = solve(re, n // 2, tol=tol, max_iter=max_iter, coarsest=coarsest)
        x, total, res = _newton(system, _prolong(coarse, system), tol, max_iter)
        total += coarse.newton_iterations
        coarse.coarse = None  # keep one level only
    else:
        x, total = None, 0
        for r in _continuation(re):
            x, it, res = _newton(_System(n, r), x, tol, max_iter)
            total += it
    psi, w = system.fields(x)
    u, v = _velocity(psi, n)
    p = _pressure(u, v, w, n, re)
    grid = np.linspace(0.0, 1.0, n + 1)
    return CavitySolution(grid, psi, w, u, v, p, total, res, coarse)


def _prolong(coarse: CavitySolution, system: _System) -> np.ndarray:
    """Unknown vector on the fine grid from the coarse solution (bilinear interpolation)."""
    n = system.n
    xf = np.linspace(0.0, 1.0, n + 1)
    pts = np.stack(np.meshgrid(xf, xf, indexing="ij"), axis=-1).reshape(-1, 2)
    interp = GridReference(
        {"x": coarse.x, "y": coarse.x},
        {"psi": coarse.psi, "w": coarse.w},
        (False, False),
        description="",
        accuracy="",
        order=1,
    )(pts)
    psi = interp["psi"].reshape(n + 1, n + 1)
    w = interp["w"].reshape(n + 1, n + 1)
    return np.concatenate([psi[1:-1, 1:-1].ravel(), w[system.wid >= 0]])


def _continuation(re: float) -> list[float]:
    """Reynolds numbers of the continuation: from 200 on, at most a factor 1.5 apart."""
    steps, r = [], 200.0
    while r < re:
        steps.append(r)
        r *= 1.5
    return steps + [float(re)]


def _newton(system: _System, x0, tol: float, max_iter: int):
    """Damped Newton's method.

    The LU factors are reused (a chord step: one back-substitution) while the update shrinks at
    least fourfold per iteration; a step that raises the residual norm is retried with a fresh
    Jacobian, and with a fresh one it is halved until the residual decreases.
    """
    x = np.zeros(system.size) if x0 is None else x0.copy()
    res, _ = system.residual_and_jacobian(x, jacobian=False)
    norm = float(np.linalg.norm(res))
    lu, fresh, last = None, False, np.inf
    for it in range(1, max_iter + 1):
        if lu is None:
            _, A = system.residual_and_jacobian(x)
            lu, fresh = spla.splu(A.tocsc()), True
        dx = lu.solve(-res)
        lam = 1.0
        while True:
            trial = x + lam * dx
            res_t, _ = system.residual_and_jacobian(trial, jacobian=False)
            norm_t = float(np.linalg.norm(res_t))
            if norm_t < norm or lam < 1e-3 or not fresh:
                break
            lam /= 2
        if norm_t >= norm and not fresh:
            lu = None  # the stale Jacobian misled: refactor and redo this iteration
            continue
        x, res, norm = trial, res_t, norm_t
        step = lam * float(np.abs(dx).max())
        if step < tol * max(1.0, float(np.abs(x[system.npsi :]).max())):
            return x, it, float(np.abs(res).max())
        if step > last / 4 or lam < 1:
            lu = None  # slow contraction: refresh the Jacobian
        last, fresh = step, False
    raise RuntimeError(
        f"cavity Newton iteration did not converge in {max_iter} steps at re = {system.re} "
        f"on a {system.n}-cell grid (residual {norm:.2e})"
    )


def _d(f: np.ndarray, axis: int, k: int, h: float) -> np.ndarray:
    t = torch.as_tensor(f)
    return axis_derivative(t, axis, k, h, order=2, boundary="free", source="node").numpy()


def _velocity(psi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    h = 1.0 / n
    u, v = _d(psi, 1, 1, h), -_d(psi, 0, 1, h)
    for f in (u, v):
        f[0, :] = f[-1, :] = f[:, 0] = 0.0
    u[:, -1] = 1.0  # the lid, its end nodes included
    v[:, -1] = 0.0
    return u, v


def _pressure(u, v, w, n: int, re: float) -> np.ndarray:
    h = 1.0 / n
    gx = -(u * _d(u, 0, 1, h) + v * _d(u, 1, 1, h)) - _d(w, 1, 1, h) / re
    gy = -(u * _d(v, 0, 1, h) + v * _d(v, 1, 1, h)) + _d(w, 0, 1, h) / re
    N = n + 1
    idx = np.arange(N * N).reshape(N, N)
    corner = np.zeros((N, N), dtype=bool)
    corner[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    rows, cols, vals, rhs = [], [], [], []
    eq = 0
    for axis, g in ((0, gx), (1, gy)):
        a = idx[:-1, :] if axis == 0 else idx[:, :-1]
        b = idx[1:, :] if axis == 0 else idx[:, 1:]
        ga = g[:-1, :] if axis == 0 else g[:, :-1]
        gb = g[1:, :] if axis == 0 else g[:, 1:]
        ca = corner[:-1, :] if axis == 0 else corner[:, :-1]
        cb = corner[1:, :] if axis == 0 else corner[:, 1:]
        keep = ~(ca | cb)  # edges at the corners would carry the singular vorticity
        a, b, ga, gb = a[keep], b[keep], ga[keep], gb[keep]
        m = a.size
        e = eq + np.arange(m)
        rows += [e, e]
        cols += [b, a]
        vals += [np.full(m, 1 / h), np.full(m, -1 / h)]
        rhs.append(0.5 * (ga + gb))
        eq += m
    D = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(eq, N * N)
    )
    free = ~corner.ravel()
    Dk = D[:, free]
    g = np.concatenate(rhs)
    center = np.flatnonzero(free).tolist().index(idx[n // 2, n // 2])
    # normal equations with p(centre) pinned: the Neumann Poisson problem of the fitted gradient
    M = (Dk.T @ Dk).tolil()
    f = Dk.T @ g
    M[center, :] = 0
    M[center, center] = 1.0
    f[center] = 0.0
    pk = spla.spsolve(M.tocsc(), f)
    p = np.zeros(N * N)
    p[free] = pk
    p = p.reshape(N, N)
    # corner nodes: the mean of their two wall neighbours (the true pressure is singular there)
    for i, j, di, dj in ((0, 0, 1, 1), (0, n, 1, -1), (n, 0, -1, 1), (n, n, -1, -1)):
        p[i, j] = 0.5 * (p[i + di, j] + p[i, j + dj])
    return p
