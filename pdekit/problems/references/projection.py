"""Incompressible Navier-Stokes on a 2D staggered (MAC) grid: Chorin's projection method.

The classical reference for grid flow learners: density 1, viscosity ``nu``,

    u_t + (u . grad) u = -grad p + nu lap u,    div u = 0,

on a :class:`~pdekit.problems.mac.MacScene` (solid cells with prescribed velocities: walls, a
lid, obstacles, inflows; :class:`ProjectionSolver`) or on a fully periodic
:class:`~pdekit.geometries.Grid` (:class:`PeriodicProjectionSolver`). Arrays follow
:mod:`pdekit.problems.mac`: ``(H, W)``, 'ij' indexing, ``u`` on x-faces, ``v`` on y-faces,
``p`` at cell centres.

Scheme (non-incremental Chorin projection, explicit in time). One step from u^n:

1. every non-fluid velocity sample takes its scene value (:meth:`MacScene.impose`: wall faces
   the solid's normal velocity, ghosts mirrored for no-slip);
2. predictor at FLUID samples only, u* = u^n + dt F, where F = -(u . grad) u + nu lap u by
   second-order central differences: advection in the advective MAC form (the other component
   interpolated to the sample by a 4-point average, the derivatives of the component itself
   by centred differences over 2 h), the Laplacian by the 5-point stencil. Time: Adams-Bashforth
   2, F = (1 + r/2) F^n - (r/2) F^(n-1) with r = dt_n / dt_(n-1) (``scheme="ab2"``, the
   default; the first step of a history is forward Euler), or forward Euler throughout
   (``scheme="euler"``);
3. pressure Poisson equation on FLUID cells, div grad phi = div u* / dt, where grad phi lives
   on FLUID faces only: faces next to a solid keep their prescribed normal velocity
   (homogeneous Neumann for phi). The sparse matrix is assembled and LU-factorised once; each
   connected fluid region has one constant null vector, removed by pinning one cell per region,
   and the right-hand side is made compatible by subtracting its mean over each region (its sum
   is the net prescribed flux through the region's boundary, zero up to round-off: a scene
   whose prescribed flux does not balance is refused);
4. correction u^(n+1) = u* - dt grad phi on FLUID faces, then the scene values again. The
   discrete divergence (:func:`pdekit.problems.mac.divergence`) of u^(n+1) vanishes on every
   fluid cell to the round-off of the sparse solve (tested).

Outflow (scenes with :attr:`~pdekit.problems.mac.MacScene.outflow` cells, an outlet at the
high-x end): after the predictor the OUTFLOW samples take the zero-gradient value (copied from
upstream), then the normal velocities through the outlet plane (:attr:`MacScene.outlet`) of each
fluid region are shifted by one constant so that the region's net boundary flux is zero, and the
Poisson equation is solved with them as prescribed normal velocities (homogeneous Neumann for
phi, as on walls). This is the usual global mass correction of outflow boundaries (Ferziger &
Peric, "Computational Methods for Fluid Dynamics", scale the outlet velocities by the ratio of
the fluxes; a shift is used here, which also works from rest, where the outlet flux of the
first predictor is zero). Step 4 keeps the corrected outlet velocities (the other
scene values are imposed relative to them), so u^(n+1) is divergence-free on every fluid cell,
the last column included, and the zero-gradient condition holds for the predictor: after the
correction it is off by O(dt) (the pressure correction of the last fluid face). A region with
outlet faces is not subject to the flux check.

The returned pressure is phi (mean zero over each fluid region, 0 in solids). Because every term
is explicit and F vanishes off the fluid samples, a step from a discretely divergence-free u^n
is exactly forward Euler or AB2 applied to the projected semi-discrete system u' = P F(u) (P the
discrete projection; the boundary values are algebraic functions of the fluid values): there is
no splitting error, the incremental form (phi = p^(n+1) - p^n, with -grad p^n in the predictor)
gives the same velocity, and phi is the semi-discrete pressure p(u^n) = (D G)^-1 D F(u^n) for a
forward Euler step, the combination 3/2 p(u^n) - 1/2 p(u^(n-1)) for an AB2 step: the pressure
at t_n + dt/2 to O(dt^2). A non-divergence-free initial state is projected by the first step. A
steady state of the step does not depend on dt or the time scheme: it is the discrete steady
Navier-Stokes solution (tested to 1e-10).

Orders: second order in space on periodic boxes and grid-aligned walls (measured on
Taylor-Green, dt ~ h^2: velocity 1.92, 1.98 over n = 16, 32, 64; pressure 1.93, 1.99; the
lid-driven cavity converges at about 2.3 towards the project's 128-cell Newton reference); the
ghost mirror is the classical staircase boundary, first order on curved or oblique walls.
Time, for the velocity: second order with AB2, first with forward Euler (measured 2.03-2.07 and
1.03-1.15).

Stability (explicit diffusion, :func:`diffusion_limit`): forward Euler needs
dt <= 1 / (2 nu (1/h_x^2 + 1/h_y^2)) (h^2 / (4 nu) on square cells); AB2, whose stability
region reaches only -1 on the negative real axis, half of that (h^2 / (8 nu)). A larger dt is
refused. Advection by central differences adds the usual CFL condition ``dt <= cfl h / |u|``
(:func:`stable_dt`); a run that stops being finite raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla
import torch

from pdekit.errors import ConvergenceError, ParameterError
from pdekit.geometries.grid import Grid
from pdekit.problems.mac import FLUID, MacScene

#: time schemes and their order for the velocity
SCHEMES = {"ab2": 2, "euler": 1}
#: spatial order of the stencils (grid-aligned walls, periodic boxes)
SPACE_ORDER = 2
#: fraction of the forward Euler diffusion limit each scheme is stable to (real-axis extent of
#: the stability region / 2: Euler reaches -2, AB2 -1)
_DIFFUSION_FRACTION = {"ab2": 0.5, "euler": 1.0}
#: relative tolerance of the prescribed-flux balance of a fluid region
FLUX_RTOL = 1e-10


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ParameterError(f"scheme must be one of {sorted(SCHEMES)}; got {scheme!r}")


def _as_float(value) -> float:
    """``value`` as a float, NaN where it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _positive(name: str, value) -> float:
    """``value`` as a float, which must be finite and > 0 (ParameterError naming ``name``)."""
    x = _as_float(value)
    if not (math.isfinite(x) and x > 0):
        raise ParameterError(f"{name} must be a finite number > 0; got {value!r}")
    return x


