"""A one-phase Stefan problem as a degenerate GPME: k(u) = 1[u >= u*], exact by Neumann's erf."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import erf

from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.references.fv_gpme import KirchhoffFiniteVolumes
from pdekit.problems.registry import register


@register("porous_medium/stefan")
@dataclass(frozen=True)
class Stefan(KirchhoffFiniteVolumes, Problem):
    """u_t = (k(u) u_x)_x with k(u) = 1[u >= u*], x in [0, 1], t in [0, 0.1].

    The "hard" GPME case of ProbConserv (Hansen et al., ICML 2023; ``StefanPME`` in
    ``deep_pdes/datasets/pme.py``, k_max = 1, k_min = 0): u(x, 0) = 0, u(0, t) = 1. Where
    u >= u* the equation is the heat equation; where u < u* nothing diffuses, so the solution
    jumps from u* to 0 at a free boundary x = alpha sqrt(t). Mass conservation across it,
    u* x'(t) = -u_x, is the Stefan condition with latent heat u*, and the similarity solution
    (Neumann's) is

        u(x, t) = 1 - c1 erf(x / (2 sqrt t))   for x <= alpha sqrt t,   0 beyond,

    with z the root of  u* erf(z) z exp(z^2) = (1 - u*) / sqrt(pi),  alpha = 2 z,
    c1 = (1 - u*) / erf(z). (u* = 0.6: z = 0.52567, alpha = 1.05134, c1 = 0.73697.)

    Conservation form u_t + F_x = 0, F = -k(u) u_x; the total mass is 2 c1 sqrt(t / pi) while
    the front is inside [0, 1] (:meth:`total_mass`). The residual is written, as in ProbConserv's
    SoftC baseline, as u_t - k(u) u_xx: it holds on either side of the front, not across it.

    The right boundary value is the exact one, u(1, t): zero while the front is inside the
    domain, which for t <= 0.1 holds for every u* >= 0.03.
    """

    u_star: float = param(
        0.6, low=0.0, high=1.0, low_open=True, high_open=True, doc="melting value u* (k jumps)"
    )

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}
    equation = (
        "u_t = (k(u) u_x)_x,  k(u) = 1[u >= u*],  x in [0, 1],  t in [0, 0.1],  "
        "u(x, 0) = 0,  u(0, t) = 1"
    )

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 0.1))

    # -- the similarity solution's constants ----------------------------------------------------
    @cached_property
    def z(self) -> float:
        """Root of u* erf(z) z exp(z^2) = (1 - u*) / sqrt(pi) (monotone in z; bracketed)."""
        us = self.u_star
        target = (1.0 - us) / math.sqrt(math.pi)

        def g(z):
            return us * math.erf(z) * z * math.exp(z * z) - target

        hi = 1.0
        while g(hi) < 0.0:
            hi *= 2.0
        return brentq(g, 0.0, hi, xtol=1e-15, rtol=1e-15, maxiter=200)

    @property
    def alpha(self) -> float:
        """Front constant: the free boundary is x = alpha sqrt(t)."""
        return 2.0 * self.z

    @property
    def c1(self) -> float:
        return (1.0 - self.u_star) / math.erf(self.z)

    def front(self, t):
        """Position alpha sqrt(t) of the free boundary at time t."""
        return self.alpha * np.sqrt(t)

    # -- the GPME coefficients, for numpy arrays or torch tensors ------------------------------
    def k(self, u):
        """Diffusivity k(u) = 1[u >= u*]."""
        if isinstance(u, torch.Tensor):
            return (u >= self.u_star).to(u.dtype)
        return (np.asarray(u) >= self.u_star).astype(float)

    def kirchhoff(self, u):
        """K(u) = int_0^u k = max(u - u*, 0): the flux is -d/dx K(u) (the enthalpy method)."""
        if isinstance(u, torch.Tensor):
            return (u - self.u_star).clamp(min=0.0)
        return np.maximum(np.asarray(u, dtype=float) - self.u_star, 0.0)

    # -- the problem ----------------------------------------------------------------------------
    def initial_condition(self, x):
        return {"u": torch.zeros_like(x[:, 0])}

    def boundary_conditions(self) -> list[BC]:
        def left(p):
            return {"u": torch.ones_like(p[:, -1])}

        return [BC("dirichlet", ("u",), left, "xmin"), BC("dirichlet", ("u",), self.exact, "xmax")]

    def residual(self, f):
        return {"diffusion": f.d("u", "t") - self.k(f["u"]) * f.d("u", "xx")}

    def flux(self, f):
        return (-self.k(f["u"]) * f.d("u", "x"),)

    def exact(self, points):
        x, t = points[:, 0], points[:, 1]
        started = t > 0
        st = torch.sqrt(torch.where(started, t, torch.ones_like(t)))  # NaN-free gradient at t = 0
        inside = x <= self.alpha * st
        u = torch.where(inside, 1.0 - self.c1 * torch.erf(x / (2.0 * st)), torch.zeros_like(x))
        initial = torch.where(x <= 0, torch.ones_like(x), torch.zeros_like(x))
        return {"u": torch.where(started, u, initial)}

    def total_mass(self, t):
        """Exact int_0^1 u(x, t) dx: 2 c1 sqrt(t / pi) while the front is inside [0, 1]."""
        t = np.asarray(t, dtype=float)
        a = 2.0 * np.sqrt(t)
        edge = np.minimum(1.0, self.alpha * np.sqrt(t))
        a_safe = np.where(a > 0, a, 1.0)
        eta = edge / a_safe
        mass = edge - self.c1 * (
            edge * erf(eta) + a / math.sqrt(math.pi) * (np.exp(-(eta**2)) - 1.0)
        )
        return np.where(t > 0, mass, 0.0)
