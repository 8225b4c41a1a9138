"""Incompressible Navier-Stokes on a 3D staggered (MAC) grid: Chorin's projection method.

The 3D twin of :mod:`pdekit.problems.references.projection` (read its docstring: the scheme,
the pressure, the stability limits are the same, one component more), on a
:class:`~pdekit.problems.mac3d.MacScene3d`: density 1, viscosity ``nu``, the scene's uniform
body force ``f`` on the fluid,

    u_t + (u . grad) u = -grad p + nu lap u + f,    div u = 0.

One step: the scene values at non-fluid samples (mirrored ghosts, second order on grid-aligned
walls); the predictor u* = u^n + dt F at FLUID samples, F = -(u . grad) u + nu lap u + f by
second-order central differences (advective MAC form, each other component averaged from its 4
samples around the sample; the 7-point Laplacian), Adams-Bashforth 2 in time (forward Euler for
the first step of a history, or throughout with ``scheme="euler"``); the pressure Poisson
equation on fluid cells through FLUID faces (homogeneous Neumann at walls; one cell per fluid
region pinned; sparse LU once); the correction, then the scene values again. The discrete
divergence of every step's velocity vanishes on fluid cells to the round-off of the solve.

Periodic axes of the scene wrap (the stencils use periodic shifts everywhere; on non-periodic
axes the solid cells at the ends keep every fluid stencil inside the layout). No inflow or
outflow: a scene's walls must not carry a net flux into a fluid region (checked).

Verified (``tests/problems/test_projection3d.py``): divergence-free to round-off; Poiseuille
flow in a square duct against its Fourier series (second order); a force balance at steady
state (the body force on the fluid equals the wall and obstacle drag computed independently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.problems.mac import FLUID
from pdekit.problems.mac3d import COMPONENTS, MacScene3d
from pdekit.problems.references.projection import (
    _DIFFUSION_FRACTION,
    FLUX_RTOL,
    _check_scheme,
    _positive,
    fluid_poisson,
    solve_pressure,
)


def _roll(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    return np.roll(a, k, axis=axis)


def diffusion_limit3d(scene: MacScene3d, nu: float, scheme: str = "ab2") -> float:
    """The largest stable dt of the explicit viscous term: 1 / (2 nu sum_k 1/h_k^2) for forward
    Euler, half of it for AB2."""
    _check_scheme(scheme)
    _positive("nu", nu)
    h = [float(x) for x in scene.grid.spacing]
    return _DIFFUSION_FRACTION[scheme] / (2.0 * nu * sum(1.0 / x**2 for x in h))


def stable_dt3d(scene: MacScene3d, nu: float, speed: float, cfl: float = 0.5, scheme="ab2"):
    """min(cfl h / speed, :func:`diffusion_limit3d`), h the smallest spacing; speed 0 leaves
    the diffusion limit alone."""
    if not (math.isfinite(speed) and speed >= 0):
        raise ParameterError(f"speed must be finite and >= 0; got {speed}")
    if not (math.isfinite(cfl) and 0 < cfl <= 1):
        raise ParameterError(f"cfl must be in (0, 1]; got {cfl}")
    limit = diffusion_limit3d(scene, nu, scheme)
    if speed > 0:
        limit = min(limit, cfl * float(min(scene.grid.spacing)) / speed)
    return limit


def duct_poiseuille(y, z, side: float, force: float, nu: float, terms: int = 200):
    """Steady flow u(y, z) in the square duct (0, side)^2 driven by the body force ``force``:
    nu lap u = -force, u = 0 on the walls; the Fourier series (White, "Viscous Fluid Flow",
    eq. 3-48) on (-a, a)^2, a = side / 2::

        u = 16 a^2 f / (nu pi^3) sum_{i odd} (-1)^((i-1)/2) [1 - cosh(i pi z'/2a) / cosh(i pi/2)]
            cos(i pi y'/2a) / i^3,   y' = y - a, z' = z - a

    (the cosh ratio written overflow-free): the closed form the solver is checked against."""
    a = side / 2
    yp, zp = np.asarray(y) - a, np.asarray(z) - a
    out = np.zeros(np.broadcast(yp, zp).shape)
    for i in range(1, 2 * terms, 2):
        s, t = abs(i * math.pi * zp / (2 * a)), i * math.pi / 2
        ratio = np.exp(s - t) * (1 + np.exp(-2 * s)) / (1 + math.exp(-2 * t))
        out += (-1) ** ((i - 1) // 2) * (1 - ratio) * np.cos(i * math.pi * yp / (2 * a)) / i**3
    return 16 * a**2 * force / (nu * math.pi**3) * out


@dataclass
class Snapshots3d:
    """States of :meth:`ProjectionSolver3d.run` at the output times: ``t`` (K,), ``u``, ``v``,
    ``w``, ``p`` (K, X, Y, Z); ``steps`` time steps taken in all."""

    t: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    p: np.ndarray
    steps: int


class ProjectionSolver3d:
    """Chorin's projection method on a :class:`~pdekit.problems.mac3d.MacScene3d` (module
    docstring). ``nu`` > 0; ``dt`` at most :func:`diffusion_limit3d` of the scheme."""

    def __init__(self, scene: MacScene3d, nu: float, dt: float, *, scheme: str = "ab2"):
        if not isinstance(scene, MacScene3d):
            raise ParameterError(f"scene must be a MacScene3d; got {type(scene).__name__}")
        _check_scheme(scheme)
        self.scene, self.scheme = scene, scheme
        self.nu, self.dt = _positive("nu", nu), _positive("dt", dt)
        limit = diffusion_limit3d(scene, self.nu, scheme)
        if self.dt > limit * (1 + 1e-12):
            raise ParameterError(
                f"dt = {self.dt:.6g} exceeds the explicit diffusion limit {limit:.6g} of scheme "
                f"{scheme!r} (nu = {self.nu:g}); allowed: 0 < dt <= {limit:.6g} (stable_dt3d)"
            )
        self.shape = tuple(scene.grid.n)
        self.h = [float(x) for x in scene.grid.spacing]
        self.fluid = scene.fluid.numpy()
        self.masks = [(scene.roles[c] == FLUID).numpy() for c in COMPONENTS]
        self.force = scene.body_force
        self._build_poisson()
        self._check_flux()
        self._history = None

    def _build_poisson(self) -> None:
        p = fluid_poisson(self.fluid, self.masks, self.h)
        self._poisson = p
        self._n_regions, self._region, self._region_size, self._keep, self._lu = p

    def _check_flux(self) -> None:
        zero = [np.zeros(self.shape) for _ in range(3)]
        div = self.divergence(self._impose(zero))[self.fluid] * math.prod(self.h)
        net = np.bincount(self._region, div, minlength=self._n_regions)
        gross = np.bincount(self._region, np.abs(div), minlength=self._n_regions)
        bad = np.abs(net) > FLUX_RTOL * gross + 1e-14
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ParameterError(
                f"scene {self.scene.name!r}: the walls' normal velocities carry a net flux "
                f"{net[k]:.6g} into fluid region {k}; an incompressible region needs 0"
            )

    # -- operators -----------------------------------------------------------------------------
    def _impose(self, vel):
        out = self.scene.impose(tuple(torch.from_numpy(np.ascontiguousarray(f)) for f in vel))
        return [f.numpy() for f in out]

    def divergence(self, vel) -> np.ndarray:
        """Divergence at every cell centre of (u, v, w) (meaningful on fluid cells)."""
        return sum((_roll(f, -1, k) - f) / self.h[k] for k, f in enumerate(vel))

    def tendency(self, vel) -> list[np.ndarray]:
        """F = -(u . grad) u + nu lap u + f at FLUID samples (0 elsewhere), for velocities
        whose non-fluid samples hold the scene values."""
        out = []
        for c, comp in enumerate(vel):
            adv = np.zeros(self.shape)
            lap = np.zeros(self.shape)
            for k in range(3):
                up, down = _roll(comp, -1, k), _roll(comp, 1, k)
                grad = (up - down) / (2 * self.h[k])
                if k == c:
                    speed = comp
                else:  # component k at this sample: the mean of its 4 samples around it
                    pair = vel[k] + _roll(vel[k], -1, k)
                    speed = 0.25 * (pair + _roll(pair, 1, c))
                adv += speed * grad
                lap += (up - 2 * comp + down) / self.h[k] ** 2
            out.append(np.where(self.masks[c], self.nu * lap - adv + self.force[c], 0.0))
        return out

    def _project(self, vel, dt: float) -> np.ndarray:
        phi = solve_pressure(self._poisson, self.fluid, self.divergence(vel), dt)
        for k, (comp, mask) in enumerate(zip(vel, self.masks)):
            comp[mask] -= dt * ((phi - _roll(phi, 1, k)) / self.h[k])[mask]
        return phi

    def _advance(self, vel, dt, previous):
        with np.errstate(over="ignore", invalid="ignore"):
            f = self.tendency(vel)
            if previous is None or self.scheme == "euler":
                g = f
            else:
                fp, dt_prev = previous
                r = dt / dt_prev
                g = [(1 + 0.5 * r) * a - 0.5 * r * b for a, b in zip(f, fp)]
            new = [v + dt * gk for v, gk in zip(vel, g)]
            phi = self._project(new, dt)
            new = self._impose(new)
        return new, phi, (f, dt)

    # -- public --------------------------------------------------------------------------------
    def _as_field(self, a, name: str) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        arr = np.array(a, dtype=np.float64)
        if arr.shape != self.shape:
            raise ParameterError(f"{name} needs shape {self.shape}; got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ParameterError(f"{name} has non-finite values")
        return arr

    def step(self, vel, dt: float | None = None):
        """One step from ``vel`` = (u, v, w); returns ([u, v, w], p). AB2 continues the history
        when ``vel`` are the arrays the previous call returned, else starts with forward Euler."""
        dt = self.dt if dt is None else float(dt)
        if not (math.isfinite(dt) and 0 < dt <= self.dt * (1 + 1e-12)):
            raise ParameterError(f"dt must be in (0, {self.dt:.6g}] (the solver's dt); got {dt}")
        h = self._history
        previous = None
        if h is not None and all(np.array_equal(a, b) for a, b in zip(vel, h[0])):
            vel, previous = h[0], h[1]
        else:
            vel = self._impose([self._as_field(f, c) for f, c in zip(vel, COMPONENTS)])
        new, phi, tend = self._advance(vel, dt, previous)
        if not all(np.isfinite(f).all() for f in new):
            raise ParameterError(
                f"the solution stopped being finite: dt = {self.dt:.6g} is too large for the "
                "flow speed (advective limit; see stable_dt3d)"
            )
        self._history = ([f.copy() for f in new], tend)
        return new, phi

    def run(self, velocity0, t_end: float, times=None) -> Snapshots3d:
        """Advance ``velocity0`` = (u, v, w) from t = 0 to ``t_end`` and record the states at
        ``times`` (sorted, in [0, t_end]; default t_end); each interval is split into equal
        steps of at most dt, the AB2 history runs on across outputs. The pressure at t = 0 is
        that of a forward Euler step from the initial state."""
        if not (math.isfinite(t_end) and t_end > 0):
            raise ParameterError(f"t_end must be finite and > 0; got {t_end}")
        times = np.array([t_end] if times is None else times, dtype=float)
        if times.ndim != 1 or times.size == 0 or np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ParameterError("times must be a non-empty increasing sequence in [0, t_end]")
        if times[-1] > t_end * (1 + 1e-12):
            raise ParameterError(f"times must lie in [0, t_end = {t_end:g}]")
        self._history = None
        vel = self._impose([self._as_field(f, c) for f, c in zip(velocity0, COMPONENTS)])
        frames: dict[str, list] = {k: [] for k in ("u", "v", "w", "p")}
        t, steps = 0.0, 0
        for target in times:
            gap = target - t
            if gap > 1e-12 * max(1.0, t_end):
                k = math.ceil(gap / self.dt - 1e-9)
                for _ in range(k):
                    vel, phi = self.step(vel, gap / k)
                steps += k
                t = float(target)
                p = phi
            else:
                p = self._advance([f.copy() for f in vel], self.dt, None)[1]
            for c, f in zip(COMPONENTS, vel):
                frames[c].append(f.copy())
            frames["p"].append(p.copy())
        return Snapshots3d(times, *(np.stack(frames[k]) for k in ("u", "v", "w", "p")), steps)
