"""The 2D Taylor-Green vortex: an exact decaying Navier-Stokes solution on the periodic square."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdekit.geometries import Rectangle, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, param
from pdekit.problems.navier_stokes.equations import UNSTEADY_DERIVATIVES, navier_stokes_2d
from pdekit.problems.registry import register


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

    def domain(self) -> SpaceTime:
        space = Rectangle((0.0, 0.0), (2 * math.pi, 2 * math.pi), periodic=(True, True))
        return SpaceTime(space, TimeDomain(0.0, self.t_end))

    def initial_condition(self, x):
        zero_t = torch.zeros_like(x[:, :1])
        return self.exact(torch.cat([x, zero_t], dim=1))

    def residual(self, f):
        return navier_stokes_2d(f, self.nu, unsteady=True)

    def exact(self, points):
        x, y, t = points[:, 0], points[:, 1], points[:, 2]
        decay = torch.exp(-2 * self.nu * t)
        return {
            "u": torch.cos(x) * torch.sin(y) * decay,
            "v": -torch.sin(x) * torch.cos(y) * decay,
            "p": -0.25 * (torch.cos(2 * x) + torch.cos(2 * y)) * decay**2,
        }
