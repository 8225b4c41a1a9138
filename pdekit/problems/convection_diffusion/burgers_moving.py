"""Viscous Burgers with a travelling front: u0 = sin x + c on [0, 2 pi), the Lagrangian PINN's case.

Mojgani, Balajewicz & Hassanzadeh (CMAME 404:115810, 2023) test their Lagrangian PINN on
u_t + u u_x = nu u_xx, x in [0, 2 pi) periodic, t in [0, 1], u(x, 0) = sin x + C with nu = 0.01
(their released code sweeps C in {0, 2, 5, 10, 20, 30, ..., 70}): the offset C carries the
steepening wave, and the front that forms at t ~ 1, across the periodic domain at speed C. Where
the standard Burgers benchmark (:mod:`.burgers`) has its shock standing still, here the
characteristics, and the front, move: the case the Lagrangian frame is made for.

Exact solution by Galilean invariance and the Cole-Hopf integral. With v the solution from
v0 = sin x (the same equation), u(x, t) = c + v(x - c t, t); and v itself is the standard
benchmark's solution rescaled, v(x, t) = w((x - pi) / pi, t / pi) where w solves
w_tau + w w_xi = (nu / pi) w_xi xi from w0 = -sin(pi xi) (substitute x = pi xi + pi, t = pi tau:
every term of the equation picks up the same factor 1 / pi), whose Cole-Hopf integral
:func:`~pdekit.problems.references.cole_hopf.burgers_sine` evaluates to ~1e-8 or better.

:meth:`BurgersMoving.simulate` solves from any periodic initial state by an independent method:
ETDRK4 (:mod:`~pdekit.problems.references.etdrk4`) on the Fourier modes, with the flux's
nonlinear part pseudo-spectral and dealiased by the 2/3 rule, in the frame moving with the mean
of u (conserved; the shift back is exact in Fourier space), the linear part -nu k^2 exact; the
tests measure its fourth order in time and its agreement with the Cole-Hopf solution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import (
    Problem,
    Reference,
    _as_points,
    check_simulation_input,
    param,
)
from pdekit.problems.convection_diffusion.burgers import ViscousBurgersForm
from pdekit.problems.references import etdrk4
from pdekit.problems.references.cole_hopf import STEP, TAIL, burgers_sine
from pdekit.problems.registry import register
from pdekit.progress import progress_bar

#: the longest ETDRK4 step of :meth:`BurgersMoving.simulate` (error per unit time O(step^4):
#: 2e-10 in u at the tests' resolution, see tests/problems/test_burgers_moving.py)
MAX_STEP = 1e-3


def moving_sine(x, t, c: float, nu: float):
    """u(x, t) of u_t + u u_x = nu u_xx, u(x, 0) = sin x + c, 2 pi-periodic (numpy, float64).

    u = c + v(x - c t, t) with v(x, t) = w((x - pi) / pi, t / pi), w the Cole-Hopf solution
    from -sin(pi xi) at viscosity nu / pi (see the module docstring).
    """
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    shifted = np.mod(x - c * t, 2 * math.pi)
    return c + burgers_sine((shifted - math.pi) / math.pi, t / math.pi, nu / math.pi)


class MovingSineReference(Reference):
    """The exact solution of :class:`BurgersMoving` (Galilean shift of a Cole-Hopf integral)."""

    source = "exact"

    def __init__(self, c: float, nu: float):
        self.c, self.nu = c, nu
        self.description = (
            f"Galilean shift by c t of the Cole-Hopf integral from sin x (Basdevant et al. "
            f"1986), trapezoidal rule in the Hermite variable, step {STEP}, window "
            f"exp(-{TAIL:g})"
        )
        self.accuracy = (
            "<= 1e-8 absolute (the Cole-Hopf quadrature's; checked against an independent "
            "ETDRK4 Fourier solve in the tests)"
        )

    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        pts = _as_points(points, 2)
        return {"u": moving_sine(pts[:, 0], pts[:, 1], self.c, self.nu)}


@register("convection_diffusion/burgers_moving")
@dataclass(frozen=True)
class BurgersMoving(ViscousBurgersForm, Problem):
    """u_t + u u_x = nu u_xx, x in [0, 2 pi) periodic, t in [0, 1], u(x, 0) = sin x + c.

    The moving-front Burgers case of the Lagrangian PINN paper (Mojgani et al. 2023) at its
    released code's nu = 0.01: the wave steepens into a front by t ~ 1 (sin x breaks at t = 1
    without viscosity) while the offset ``c`` carries it across the domain, c t in all (c = 30:
    almost five periods). Exact solution by Galilean invariance and the Cole-Hopf integral
    (:func:`moving_sine`); :meth:`simulate` solves any periodic initial state by ETDRK4.

    The offset hides the wave in relative errors: ||u|| ~ c sqrt(2 pi) while the wave has
    ||u - c|| ~ sqrt(pi). The Lagrangian PINN's released code normalises by ||u_ref - c||;
    :meth:`wave_norm` gives that normaliser and the Lagrangian PINN benchmark reports both.

    The equation, its flux and its Lagrangian form are :class:`.burgers.ViscousBurgersForm`'s;
    the mass int u dx = 2 pi c at every time.
    """

    c: float = param(0.0, low=-100.0, high=100.0, doc="offset of u0 = sin x + c (front speed)")
    nu: float = param(0.01, low=1e-3, high=1.0, doc="viscosity (the released code's 0.01)")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}
    equation = "u_t + u u_x = nu u_xx,  x in [0, 2pi) periodic,  t in [0, 1],  u(x, 0) = sin x + c"

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(0.0, 2 * math.pi, periodic=True), TimeDomain(0.0, 1.0))

    def initial_condition(self, x):
        return {"u": torch.sin(x[:, 0]) + self.c}

    def total_mass(self, t=0.0):
        """int u dx over the period: 2 pi c at every time (periodic flux, int sin = 0)."""
        return np.full(np.shape(t), 2 * math.pi * self.c)

    def wave_norm(self, points: np.ndarray) -> float:
        """||u_ref - c|| over ``points``: the normaliser of the released code's relative error."""
        pts = _as_points(points, 2)
        return float(np.linalg.norm(moving_sine(pts[:, 0], pts[:, 1], self.c, self.nu) - self.c))

    def exact(self, points):
        p = points.detach().cpu().numpy()
        u = moving_sine(p[:, 0], p[:, 1], self.c, self.nu)
        return {"u": torch.as_tensor(u, dtype=points.dtype, device=points.device)}

    def reference(self) -> Reference:
        return MovingSineReference(self.c, self.nu)

    def simulate(
        self, initial_states: Mapping[str, np.ndarray], grid, times: np.ndarray
    ) -> dict[str, np.ndarray]:
        """ETDRK4 Fourier trajectories of a batch of periodic initial states (float64).

        ``initial_states["u"]`` (B, n) holds values on the nodes 2 pi i / n of a periodic
        :class:`~pdekit.geometries.Grid` over [0, 2 pi). Each interval between consecutive
        ``times`` is split into the fewest equal steps no longer than :data:`MAX_STEP`, so every
        output time is landed on exactly. The mean m of each state is conserved and split off:
        w(xi, t) = u(xi + m t, t) - m obeys the same equation from u0 - m (Galilean
        invariance) and is advanced with the linear part -nu k^2 exact and
        -(i k / 2) FFT(w^2) explicit, dealiased by the 2/3 rule (modes above n/3 of the product
        dropped); u is w shifted back by m t, exactly, in Fourier space (so a large offset
        costs no stability or accuracy). The resolution is the grid's: the front needs n of a
        few hundred at nu = 0.01 (the tests measure the error against the exact solution). Returns
        ``{"u": (B, len(times), n)}``.
        """
        states, times = check_simulation_input(self, initial_states, grid, times)
        u = _integrate(states["u"], times, self.nu, MAX_STEP)
        if not np.all(np.isfinite(u)):
            raise ParameterError(
                "the ETDRK4 run blew up (non-finite values): its nonlinear term is explicit; "
                f"the initial states reach |u0 - mean| = "
                f"{np.abs(states['u'] - states['u'].mean(-1, keepdims=True)).max():.3g} on "
                f"{states['u'].shape[-1]} nodes (refine the grid or shorten the step)"
            )
        return {"u": u}