def _spacing(where: MacScene | Grid) -> tuple[float, float]:
    grid = where.grid if isinstance(where, MacScene) else where
    hx, hy = (float(h) for h in grid.spacing)
    return hx, hy


def diffusion_limit(where: MacScene | Grid, nu: float, scheme: str = "ab2") -> float:
    """The largest stable dt of the explicit viscous term on the layout of ``where`` (a scene or
    a grid): 1 / (2 nu (1/h_x^2 + 1/h_y^2)) for forward Euler, half of it for AB2 (module
    docstring); infinite for nu = 0."""
    _check_scheme(scheme)
    if not (math.isfinite(nu) and nu >= 0):
        raise ParameterError(f"nu must be finite and >= 0; got {nu}")
    hx, hy = _spacing(where)
    if nu == 0:
        return math.inf
    return _DIFFUSION_FRACTION[scheme] / (2.0 * nu * (1.0 / hx**2 + 1.0 / hy**2))


def stable_dt(
    where: MacScene | Grid, nu: float, speed: float, cfl: float = 0.5, scheme: str = "ab2"
) -> float:
    """The usual explicit time step min(cfl h / speed, diffusion limit), h the smaller spacing.

    The diffusion limit is 0.25 h^2 / nu for forward Euler and 0.125 h^2 / nu for AB2 on square
    cells (:func:`diffusion_limit`). ``speed`` is the largest velocity magnitude expected (the
    lid speed of a cavity); 0 leaves the diffusion limit alone.
    """
    _positive("nu", nu)
    if not (math.isfinite(speed) and speed >= 0):
        raise ParameterError(f"speed must be finite and >= 0; got {speed}")
    if not (math.isfinite(cfl) and 0 < cfl <= 1):
        raise ParameterError(f"cfl must be in (0, 1]; got {cfl}")
    limit = diffusion_limit(where, nu, scheme)
    if speed > 0:
        limit = min(limit, cfl * min(_spacing(where)) / speed)
    return limit


@dataclass
class Snapshots:
    """States of :meth:`ProjectionSolver.run` at the output times: ``t`` (K,), ``u``, ``v``,
    ``p`` (K, H, W); ``steps`` time steps taken in all."""

    t: np.ndarray
    u: np.ndarray
    v: np.ndarray
    p: np.ndarray
    steps: int


@dataclass
class SteadyState:
    """Result of :meth:`ProjectionSolver.run_to_steady`: the last state, the time reached, the
    steps taken and the last rate of change ``max |u^(n+1) - u^n| / dt`` over fluid samples."""

    u: np.ndarray
    v: np.ndarray
    p: np.ndarray
    t: float
    steps: int
    change: float


