"""Finite-volume reference solver for the generalised porous medium equation (1D and 2D).

Solves, on a box of uniform cells,

    c(u) u_t = div( k(u) grad u ) + s(t, x, u),

the GPME u_t = div(k(u) grad u) (heat, porous medium, Stefan, Barenblatt) and, through the
capacity c(u), equations such as diffusion-sorption R(u) u_t = D u_xx.

Space: cell-centred finite volumes through :func:`pdekit.core.fv.flux_divergence_1d` / ``_2d``.
The face flux is written in the Kirchhoff form ``F = -grad K(u)``, ``K(u) = int_0^u k``, when K is
given: then the face diffusivity is the exact mean of k between the two cell values, so a
degenerate k (porous medium: k(0) = 0) or a discontinuous one (Stefan: the enthalpy method) moves
fronts at the right speed. Without K, the face diffusivity is that mean computed by 3-point
Gauss-Legendre quadrature (exact for polynomial k of degree <= 5). Second order in space for
smooth solutions (measured by the tests); fronts limit the observed order.

Time: the explicit second-order Runge-Kutta-Chebyshev method RKC2 (van der Houwen & Sommeijer
1980; Verwer, Hundsdorfer & Sommeijer 1990; Sommeijer, Shampine & Verwer, J. Comput. Appl. Math.
88 (1997) 315-326), whose s stages are stable for h rho <= ~0.65 s^2 along the negative real axis,
so the stiffness of diffusion costs O(sqrt(rho)) work, not O(rho). The number of stages follows a
Gershgorin bound of the spectral radius rho; the step follows the RKC local-error estimate (or is
fixed, ``dt``). Every stage is a combination of flux divergences, so the total mass changes only
through the boundaries and the source, to round-off (with a capacity, the semi-discrete scheme
conserves sum c... only in the time-continuous limit; see :func:`solve_gpme`).

Boundary conditions (per side ``"xmin"``, ``"xmax"``, ``"ymin"``, ``"ymax"``; or periodic axes):

* ``Boundary("dirichlet", g)``: u = g at the boundary face;
* ``Boundary("flux", q)``: outward normal flux F.n = q (``q = 0``: no flux);
* ``Boundary("robin", g, alpha, beta)``: alpha u + beta du/dn = g, n the outward normal.

Values are numbers or callables ``g(t)`` (1D) / ``g(t, s)`` (2D, s the face centres along the
side).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pdekit.core.fv import flux_divergence_1d, flux_divergence_2d
from pdekit.errors import ParameterError

ArrayFn = Callable[[np.ndarray], np.ndarray]

_SIDES = (("xmin", "xmax"), ("ymin", "ymax"))
# 3-point Gauss-Legendre on [0, 1]
_GL_X = 0.5 + 0.5 * np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_GL_W = np.array([5.0, 8.0, 5.0]) / 18.0


@dataclass(frozen=True)
class Boundary:
    """A boundary condition of :func:`solve_gpme` on one side of the box (see module docstring)."""

    kind: str
    value: float | Callable = 0.0
    alpha: float = 1.0
    beta: float = 0.0

    def __post_init__(self):
        if self.kind not in ("dirichlet", "flux", "robin"):
            raise ParameterError(
                f"boundary kind must be 'dirichlet', 'flux' or 'robin'; got {self.kind!r}"
            )

    def at(self, t: float, tangential: tuple[np.ndarray, ...]) -> np.ndarray | float:
        if callable(self.value):
            return self.value(t, *tangential)
        return float(self.value)


@dataclass(frozen=True)
class CellGrid:
    """Uniform cells on the box [lo, hi] (1D or 2D): ``n[i]`` cells along axis i."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: tuple[int, ...]
    periodic: tuple[bool, ...]

    def __post_init__(self):
        if not (len(self.lo) == len(self.hi) == len(self.n) == len(self.periodic)) or len(
            self.n
        ) not in (1, 2):
            raise ParameterError("CellGrid needs 1 or 2 axes with lo, hi, n, periodic each")
        if any(n < 2 for n in self.n) or any(b <= a for a, b in zip(self.lo, self.hi)):
            raise ParameterError(f"need at least 2 cells and lo < hi; got {self}")

    @property
    def dim(self) -> int:
        return len(self.n)

    @property
    def h(self) -> tuple[float, ...]:
        return tuple((b - a) / n for a, b, n in zip(self.lo, self.hi, self.n))

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        return tuple(a + (np.arange(n) + 0.5) * h for a, n, h in zip(self.lo, self.n, self.h))

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Cell-centre coordinates, one array of shape ``n`` per axis ('ij' indexing)."""
        return tuple(np.meshgrid(*self.centres, indexing="ij"))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.h))


@dataclass
class GPMEResult:
    """Output of :func:`solve_gpme`: cell values ``u`` (len(times), *grid.n) at ``times``."""

    grid: CellGrid
    times: np.ndarray
    u: np.ndarray
    steps: int
    rejected: int
    evaluations: int

    def mass(self) -> np.ndarray:
        """Total mass sum(u) * cell volume at each output time."""
        axes = tuple(range(1, self.u.ndim))
        return self.u.sum(axis=axes) * self.grid.cell_volume


# -- the right-hand side -------------------------------------------------------------------------
class _GPMEOperator:
    """du/dt of the semi-discrete GPME on a CellGrid with its boundary conditions."""

    def __init__(self, grid, k, kirchhoff, capacity, source, bcs):
        self.grid, self.k, self.K = grid, k, kirchhoff
        self.capacity, self.source = capacity, source
        self.bcs = bcs
        self.mesh = grid.mesh()
        self.h = grid.h
        self.tangential = (
            {0: (), 1: ()} if grid.dim == 1 else {0: (grid.centres[1],), 1: (grid.centres[0],)}
        )
        self.evaluations = 0
        if grid.dim == 1:
            self._ones = np.ones(grid.n[0] + 1)
            self._zeros = np.zeros(grid.n[0] + 1)
        else:
            nx, ny = grid.n
            self._ones = (np.ones((nx + 1, ny)), np.ones((nx, ny + 1)))
            self._zeros = (np.zeros((nx + 1, ny)), np.zeros((nx, ny + 1)))

    # potential and face diffusivities
    def _potential(self, u):
        return self.K(u) if self.K is not None else u

    def _face_mean_k(self, u_lo, u_hi):
        """Mean of k over [u_lo, u_hi] (3-point Gauss-Legendre), elementwise."""
        du = u_hi - u_lo
        return sum(w * self.k(u_lo + x * du) for x, w in zip(_GL_X, _GL_W))

    def _axis_diffusivity(self, u, axis):
        if self.K is not None:
            return self._ones if self.grid.dim == 1 else self._ones[axis]
        n = u.shape[axis]
        lo = np.take(u, np.arange(-1, n), axis=axis)  # face f: cells f-1 (wrapped) and f
        hi = np.take(u, np.arange(0, n + 1) % n, axis=axis)
        return self._face_mean_k(lo, hi)

    # boundary fluxes (outward normal F.n) from the boundary conditions
    def _boundary_flux(self, t, side, axis, u_cell, tangential):
        bc = self.bcs[side]
        h = self.h[axis]
        if bc.kind == "flux":
            return np.asarray(bc.at(t, tangential), dtype=float) + 0.0 * u_cell
        g = bc.at(t, tangential)
        if bc.kind == "dirichlet":
            ub = np.asarray(g, dtype=float) + 0.0 * u_cell
        else:  # robin: alpha u_b + beta (u_b - u_c) / (h/2) = g
            denom = bc.alpha + 2.0 * bc.beta / h
            if denom == 0.0:
                raise ParameterError(f"Robin condition on {side} is singular for this cell width")
            ub = (g + 2.0 * bc.beta * u_cell / h) / denom
        # outward derivative of the potential over the half cell: (phi_b - phi_c) / (h/2)
        if self.K is not None:
            return -(self.K(ub) - self.K(u_cell)) * (2.0 / h)
        return -self._face_mean_k(u_cell, ub) * (ub - u_cell) * (2.0 / h)

    def _side_fluxes(self, t, u, axis):
        """The flux along +axis through the low and the high boundary faces."""
        if self.grid.periodic[axis]:
            return 0.0, 0.0
        lo_side, hi_side = _SIDES[axis]
        tang = self.tangential[axis]
        if self.grid.dim == 1:
            u_lo, u_hi = u[:1], u[-1:]
        else:
            u_lo, u_hi = np.take(u, 0, axis=axis), np.take(u, -1, axis=axis)
        f_lo = -self._boundary_flux(t, lo_side, axis, u_lo, tang)  # outward normal is -axis
        f_hi = self._boundary_flux(t, hi_side, axis, u_hi, tang)
        if self.grid.dim == 1:
            return float(f_lo[0]), float(f_hi[0])
        return f_lo, f_hi

    def __call__(self, t: float, u: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        g = self.grid
        phi = self._potential(u)
        if g.dim == 1:
            f_lo, f_hi = self._side_fluxes(t, u, 0)
            out = flux_divergence_1d(
                phi,
                u,
                self._axis_diffusivity(u, 0),
                self._zeros,
                g.h[0],
                f_lo,
                f_hi,
                periodic=g.periodic[0],
            )
        else:
            out = flux_divergence_2d(
                phi,
                u,
                (self._axis_diffusivity(u, 0), self._axis_diffusivity(u, 1)),
                self._zeros,
                g.h,
                self._side_fluxes(t, u, 0),
                self._side_fluxes(t, u, 1),
                periodic=g.periodic,
            )
        if self.source is not None:
            out += self.source(t, u, *self.mesh)
        if self.capacity is not None:
            out /= self.capacity(u)
        return out

    def spectral_radius(self, t: float, u: np.ndarray) -> float:
        """Gershgorin bound of the Jacobian's spectral radius: sum over axes of 4 k_max/(c h^2)."""
        values = [u.ravel()]
        for side, bc in self.bcs.items():
            if bc.kind == "dirichlet":
                values.append(np.ravel(bc.at(t, self.tangential[0 if side[0] == "x" else 1])))
        k_max = max(float(np.max(self.k(v))) for v in values)
        c_min = 1.0 if self.capacity is None else float(np.min(self.capacity(u)))
        return sum(4.0 * k_max / (c_min * h * h) for h in self.h)