def _integrate(u0: np.ndarray, times: np.ndarray, nu: float, max_step: float) -> np.ndarray:
    """ETDRK4 Fourier solve of u_t + u u_x = nu u_xx on [0, 2 pi) (see ``simulate``).

    ``u0`` (B, n) on the nodes 2 pi i / n; returns u (B, len(times), n), float64.
    """
    u0 = torch.as_tensor(np.asarray(u0, dtype=np.float64))
    n = u0.shape[-1]
    k = torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)  # integer wavenumbers, period 2 pi
    mean = u0.mean(-1, keepdim=True)  # (B, 1), conserved
    L = -nu * k**2  # the co-moving frame's linear part, exact
    keep = (k <= n / 3).to(torch.complex128)  # 2/3 rule on the quadratic term
    ik_half = -0.5j * k * keep

    def N(w_hat: torch.Tensor, t: float) -> torch.Tensor:
        return ik_half * torch.fft.rfft(torch.fft.irfft(w_hat, n=n) ** 2)

    steps = [max(1, math.ceil(dt / max_step - 1e-9)) for dt in np.diff(times)]
    coefficients: dict[float, etdrk4.Coefficients] = {}
    # v holds the modes of w(xi, t) = u(xi + m t, t) - m, which obeys Burgers without the offset;
    # the lab frame is the exact spectral shift by m (t - t0)
    v = torch.fft.rfft(u0 - mean)
    v[..., 0] = 0.0
    out = [u0]
    with progress_bar(sum(steps), unit="step", desc="burgers_moving ETDRK4") as bar:
        for t0, t1, m in zip(times[:-1], times[1:], steps):
            h = float((t1 - t0) / m)
            if h not in coefficients:
                coefficients[h] = etdrk4.coefficients(L, h)
            for j in range(m):
                v = etdrk4.step(v, t0 + j * h, N, coefficients[h])
            shift = torch.exp(-1j * k * mean * float(t1 - times[0]))
            out.append(torch.fft.irfft(v * shift, n=n) + mean)
            bar.update(m)
    return torch.stack(out, dim=-2).numpy()