def _roll(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``a`` moved by k along ``axis``: out[i] = a[i - k] (wraps, as mac._shift)."""
    return np.roll(a, k, axis=axis)


def fluid_poisson(fluid: np.ndarray, faces, spacing):
    """The pressure Poisson operator of a MAC layout (2D or 3D), factorised: the graph
    Laplacian A (positive semi-definite) of the ``fluid`` cells coupled through the FLUID faces
    ``faces[k]`` (bool, the faces normal to axis k on the low side of each cell), so that
    div(G phi) = -A phi; one cell per connected region pinned, the rest LU-factorised.

    Returns (number of regions, region of each fluid cell, region sizes, the unpinned cells,
    the LU factors of A on them or None): what :func:`solve_pressure` reads."""
    n = int(fluid.sum())
    idx = -np.ones(fluid.shape, dtype=np.int64)
    idx[fluid] = np.arange(n)
    rows, cols, vals = [], [], []
    for axis, (mask, h) in enumerate(zip(faces, spacing)):
        a = _roll(idx, 1, axis)[mask]  # the cell on the low side of the face
        b = idx[mask]
        if (a < 0).any() or (b < 0).any():
            raise ParameterError("a FLUID face lies next to a solid cell (inconsistent scene)")
        w = np.full(a.size, 1.0 / h**2)
        rows += [a, a, b, b]
        cols += [a, b, a, b]
        vals += [w, -w, -w, w]
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    A.sum_duplicates()
    n_regions, region = csgraph.connected_components(A, directed=False)
    size = np.bincount(region, minlength=n_regions)
    pinned = np.zeros(n, dtype=bool)
    pinned[np.unique(region, return_index=True)[1]] = True
    keep = np.flatnonzero(~pinned)
    lu = None
    if keep.size:
        lu = spla.splu(A[keep][:, keep].tocsc(), permc_spec="MMD_AT_PLUS_A")
    return n_regions, region, size, keep, lu


def solve_pressure(poisson, fluid: np.ndarray, div: np.ndarray, dt: float) -> np.ndarray:
    """phi (on the layout of ``fluid``, 0 in solids, mean zero over each fluid region) with
    A phi = div / dt on the fluid cells (``poisson``: :func:`fluid_poisson`; ``div`` the
    divergence at every cell), the right-hand side made compatible per region first."""
    n_regions, region, size, keep, lu = poisson
    rhs = -div[fluid] / dt
    rhs -= (np.bincount(region, rhs, minlength=n_regions) / size)[region]
    x = np.zeros(rhs.size)
    if lu is not None:
        x[keep] = lu.solve(rhs[keep])
    phi = np.zeros(fluid.shape)
    phi[fluid] = x - (np.bincount(region, x, minlength=n_regions) / size)[region]
    return phi


class ProjectionSolver:
    """Chorin's projection method on a :class:`~pdekit.problems.mac.MacScene` (module docstring).

    Parameters
    ----------
    scene:
        Solid cells, their velocities and the layout grid. Every connected fluid region's
        prescribed boundary flux must balance (ParameterError otherwise).
    nu:
        Kinematic viscosity, finite and > 0 (density is 1).
    dt:
        Time step, > 0 and at most :func:`diffusion_limit` of the scheme.
    scheme:
        ``"ab2"`` (Adams-Bashforth 2, second order; default) or ``"euler"`` (first order).

    Notes
    -----
    :meth:`step` advances one step; :meth:`run` to output times; :meth:`run_to_steady` until the
    flow stops changing. Velocities are numpy float64 ``(H, W)`` arrays (torch tensors are
    accepted as input).
    """

    def __init__(self, scene: MacScene, nu: float, dt: float, *, scheme: str = "ab2"):
        if not isinstance(scene, MacScene):
            raise ParameterError(
                f"scene must be a MacScene (PeriodicProjectionSolver takes a periodic Grid); "
                f"got {type(scene).__name__}"
            )
        self.scene = scene
        roles = scene.roles
        self._outlet = scene.outlet["u"].numpy() if scene.has_outflow else None
        self._setup(
            scene.grid,
            scene.fluid.numpy(),
            (roles["u"] == FLUID).numpy(),
            (roles["v"] == FLUID).numpy(),
            nu,
            dt,
            scheme,
            scene.name,
        )

    # -- set-up ----------------------------------------------------------------------------------
    def _setup(self, grid, fluid, fluid_u, fluid_v, nu, dt, scheme, name) -> None:
        _check_scheme(scheme)
        self.nu, self.dt = _positive("nu", nu), _positive("dt", dt)
        self.grid, self.scheme, self.name = grid, scheme, name
        self.shape = tuple(grid.n)
        self.hx, self.hy = _spacing(grid)
        limit = diffusion_limit(grid, self.nu, scheme)
        if self.dt > limit * (1 + 1e-12):
            raise ParameterError(
                f"dt = {self.dt:.6g} exceeds the explicit diffusion limit {limit:.6g} of scheme "
                f"{scheme!r} (nu = {self.nu:g}, h = ({self.hx:.4g}, {self.hy:.4g})); allowed: "
                f"0 < dt <= {limit:.6g} (see stable_dt)"
            )
        self.fluid = np.asarray(fluid, dtype=bool)
        self.fluid_u = np.asarray(fluid_u, dtype=bool)
        self.fluid_v = np.asarray(fluid_v, dtype=bool)
        self._build_poisson()
        self._setup_outlet()
        self._check_flux()
        self._history = None

    def _setup_outlet(self) -> None:
        """The fluid region of every outlet face (through its upstream fluid cell), and the
        number of outlet faces per region."""
        outlet = getattr(self, "_outlet", None)
        self._outlet_regions = np.zeros(self._n_regions, dtype=bool)
        if outlet is None or not outlet.any():
            self._outlet = None
            return
        idx = -np.ones(self.shape, dtype=np.int64)
        idx[self.fluid] = np.arange(int(self.fluid.sum()))
        upstream = _roll(idx, 1, 0)[outlet]  # the fluid cell each outlet face leaves
        self._outlet_region = self._region[upstream]
        self._outlet_count = np.bincount(self._outlet_region, minlength=self._n_regions)
        self._outlet_regions = self._outlet_count > 0

    def _build_poisson(self) -> None:
        """:func:`fluid_poisson` of the fluid cells and FLUID faces."""
        p = fluid_poisson(self.fluid, (self.fluid_u, self.fluid_v), (self.hx, self.hy))
        self._poisson = p
        self._n_regions, self._region, self._region_size, self._keep, self._lu = p

    def _check_flux(self) -> None:
        """Refuse a scene whose prescribed boundary flux does not balance in some fluid region:
        the divergence of the scene values alone, summed over the region's cells, is its net
        outflow."""
        zero = np.zeros(self.shape)
        u, v = self._impose(zero, zero.copy())
        area = self.hx * self.hy
        div = self._divergence(u, v)[self.fluid] * area
        net = np.bincount(self._region, div, minlength=self._n_regions)
        gross = np.bincount(self._region, np.abs(div), minlength=self._n_regions)
        bad = (np.abs(net) > FLUX_RTOL * gross + 1e-14) & ~self._outlet_regions
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ParameterError(
                f"scene {self.name!r}: the prescribed boundary flux (wall_velocity on wall "
                f"faces) of fluid region {k} does not balance: net outflow {net[k]:.6g} (sum of "
                f"|face fluxes| {gross[k]:.6g}); an incompressible region needs net flux 0 "
                f"(within {FLUX_RTOL:g} relative)"
            )

    # -- operators -------------------------------------------------------------------------------
    def _impose(
        self, u: np.ndarray, v: np.ndarray, outlet: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scene values at every non-fluid sample (:meth:`MacScene.impose`; ``outlet=False``
        keeps the outlet faces' values)."""
        uu, vv = self.scene.impose(torch.from_numpy(u), torch.from_numpy(v), outlet=outlet)
        return uu.numpy(), vv.numpy()

    def _balance_outlet(self, u: np.ndarray, v: np.ndarray) -> None:
        """Shift the outlet faces' u (in place) by one constant per fluid region so that the
        region's net boundary flux vanishes (module docstring)."""
        if self._outlet is None:
            return
        div = self._divergence(u, v)[self.fluid] * (self.hx * self.hy)
        net = np.bincount(self._region, div, minlength=self._n_regions)
        count = np.maximum(self._outlet_count, 1)
        u[self._outlet] -= (net / (count * self.hy))[self._outlet_region]

    def _divergence(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """:func:`pdekit.problems.mac.divergence` in numpy (all cells; meaningful on fluid)."""
        return (_roll(u, -1, 0) - u) / self.hx + (_roll(v, -1, 1) - v) / self.hy

    def tendency(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F = -(u . grad) u + nu lap u at FLUID samples (0 elsewhere), for velocities whose
        non-fluid samples already hold the scene values."""
        hx, hy, nu = self.hx, self.hy, self.nu
        out = []
        for comp, other, axis, mask in ((u, v, 0, self.fluid_u), (v, u, 1, self.fluid_v)):
            hn, ht = (hx, hy) if axis == 0 else (hy, hx)  # along the normal / tangential axis
            t = 1 - axis
            up, down = _roll(comp, -1, axis), _roll(comp, 1, axis)  # comp[i +- 1] along axis
            right, left = _roll(comp, -1, t), _roll(comp, 1, t)  # comp[j +- 1] across
            # the other component at this sample: mean of its 4 samples around it
            pair = other + _roll(other, -1, t)
            other_here = 0.25 * (pair + _roll(pair, 1, axis))
            advection = comp * (up - down) / (2 * hn) + other_here * (right - left) / (2 * ht)
            laplacian = (up - 2 * comp + down) / hn**2 + (right - 2 * comp + left) / ht**2
            out.append(np.where(mask, nu * laplacian - advection, 0.0))
        return out[0], out[1]

    def _project(self, u: np.ndarray, v: np.ndarray, dt: float):
        """phi with div(u - dt G phi) = 0 on fluid cells; u, v corrected in place on FLUID
        faces. Returns phi (H, W), mean zero over each fluid region, 0 in solids."""
        phi = solve_pressure(self._poisson, self.fluid, self._divergence(u, v), dt)
        for comp, axis, mask, h in ((u, 0, self.fluid_u, self.hx), (v, 1, self.fluid_v, self.hy)):
            grad = (phi - _roll(phi, 1, axis)) / h
            comp[mask] -= dt * grad[mask]
        return phi

    def _advance(self, u, v, dt, previous):
        """One step from imposed (u, v); ``previous`` = (Fu, Fv, dt) of the last step or None
        (forward Euler). Returns u, v, phi and this step's (Fu, Fv, dt). An unstable run
        overflows quietly here; the callers check that the state stays finite."""
        with np.errstate(over="ignore", invalid="ignore"):
            fu, fv = self.tendency(u, v)
            if previous is None or self.scheme == "euler":
                gu, gv = fu, fv
            else:
                pu, pv, dt_prev = previous
                r = dt / dt_prev
                a, b = 1 + 0.5 * r, -0.5 * r
                gu, gv = a * fu + b * pu, a * fv + b * pv
            un = u + dt * gu
            vn = v + dt * gv
            if self._outlet is not None:
                un, vn = self._impose(un, vn)  # zero-gradient outflow from the predictor
                self._balance_outlet(un, vn)
            phi = self._project(un, vn, dt)
            un, vn = self._impose(un, vn, outlet=False)
        return un, vn, phi, (fu, fv, dt)

    # -- public ----------------------------------------------------------------------------------
    def _as_field(self, a, name: str) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        arr = np.array(a, dtype=np.float64)  # a copy: the solver never writes into the input
        if arr.shape != self.shape:
            raise ParameterError(f"{name} needs shape {self.shape}; got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ParameterError(f"{name} has non-finite values")
        return arr

    def impose(self, u, v) -> tuple[np.ndarray, np.ndarray]:
        """Copies of ``u``, ``v`` with the scene values at every non-fluid sample."""
        return self._impose(self._as_field(u, "u"), self._as_field(v, "v"))

    def reset(self) -> None:
        """Forget the previous step: the next :meth:`step` is a forward Euler start."""
        self._history = None

    def step(self, u, v, dt: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One time step of size ``dt`` (default ``self.dt``; at most ``self.dt``) from (u, v).

        Returns (u, v, p), new float64 arrays (H, W). With AB2 the previous tendency is used
        when (u, v) equal the arrays the previous call returned (a continued history);
        otherwise the step is a forward Euler start.
        """
        dt = self._check_dt(dt)
        previous = None
        h = self._history
        if h is not None and np.array_equal(u, h[0]) and np.array_equal(v, h[1]):
            u, v, previous = h[0], h[1], h[2]
        else:
            u, v = self.impose(u, v)
        un, vn, phi, tend = self._advance(u, v, dt, previous)
        self._check_finite(un, vn, None)
        self._history = (un.copy(), vn.copy(), tend)
        return un, vn, phi

    def pressure(self, u, v) -> np.ndarray:
        """The pressure that keeps a divergence-free (u, v) divergence-free: phi of a forward
        Euler step from it (the semi-discrete pressure at this time)."""
        u, v = self.impose(u, v)
        return self._advance(u, v, self.dt, None)[2]

    def _check_dt(self, dt) -> float:
        if dt is None:
            return self.dt
        if not (math.isfinite(dt) and 0 < dt <= self.dt * (1 + 1e-12)):
            raise ParameterError(f"dt must be in (0, {self.dt:.6g}] (the solver's dt); got {dt}")
        return float(dt)

    def _check_finite(self, u, v, t: float | None) -> None:
        if not (np.isfinite(u).all() and np.isfinite(v).all()):
            when = "" if t is None else f" at t = {t:.6g}"
            raise ParameterError(
                f"the solution stopped being finite{when}: dt = {self.dt:.6g} is too large for "
                f"the flow speed (advective limit; see stable_dt)"
            )

    def run(self, u0, v0, t_end: float, times=None) -> Snapshots:
        """Advance (u0, v0) from t = 0 to ``t_end``, recording the state at ``times`` (sorted,
        in [0, t_end]; default: t_end only). Each interval between output times is split into
        equal steps of at most ``dt``; the AB2 history runs on across outputs. The pressure at
        t = 0 is :meth:`pressure` of the initial state."""
        if not (math.isfinite(t_end) and t_end > 0):
            raise ParameterError(f"t_end must be finite and > 0; got {t_end}")
        times = np.array([t_end] if times is None else times, dtype=float).reshape(-1)
        if times.size == 0 or np.any(np.diff(times) <= 0) or times[0] < 0 or times[-1] > t_end:
            raise ParameterError(f"times must increase strictly within [0, t_end = {t_end}]")
        u, v = self.impose(u0, v0)
        out_u, out_v, out_p = [], [], []
        t, steps, previous, p = 0.0, 0, None, None
        for target in times:
            interval = target - t
            if interval > 0:
                count = max(1, math.ceil(interval / self.dt - 1e-9))
                dt = interval / count
                for k in range(1, count + 1):
                    u, v, p, previous = self._advance(u, v, dt, previous)
                    if k % 100 == 0:
                        self._check_finite(u, v, t + k * dt)
                steps += count
                t = float(target)
                self._check_finite(u, v, t)
            elif p is None:
                p = self._advance(u, v, self.dt, None)[2]
            out_u.append(u.copy())
            out_v.append(v.copy())
            out_p.append(p.copy())
        self._history = (u.copy(), v.copy(), previous) if previous is not None else None
        return Snapshots(times, np.stack(out_u), np.stack(out_v), np.stack(out_p), steps)

    def run_to_steady(
        self,
        tol: float = 1e-6,
        max_time: float = 100.0,
        u0=None,
        v0=None,
        check_every: int = 100,
    ) -> SteadyState:
        """Step from (u0, v0) (default: rest) until ``max |u^(n+1) - u^n| / dt`` over the fluid
        samples of both components falls below ``tol``; raises ConvergenceError if ``max_time``
        passes first. ``check_every``: steps between finiteness checks."""
        if not (math.isfinite(tol) and tol > 0):
            raise ParameterError(f"tol must be finite and > 0; got {tol}")
        if not (math.isfinite(max_time) and max_time > 0):
            raise ParameterError(f"max_time must be finite and > 0; got {max_time}")
        zero = np.zeros(self.shape)
        u, v = self.impose(zero if u0 is None else u0, zero if v0 is None else v0)
        fu, fv, dt = self.fluid_u, self.fluid_v, self.dt
        t, steps, previous, change = 0.0, 0, None, math.inf
        max_steps = math.ceil(max_time / dt - 1e-9)
        while steps < max_steps:
            un, vn, p, previous = self._advance(u, v, dt, previous)
            steps += 1
            t = steps * dt
            with np.errstate(over="ignore", invalid="ignore"):
                du = np.abs(un[fu] - u[fu]).max(initial=0.0)
                dv = np.abs(vn[fv] - v[fv]).max(initial=0.0)
            change = max(float(du), float(dv)) / dt
            u, v = un, vn
            if steps % check_every == 0 or not math.isfinite(change):
                self._check_finite(u, v, t)
            if change < tol:
                self._history = (u.copy(), v.copy(), previous)
                return SteadyState(u, v, p, t, steps, change)
        raise ConvergenceError(
            f"{self.name}: no steady state within max_time = {max_time:g} ({steps} steps of dt "
            f"= {dt:.4g}): max |du/dt| = {change:.3g} > tol = {tol:g}"
        )


class PeriodicProjectionSolver(ProjectionSolver):
    """The projection method on a fully periodic 2D :class:`~pdekit.geometries.Grid`: the same
    stencils and Poisson solve with every cell and face fluid (rolls wrap around the box), no
    scene values. Arrays: ``u`` at ``face_x``, ``v`` at ``face_y``, ``p`` at ``center``, each
    ``grid.n``. Parameters as :class:`ProjectionSolver`, ``grid`` in place of the scene."""

    def __init__(self, grid: Grid, nu: float, dt: float, *, scheme: str = "ab2"):
        if not isinstance(grid, Grid) or grid.dim != 2 or not all(grid.periodic):
            raise ParameterError(f"grid must be a 2D Grid periodic on both axes; got {grid!r}")
        self.scene = None
        self._outlet = None
        every = np.ones(grid.n, dtype=bool)
        self._setup(grid, every, every, every, nu, dt, scheme, "periodic box")

    def _impose(self, u, v, outlet: bool = True):
        return u, v


# -- control: the classical comparator of a control tuned through a neural rollout -------------
@dataclass
class ControlSearch:
    """:func:`projection_control`'s answer: the control ``theta`` found, the ``residual`` there,
    the time step ``dt`` of every run, and each run in order (``history``: ``theta`` and
    ``residual``)."""

    theta: float
    residual: float
    dt: float
    history: dict[str, list[float]]


def _finite(name: str, value) -> float:
    """``value`` as a finite float (ParameterError naming ``name`` otherwise)."""
    x = _as_float(value)
    if not math.isfinite(x):
        raise ParameterError(f"{name} must be a finite real number; got {value!r}")
    return x


def _control_scene(scene_of, theta: float) -> MacScene:
    """``scene_of(theta)``, which must be a :class:`MacScene`."""
    if not callable(scene_of):
        raise ParameterError(f"scene_of must be a function theta -> MacScene; got {scene_of!r}")
    scene = scene_of(theta)
    if not isinstance(scene, MacScene):
        raise ParameterError(
            f"scene_of must return a MacScene; scene_of({theta:g}) is a {type(scene).__name__}"
        )
    return scene


def scene_speed(scene: MacScene) -> float:
    """The largest magnitude of the velocities a scene prescribes (a lid's or an inflow's
    speed): the ``speed`` of :func:`stable_dt` for a flow driven by them."""
    w = scene.wall_velocity
    return float(torch.sqrt(w[0] ** 2 + w[1] ** 2).max())


def _final_value(scene: MacScene, nu, dt, t_end, fn, scheme: str, name: str) -> float:
    """``fn(u, v, p)`` (the argument ``name``) of the projection solver's state at ``t_end`` on
    ``scene`` from rest."""
    zero = np.zeros(scene.grid.n)
    run = ProjectionSolver(scene, nu, dt, scheme=scheme).run(zero, zero, t_end)
    value = fn(run.u[-1], run.v[-1], run.p[-1])
    out = _as_float(value)
    if not math.isfinite(out):
        raise ParameterError(f"{name} must return a finite real number; got {value!r}")
    return out


def control_objective(
    scene_of,
    theta: float,
    nu: float,
    t_end: float,
    objective,
    dt: float | None = None,
    *,
    scheme: str = "ab2",
) -> float:
    """The objective of the projection solver's flow at ``t_end`` under the control ``theta``.

    Runs :class:`ProjectionSolver` on the scene ``scene_of(theta)`` from rest (every fluid
    velocity 0, the scene's prescribed velocities switched on at t = 0: an impulsive start) to
    ``t_end`` and returns ``objective(u, v, p)`` of the final state: the classical counterpart
    of the objective that :func:`pdekit.solvers.neural_stagger.optimise_control` evaluates on a
    rollout of a trained network.

    Parameters
    ----------
    scene_of:
        ``theta`` (a float) -> :class:`~pdekit.problems.mac.MacScene` whose prescribed
        velocities depend on it, e.g. ``lambda s: cavity_scene(32, lid=s)``.
    theta:
        The control, a finite real number.
    nu:
        Kinematic viscosity, finite and > 0.
    t_end:
        Final time, finite and > 0.
    objective:
        ``(u, v, p) -> float`` of the final state: numpy float64 ``(H, W)`` arrays on the MAC
        layout (:mod:`pdekit.problems.mac`: ``u`` on x-faces, ``v`` on y-faces, ``p`` at cell
        centres, mean zero over each fluid region).
    dt:
        Time step, > 0 and at most the diffusion limit (:func:`diffusion_limit`); default:
        :func:`stable_dt` of the scene at its own speed (:func:`scene_speed`). A run compared
        across controls is best given one ``dt`` for all (:func:`projection_control`).
    scheme:
        ``"ab2"`` (default) or ``"euler"``.

    Returns
    -------
    float
        ``objective(u, v, p)`` at ``t_end``.
    """
    theta = _finite("theta", theta)
    nu, t_end = _positive("nu", nu), _positive("t_end", t_end)
    if not callable(objective):
        raise ParameterError(f"objective must be a function (u, v, p) -> float; got {objective!r}")
    scene = _control_scene(scene_of, theta)
    if dt is None:
        dt = stable_dt(scene, nu, scene_speed(scene), scheme=scheme)
    return _final_value(scene, nu, _positive("dt", dt), t_end, objective, scheme, "objective")


def projection_control(
    scene_of,
    theta0: float,
    theta1: float,
    nu: float,
    t_end: float,
    residual,
    *,
    dt: float | None = None,
    xtol: float = 1e-10,
    max_runs: int = 60,
    scheme: str = "ab2",
) -> ControlSearch:
    """The control ``theta`` in ``[theta0, theta1]`` whose flow at ``t_end`` makes ``residual``
    vanish, found with the projection solver alone (no gradients).

    Each trial runs :func:`control_objective` with ``residual`` as the objective; a target
    ``q*`` for a quantity ``q`` of the flow is matched by ``residual = q - q*``. The search is
    Brent's method (:func:`scipy.optimize.brentq`: inverse quadratic interpolation and secant
    steps, safeguarded by bisection; R. P. Brent, "Algorithms for Minimization without
    Derivatives", 1973, ch. 4): derivative-free, it keeps a bracket of a sign change of the
    residual, so it converges whenever the two ends bracket one, superlinearly where the
    residual is smooth (a handful of runs to 1e-10).

    Every run uses one time step, so the residual is the same discretisation at every trial:
    with a step that followed ``theta`` the number of steps would jump with it, and so would the
    residual (by its time error). Default: :func:`stable_dt` at the faster of the two end scenes
    (:func:`scene_speed`), stable at every control in between when the prescribed speeds grow
    with ``|theta|`` between them (a lid or an inflow times ``theta``).

    Parameters
    ----------
    scene_of:
        ``theta`` -> :class:`~pdekit.problems.mac.MacScene` (as :func:`control_objective`).
    theta0, theta1:
        The ends of the bracket, finite and distinct; the residual must change sign between
        them (or vanish at one of them).
    nu, t_end:
        Viscosity and final time, finite and > 0.
    residual:
        ``(u, v, p) -> float`` of the final state (numpy float64 arrays on the MAC layout).
    dt:
        Time step of every run (see above).
    xtol:
        Absolute tolerance on ``theta``, > 0.
    max_runs:
        Solver runs at most, an integer >= 3 (ConvergenceError beyond).
    scheme:
        ``"ab2"`` (default) or ``"euler"``.

    Returns
    -------
    ControlSearch
        ``theta``, the residual there, ``dt`` and every run's ``theta`` and ``residual``.
    """
    from scipy.optimize import brentq

    theta0, theta1 = _finite("theta0", theta0), _finite("theta1", theta1)
    if theta0 == theta1:
        raise ParameterError(f"theta0 and theta1 must differ (a bracket); both are {theta0:g}")
    nu, t_end = _positive("nu", nu), _positive("t_end", t_end)
    xtol = _positive("xtol", xtol)
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 3:
        raise ParameterError(f"max_runs must be an integer >= 3; got {max_runs!r}")
    if not callable(residual):
        raise ParameterError(f"residual must be a function (u, v, p) -> float; got {residual!r}")
    _check_scheme(scheme)
    ends = (_control_scene(scene_of, theta0), _control_scene(scene_of, theta1))
    if dt is None:
        dt = min(stable_dt(s, nu, scene_speed(s), scheme=scheme) for s in ends)
    dt = _positive("dt", dt)
    known = dict(zip((theta0, theta1), ends))
    history: dict[str, list[float]] = {"theta": [], "residual": []}
    seen: dict[float, float] = {}

    def run(theta: float) -> float:
        theta = float(theta)
        if theta not in seen:
            if len(history["theta"]) >= max_runs:
                raise ConvergenceError(
                    f"projection_control: no control within xtol = {xtol:g} after max_runs = "
                    f"{max_runs} runs (last: theta = {theta:.12g})"
                )
            scene = known.get(theta) or _control_scene(scene_of, theta)
            seen[theta] = _final_value(scene, nu, dt, t_end, residual, scheme, "residual")
            history["theta"].append(theta)
            history["residual"].append(seen[theta])
        return seen[theta]

    r0, r1 = run(theta0), run(theta1)
    if r0 == 0.0 or r1 == 0.0:
        theta = theta0 if r0 == 0.0 else theta1
        return ControlSearch(theta, 0.0, dt, history)
    if (r0 > 0) == (r1 > 0):
        raise ParameterError(
            f"the residual has the same sign at theta0 = {theta0:g} ({r0:.6g}) and theta1 = "
            f"{theta1:g} ({r1:.6g}): [theta0, theta1] must bracket the control (a sign change "
            f"of the residual); widen it"
        )
    theta = brentq(run, theta0, theta1, xtol=xtol, maxiter=max_runs, full_output=False)
    return ControlSearch(float(theta), run(theta), dt, history)
