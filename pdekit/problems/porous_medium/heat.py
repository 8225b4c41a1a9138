"""The heat equation u_t = k u_xx on the periodic interval [0, 2 pi): the GPME with constant k."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, param
from pdekit.problems.registry import register


@register("porous_medium/heat")
@dataclass(frozen=True)
class Heat(Problem):
    """u_t = k u_xx, x in [0, 2 pi) periodic, t in [0, 1], u(x, 0) = sin x.

    Exact solution u = exp(-k t) sin x. Conservation form u_t + d/dx F = 0 with F = -k u_x;
    the total mass is conserved (it is zero).
    """

    k: float = param(1.0, low=0.0, high=10.0, low_open=True, doc="diffusivity")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}
    equation = "u_t = k u_xx,  x in [0, 2pi) periodic,  t in [0, 1],  u(x, 0) = sin x"

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(0.0, 2 * math.pi, periodic=True), TimeDomain(0.0, 1.0))

    def initial_condition(self, x):
        return {"u": torch.sin(x[:, 0])}

    def residual(self, f):
        return {"diffusion": f.d("u", "t") - self.k * f.d("u", "xx")}

    def flux(self, f):
        return (-self.k * f.d("u", "x"),)

    def exact(self, points):
        x, t = points[:, 0], points[:, 1]
        return {"u": torch.exp(-self.k * t) * torch.sin(x)}
