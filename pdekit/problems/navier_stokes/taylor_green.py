"""The 2D Taylor-Green vortex: an exact decaying Navier-Stokes solution on the periodic square."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.core import spectral
from pdekit.geometries import Grid, Rectangle, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, check_simulation_input, param
from pdekit.problems.navier_stokes.equations import UNSTEADY_DERIVATIVES, navier_stokes_2d
from pdekit.problems.references import spectral_ns as sns
from pdekit.problems.registry import register

#: simulate's default time step is SIMULATE_CFL h: the advective CFL number
#: ``max(|u'|, |v'|) dt / h`` for speeds up to 1, the amplitude of this flow (u' the velocity
#: relative to the mean flow)
SIMULATE_CFL = 0.5


@register("navier_stokes/taylor_green")
@dataclass(frozen=True)
class TaylorGreen(Problem):
    """Unsteady incompressible Navier-Stokes on the periodic square [0, 2 pi)^2 (Taylor-Green 1937).

        u_t + u u_x + v u_y + p_x - nu (u_xx + u_yy) = 0
        v_t + u v_x + v v_y + p_y - nu (v_xx + v_yy) = 0
        u_x + v_y = 0

    Exact solution (density 1), with F(t) = exp(-2 nu t):
    u = cos x sin y F,  v = -sin x cos y F,  p = -(cos 2x + cos 2y) F^2 / 4.
    The velocity decays with e-folding time 1/(2 nu); the default span t_end = 10 is two such
    decay times at the default nu = 0.1. The periodic box fixes the pressure only up to a
    constant at each time: the reference's has zero mean, and a solver's is compared after
    shifting it to zero mean over the evaluation grid at each time (``gauge_fields``).

    State (what a grid learner predicts): the velocity ``("u", "v")`` at the nodes of a periodic
    grid. The pressure is not independent: :meth:`complete` derives it from the velocity by the
    pressure Poisson equation, as an incompressible solver does, so a learner that predicts u, v
    cannot contradict it; the velocity, unlike the vorticity, also carries the mean flow (which
    the vorticity does not determine) and is what the momentum residual of
    :meth:`residual` reads. :meth:`simulate` integrates any batch of initial velocities with the
    pseudo-spectral vorticity solver; the exact solution stays the scored reference.
    """

    nu: float = param(0.1, low=1e-4, high=10.0, doc="kinematic viscosity (Re = 1/nu)")
    t_end: float = param(
        10.0, low=0.0, high=1e4, low_open=True, doc="final time (default: 2 decay times at nu=0.1)"
    )

    coordinates = ("x", "y", "t")
    fields = ("u", "v", "p")
    derivatives = UNSTEADY_DERIVATIVES
    equation = (
        "u_t + u.grad(u) + grad p = nu lap u,  div u = 0  on [0, 2pi)^2 periodic, t in [0, t_end]; "
        "u(x, y, 0) = (cos x sin y, -sin x cos y)"
    )
    evaluation_resolution = {"x": 64, "y": 64, "t": 11}
    gauge_fields = ("p",)  # nothing in the equations or conditions sets its constant
    state_fields = ("u", "v")  # p follows from them (complete)

    def domain(self) -> SpaceTime:
        space = Rectangle((0.0, 0.0), (2 * math.pi, 2 * math.pi), periodic=(True, True))
        return SpaceTime(space, TimeDomain(0.0, self.t_end))

    def initial_condition(self, x):
        zero_t = torch.zeros_like(x[:, :1])
        return self.exact(torch.cat([x, zero_t], dim=1))

    def residual(self, f):
        return navier_stokes_2d(f, self.nu, unsteady=True)

    def grid(self, n: int) -> Grid:
        """The periodic n x n grid on [0, 2 pi)^2 (:meth:`simulate` runs on it, state at nodes)."""
        return Grid.on(self.domain().space, n)

    def complete(self, state, grid) -> dict[str, torch.Tensor]:
        """(u, v, p) from the velocity state (torch, ``(*batch, n_x, n_y)`` at the nodes of a
        periodic ``grid``): p solves lap p = -div((u.grad) u) with zero mean, spectrally
        (:func:`~pdekit.problems.references.spectral_ns.pressure`: exact on the modes
        ``|m| < n/3`` for velocities with modes ``|m| < n/3``, as :meth:`simulate` returns; for this
        flow, on grids n >= 8, the exact pressure, whose mean is zero)."""
        state = super().complete(state, grid)
        u, v = state["u"], state["v"]
        return {"u": u, "v": v, "p": sns.pressure(u, v, grid)}

    def simulate(
        self, initial_states, grid: Grid, times, *, max_dt: float | None = None
    ) -> dict[str, np.ndarray]:
        """Velocity trajectories from a batch of initial velocities (pseudo-spectral solver).

        The solver integrates the vorticity w = v_x - u_y
        (:mod:`~pdekit.problems.references.spectral_ns`); the velocity is recovered from it
        through the stream function plus the mean flow, which the unforced periodic flow keeps
        constant and which the solver treats exactly as a translation. So each initial
        velocity is replaced by its divergence-free part (Leray projection: the part the
        vorticity and the mean determine) restricted to the dealiased modes ``|m| < n/3``: the first
        snapshot is that projection, equal to the input for a resolved divergence-free field
        such as this problem's initial condition.

        Parameters
        ----------
        initial_states:
            ``{"u": (B, n_x, n_y), "v": (B, n_x, n_y)}`` at the nodes of ``grid``.
        grid:
            A periodic grid on [0, 2 pi)^2, even n per axis (:meth:`grid`).
        times:
            Output times, increasing, starting at 0.
        max_dt:
            Bound on the internal time step; default :data:`SIMULATE_CFL` ``h`` (h the smaller
            grid spacing): an advective CFL number of 0.5 for speeds (relative to the mean flow)
            up to this flow's amplitude 1, proportionally more for faster states, which raise
            FloatingPointError past CFL 2 (speed 4): pass a smaller ``max_dt`` for them. The
            default depends on the grid only, so a batch gives the same trajectories as its
            members run one by one. Each interval between output times gets the fewest equal
            ETDRK4 steps within the bound, so output times are landed on exactly; with
            non-uniform times the step differs between intervals and the time error is set by
            the largest.

        Returns
        -------
        ``{"u": float64 (B, len(times), n_x, n_y), "v": ...}``.
        """
        states, times = check_simulation_input(self, initial_states, grid, times)
        sns.check_grid(grid)
        lengths = tuple(float(s) for s in grid.hi - grid.lo)
        u0, v0 = (torch.as_tensor(states[k]) for k in ("u", "v"))
        mean = torch.stack([u0.mean(dim=(-2, -1)), v0.mean(dim=(-2, -1))], dim=-1)  # (B, 2)
        if max_dt is None:
            max_dt = SIMULATE_CFL * float(min(grid.spacing))
        steps = sns.steps_per_interval(times, max_dt)
        w0 = spectral.curl([u0, v0], lengths)
        sol = sns.solve(w0, grid, self.nu, times, steps, mean_velocity=mean)
        if sol.max_cfl > sns.MAX_CFL:
            raise FloatingPointError(
                f"CFL number {sol.max_cfl:.2f} exceeds {sns.MAX_CFL} ({self}); "
                "pass a smaller max_dt"
            )
        u, v = spectral.velocity_from_vorticity(torch.as_tensor(sol.w), lengths)
        return {
            "u": (u + mean[:, 0, None, None, None]).numpy(),
            "v": (v + mean[:, 1, None, None, None]).numpy(),
        }

    def exact(self, points):
        x, y, t = points[:, 0], points[:, 1], points[:, 2]
        decay = torch.exp(-2 * self.nu * t)
        return {
            "u": torch.cos(x) * torch.sin(y) * decay,
            "v": -torch.sin(x) * torch.cos(y) * decay,
            "p": -0.25 * (torch.cos(2 * x) + torch.cos(2 * y)) * decay**2,
        }