# -- RKC2 ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def rkc_coefficients(s: int) -> dict[str, np.ndarray | float]:
    """Coefficients of the s-stage RKC2 scheme with damping eps = 2/13 (Sommeijer et al. 1997).

    Returns ``mu, nu, mu_t, gamma_t, c`` (index j = 0..s) and ``beta``, the length of the real
    stability interval [-beta, 0].
    """
    if s < 2:
        raise ValueError("RKC2 needs at least 2 stages")
    w0 = 1.0 + (2.0 / 13.0) / s**2
    T, dT, ddT = np.zeros(s + 1), np.zeros(s + 1), np.zeros(s + 1)
    T[0], T[1], dT[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        T[j] = 2 * w0 * T[j - 1] - T[j - 2]
        dT[j] = 2 * T[j - 1] + 2 * w0 * dT[j - 1] - dT[j - 2]
        ddT[j] = 4 * dT[j - 1] + 2 * w0 * ddT[j - 1] - ddT[j - 2]
    w1 = dT[s] / ddT[s]
    b = np.empty(s + 1)
    b[2:] = ddT[2:] / dT[2:] ** 2
    b[0] = b[1] = b[2]
    a = 1.0 - b * T
    mu, nu, mu_t, gamma_t, c = (np.zeros(s + 1) for _ in range(5))
    mu_t[1] = b[1] * w1
    for j in range(2, s + 1):
        mu[j] = 2 * b[j] * w0 / b[j - 1]
        nu[j] = -b[j] / b[j - 2]
        mu_t[j] = 2 * b[j] * w1 / b[j - 1]
        gamma_t[j] = -a[j - 1] * mu_t[j]
    c[2:] = w1 * ddT[2:] / dT[2:]
    c[1] = c[2] / dT[2]
    return {"mu": mu, "nu": nu, "mu_t": mu_t, "gamma_t": gamma_t, "c": c, "beta": (1 + w0) / w1}


def _stages_for(h_rho: float, safety: float = 1.2) -> int:
    """Fewest stages whose stability interval covers safety * h * rho."""
    s = max(2, int(math.ceil(math.sqrt(1.0 + safety * h_rho / 0.65))))
    while rkc_coefficients(s)["beta"] < safety * h_rho:
        s += 1
    while s > 2 and rkc_coefficients(s - 1)["beta"] >= safety * h_rho:
        s -= 1
    return s


def _rkc_step(f, t, y, f0, h, s):
    co = rkc_coefficients(s)
    mu, nu, mu_t, gamma_t, c = co["mu"], co["nu"], co["mu_t"], co["gamma_t"], co["c"]
    y_prev2 = y
    y_prev = y + mu_t[1] * h * f0
    for j in range(2, s + 1):
        fj = f(t + c[j - 1] * h, y_prev)
        y_new = (
            (1.0 - mu[j] - nu[j]) * y
            + mu[j] * y_prev
            + nu[j] * y_prev2
            + mu_t[j] * h * fj
            + gamma_t[j] * h * f0
        )
        y_prev2, y_prev = y_prev, y_new
    return y_prev


def rkc_integrate(
    f: Callable[[float, np.ndarray], np.ndarray],
    spectral_radius: Callable[[float, np.ndarray], float],
    y0: np.ndarray,
    times: Sequence[float],
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    dt: float | None = None,
    max_stages: int = 400,
    max_steps: int = 1_000_000,
) -> tuple[np.ndarray, dict[str, int]]:
    """Integrate y' = f(t, y) from times[0] with RKC2; the solution at every entry of ``times``.

    Adaptive steps from the RKC error estimate
    ``est = (12 (y_n - y_{n+1}) + 6 h (f_n + f_{n+1})) / 15`` in the RMS norm weighted by
    ``atol + rtol |y|``; or, with ``dt``, fixed steps of (at most) ``dt`` landing on each output
    time. Returns the array (len(times), *y0.shape) and counters (steps, rejected).
    """
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or np.any(np.diff(times) < 0):
        raise ValueError("times must be a non-decreasing 1D sequence")
    y = np.array(y0, dtype=float)
    out = np.empty((times.size,) + y.shape)
    out[0] = y
    t = float(times[0])
    f0 = f(t, y)
    span = float(times[-1] - times[0])
    beta_max = rkc_coefficients(max_stages)["beta"]
    h = dt if dt is not None else min(1e-3 * span, 1.0 / max(spectral_radius(t, y), 1e-300))
    steps = rejected = 0
    just_rejected = False
    for k in range(1, times.size):
        t_end = float(times[k])
        while t_end - t > 1e-13 * max(1.0, abs(t_end)):
            if steps + rejected >= max_steps:
                raise RuntimeError(f"RKC2 took more than {max_steps} steps (t = {t})")
            h_try = min(h if dt is None else dt, t_end - t)
            rho = max(spectral_radius(t, y), 1e-300)
            h_try = min(h_try, beta_max / (1.2 * rho))
            last = t + h_try >= t_end - 1e-13 * max(1.0, abs(t_end))
            if last:
                h_try = t_end - t
            s = _stages_for(h_try * rho)
            y_new = _rkc_step(f, t, y, f0, h_try, s)
            t_new = t_end if last else t + h_try
            f1 = f(t_new, y_new)
            if dt is None:
                est = (12.0 * (y - y_new) + 6.0 * h_try * (f0 + f1)) / 15.0
                scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
                err = float(np.sqrt(np.mean((est / scale) ** 2)))
                if not np.isfinite(err) or err > 1.0:
                    rejected += 1
                    just_rejected = True
                    h = h_try * (0.1 if not np.isfinite(err) else max(0.1, 0.8 * err ** (-1 / 3)))
                    continue
                grow = 1.0 if just_rejected else 5.0
                just_rejected = False
                if not last:  # a step shortened to land on an output time says little
                    h = h_try * min(grow, max(0.2, 0.8 * max(err, 1e-10) ** (-1 / 3)))
            steps += 1
            t, y, f0 = t_new, y_new, f1
        out[k] = y
    return out, {"steps": steps, "rejected": rejected}


# -- public entry point --------------------------------------------------------------------------
def solve_gpme(
    grid: CellGrid,
    k: ArrayFn,
    u0: np.ndarray | Callable[..., np.ndarray],
    times: Sequence[float],
    bcs: Mapping[str, Boundary] | None = None,
    *,
    kirchhoff: ArrayFn | None = None,
    capacity: ArrayFn | None = None,
    source: Callable[..., np.ndarray] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    dt: float | None = None,
) -> GPMEResult:
    """Solve ``c(u) u_t = div(k(u) grad u) + s(t, x, u)`` on ``grid`` by finite volumes and RKC2.

    Parameters
    ----------
    grid:
        The cells; periodic axes need no boundary condition.
    k:
        Diffusivity k(u) >= 0, vectorised over numpy arrays.
    u0:
        Initial cell values (array of shape ``grid.n``) or a function of the cell-centre
        coordinates (one array per axis).
    times:
        Output times; the first is the initial time.
    bcs:
        Side name -> :class:`Boundary` for each side of each non-periodic axis.
    kirchhoff:
        K(u) = int_0^u k(v) dv, vectorised; when given the flux is -grad K(u) (exact face means of
        k; use it for degenerate or discontinuous k).
    capacity:
        c(u) > 0; the scheme advances ``du_i/dt = (div_i + s_i) / c(u_i)``, which conserves
        int b(u) (b' = c) in the time-continuous limit and to the time-integration tolerance.
    source:
        ``s(t, u, *centres)`` -> array of shape ``grid.n``.
    rtol, atol, dt:
        Error tolerances of the adaptive RKC2 steps, or a fixed step ``dt``.
    """
    bcs = dict(bcs or {})
    for axis in range(grid.dim):
        for side in _SIDES[axis]:
            if grid.periodic[axis]:
                if side in bcs:
                    raise ParameterError(f"axis {axis} is periodic: no boundary condition {side!r}")
            elif side not in bcs:
                raise ParameterError(f"missing boundary condition on {side!r}")
    unknown = set(bcs) - {s for pair in _SIDES[: grid.dim] for s in pair}
    if unknown:
        raise ParameterError(f"unknown boundary sides {sorted(unknown)}")
    op = _GPMEOperator(grid, k, kirchhoff, capacity, source, bcs)
    y0 = u0(*op.mesh) if callable(u0) else np.asarray(u0, dtype=float)
    y0 = np.array(np.broadcast_to(y0, grid.n), dtype=float)
    u, counts = rkc_integrate(op, op.spectral_radius, y0, times, rtol=rtol, atol=atol, dt=dt)
    return GPMEResult(
        grid=grid,
        times=np.asarray(times, dtype=float),
        u=u,
        steps=counts["steps"],
        rejected=counts["rejected"],
        evaluations=op.evaluations,
    )
