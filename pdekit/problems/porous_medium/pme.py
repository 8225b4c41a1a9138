"""The porous medium equation u_t = (u^m u_x)_x with a front moving at unit speed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.references.fv_gpme import KirchhoffFiniteVolumes
from pdekit.problems.registry import register


def positive_power(u, p: float):
    """max(u, 0)^p, for numpy arrays or torch tensors, with a finite gradient everywhere.

    Zero where u <= 0 (also for p <= 0). In torch the power is taken of a value that is 1 where
    u <= 0, so neither the value nor the gradient there is ever inf or NaN (a plain
    ``clamp(u, 0) ** p`` back-propagates ``0 * inf = NaN`` for p < 1).
    """
    if isinstance(u, torch.Tensor):
        pos = u > 0
        safe = torch.where(pos, u, torch.ones_like(u))
        return torch.where(pos, safe**p, torch.zeros_like(u))
    u = np.asarray(u, dtype=float)
    pos = u > 0
    return np.where(pos, np.where(pos, u, 1.0) ** p, 0.0)


@register("porous_medium/pme")
@dataclass(frozen=True)
class PorousMedium(KirchhoffFiniteVolumes, Problem):
    """Porous medium equation u_t = (k(u) u_x)_x with k(u) = u^m, on [0, 1] x [0, 1].

    The "medium" GPME case of ProbConserv (Hansen et al., ICML 2023; code ``PorousMediumEquation``
    in ``deep_pdes/datasets/pme.py``): u(x, 0) = 0, Dirichlet u(0, t) = (m t)^{1/m} and
    u(1, t) = 0. Exact solution, a travelling wave whose front x = t moves at unit speed:

        u(x, t) = (m max(t - x, 0))^{1/m}.

    Conservation form u_t + F_x = 0 with F = -k(u) u_x; the total mass grows through the left
    boundary as U(t) = m^{1 + 1/m} t^{1 + 1/m} / (m + 1) (:meth:`total_mass`). As in
    ProbConserv, k(u) = max(u, 0)^m, so the equation stays defined for negative trial values.
    """

    m: float = param(3.0, low=1.0, high=6.0, doc="exponent of the diffusivity k(u) = u^m")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}
    equation = (
        "u_t = (u^m u_x)_x,  x in [0, 1],  t in [0, 1],  u(x, 0) = 0,  "
        "u(0, t) = (m t)^(1/m),  u(1, t) = 0"
    )

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 1.0))

    # the GPME coefficients, for numpy arrays or torch tensors
    def k(self, u):
        """Diffusivity k(u) = max(u, 0)^m."""
        return positive_power(u, self.m)

    def kirchhoff(self, u):
        """K(u) = int_0^u k = max(u, 0)^(m+1) / (m+1): the flux is -d/dx K(u)."""
        return positive_power(u, self.m + 1.0) / (self.m + 1.0)

    def initial_condition(self, x):
        return {"u": torch.zeros_like(x[:, 0])}

    def boundary_conditions(self) -> list[BC]:
        def left(p):
            return {"u": (self.m * p[:, -1]).clamp(min=0.0) ** (1.0 / self.m)}

        def right(p):
            return {"u": torch.zeros_like(p[:, -1])}

        return [BC("dirichlet", ("u",), left, "xmin"), BC("dirichlet", ("u",), right, "xmax")]

    def residual(self, f):
        u, ux = f["u"], f.d("u", "x")
        dk = self.m * positive_power(u, self.m - 1.0)  # k'(u)
        return {"diffusion": f.d("u", "t") - dk * ux * ux - self.k(u) * f.d("u", "xx")}

    def flux(self, f):
        return (-self.k(f["u"]) * f.d("u", "x"),)

    def exact(self, points):
        x, t = points[:, 0], points[:, 1]
        return {"u": positive_power(self.m * (t - x), 1.0 / self.m)}

    def front(self, t):
        """Position of the front at time t: x = t."""
        return t

    def total_mass(self, t):
        """Exact U(t) = int_0^1 u(x, t) dx = m^(1+1/m) t^(1+1/m) / (m+1) (front inside, t <= 1)."""
        m = self.m
        return m ** (1 + 1 / m) / (m + 1) * np.asarray(t, dtype=float) ** (1 + 1 / m)
