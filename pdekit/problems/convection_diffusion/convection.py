"""Linear convection u_t + beta u_x = 0 on the periodic interval [0, 2 pi)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, param
from pdekit.problems.registry import register


@register("convection_diffusion/convection")
@dataclass(frozen=True)
class Convection(Problem):
    """u_t + beta u_x = 0, x in [0, 2 pi) periodic, t in [0, 1], u(x, 0) = sin x.

    Exact solution u = sin(x - beta t). The failure-mode benchmark of Krishnapriyan et al.
    (NeurIPS 2021): vanilla PINNs fail for beta >= 20-30.
    """

    beta: float = param(1.0, low=0.0, high=100.0, doc="convection speed")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("x", "t")}
    equation = "u_t + beta u_x = 0,  x in [0, 2pi) periodic,  t in [0, 1],  u(x, 0) = sin x"

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(0.0, 2 * math.pi, periodic=True), TimeDomain(0.0, 1.0))

    def initial_condition(self, x):
        return {"u": torch.sin(x[:, 0])}

    def residual(self, f):
        return {"convection": f.d("u", "t") + self.beta * f.d("u", "x")}

    # -- what the Lagrangian PINN needs: X'(t) = beta, w_t = 0 -----------------------------------
    def characteristic_velocity(self, u, points):
        """Velocity of the characteristics, one tensor per spatial coordinate: (beta,)."""
        return (torch.full_like(u, self.beta),)

    @property
    def diffusivity(self) -> float:
        """No diffusion: u is constant along the characteristics."""
        return 0.0

    def exact(self, points):
        x, t = points[:, 0], points[:, 1]
        return {"u": torch.sin(x - self.beta * t)}
