"""The Barenblatt-Pattle self-similar solution of the porous medium equation, in 1D and 2D."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Hyperrectangle, SpaceTime, TimeDomain
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.porous_medium.pme import positive_power
from pdekit.problems.references.fv_gpme import KirchhoffFiniteVolumes
from pdekit.problems.registry import register


@register("porous_medium/barenblatt")
@dataclass(frozen=True)
class Barenblatt(KirchhoffFiniteVolumes, Problem):
    """u_t = Lap(u^m), m > 1, on [-2, 2]^d (d = 1, 2), t in [0, 1]: the Barenblatt solution.

    In the GPME form u_t = div(k(u) grad u) the diffusivity is k(u) = m u^(m-1). (Note that here
    m is the exponent of u_t = Lap(u^m), Vazquez's convention, while in ``porous_medium/pme`` it
    is the exponent of k(u) = u^m.) The Barenblatt-Pattle solution (Barenblatt 1952; Vazquez,
    *The Porous Medium Equation*, OUP 2007, sec. 4.4), with tau = t + 1, ::

        u(x, t) = tau^(-a) ( C - kappa |x|^2 tau^(-2b) )_+^(1/(m-1)),
        a = d / (d (m - 1) + 2),  b = a / d,  kappa = a (m - 1) / (2 m d),

    is a compactly supported pulse of constant mass whose edge ``|x| = sqrt(C/kappa) tau^b`` moves
    at finite speed. We take C = kappa: the support has radius 1 at t = 0 and 2^b < 2^(1/2) at
    t = 1 (b < 1/2 for m > 1; 2^(1/3) for m = 2 in 1D), well inside the box, so the zero
    Dirichlet data on the box are exact. The amplitude at t = 0 is kappa^(1/(m-1)) (0.083 for
    m = 2 in 1D).

    Conservation form u_t + div F = 0, F = -k(u) grad u; the mass (:meth:`total_mass`) is
    constant.
    """

    m: float = param(2.0, low=1.0, high=5.0, low_open=True, doc="exponent of u_t = Lap(u^m)")
    dim: int = param(1, choices=(1, 2), doc="spatial dimension")

    fields = ("u",)
    equation = (
        "u_t = Lap(u^m),  x in [-2, 2]^d (d = 1, 2),  t in [0, 1],  "
        "u = Barenblatt profile at tau = t + 1,  u = 0 on the boundary"
    )

    @property
    def coordinates(self) -> tuple[str, ...]:
        return ("x", "t") if self.dim == 1 else ("x", "y", "t")

    @property
    def derivatives(self) -> dict[str, tuple[str, ...]]:
        """The derivatives the residual uses, per field (for this dimension)."""
        if self.dim == 1:
            return {"u": ("t", "x", "laplacian")}
        return {"u": ("t", "x", "y", "laplacian")}

    def domain(self) -> SpaceTime:
        d = self.dim
        return SpaceTime(Hyperrectangle([-2.0] * d, [2.0] * d), TimeDomain(0.0, 1.0))

    # -- self-similarity exponents --------------------------------------------------------------
    @property
    def a(self) -> float:
        return self.dim / (self.dim * (self.m - 1.0) + 2.0)

    @property
    def b(self) -> float:
        return self.a / self.dim

    @property
    def kappa(self) -> float:
        return self.a * (self.m - 1.0) / (2.0 * self.m * self.dim)

    def radius(self, t):
        """Radius of the support at time t: tau^b, tau = t + 1."""
        return (np.asarray(t, dtype=float) + 1.0) ** self.b

    # -- the GPME coefficients, for numpy arrays or torch tensors ------------------------------
    def k(self, u):
        """Diffusivity k(u) = m max(u, 0)^(m-1)."""
        return self.m * positive_power(u, self.m - 1.0)

    def kirchhoff(self, u):
        """K(u) = int_0^u k = max(u, 0)^m: the flux is -grad K(u)."""
        return positive_power(u, self.m)

    def profile(self, r2, t):
        """u at squared distance ``r2`` from the origin and time ``t`` (numpy or torch).

        With C = kappa: u = tau^(-a) kappa^p (1 - r2 tau^(-2b))_+^p, p = 1/(m-1).
        """
        tau = t + 1.0
        p = 1.0 / (self.m - 1.0)
        return tau ** (-self.a) * self.kappa**p * positive_power(1.0 - r2 * tau ** (-2 * self.b), p)

    # -- the problem ----------------------------------------------------------------------------
    def initial_condition(self, x):
        r2 = (x[:, : self.dim] ** 2).sum(dim=1)
        return {"u": self.profile(r2, torch.zeros_like(r2))}

    def boundary_conditions(self) -> list[BC]:
        def zero(p):
            return {"u": torch.zeros_like(p[:, 0])}

        return [BC("dirichlet", ("u",), zero)]

    def residual(self, f):
        u = f["u"]
        space = self.coordinates[:-1]
        grad2 = sum(f.d("u", c) ** 2 for c in space)
        lap = f.laplacian("u")
        dk = self.m * (self.m - 1.0) * positive_power(u, self.m - 2.0)  # k'(u)
        return {"diffusion": f.d("u", "t") - self.k(u) * lap - dk * grad2}

    def flux(self, f):
        k = self.k(f["u"])
        return tuple(-k * f.d("u", c) for c in self.coordinates[:-1])

    def exact(self, points):
        r2 = (points[:, : self.dim] ** 2).sum(dim=1)
        return {"u": self.profile(r2, points[:, -1])}

    def total_mass(self, t=0.0):
        """Constant mass: int u dx = kappa^p pi^(d/2) Gamma(p+1) / Gamma(p+1+d/2), p = 1/(m-1)."""
        d, p = self.dim, 1.0 / (self.m - 1.0)
        mass = self.kappa**p * math.pi ** (d / 2) * math.gamma(p + 1) / math.gamma(p + 1 + d / 2)
        return np.full(np.shape(t), mass)
