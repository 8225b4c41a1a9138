"""Convection-diffusion of a Gaussian pulse on the periodic square or interval, exact."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Hyperrectangle, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, param
from pdekit.problems.registry import register

_L = 2.0 * math.pi  # period
#: images are summed while exp(-(distance)^2 / (2 s^2)) can exceed exp(-_TAIL)
_TAIL = 40.0


@register("convection_diffusion/gaussian_pulse")
@dataclass(frozen=True)
class GaussianPulse(Problem):
    """u_t + beta . grad u = nu Lap u on [0, 2 pi)^d periodic (d = 1, 2), t in [0, 1].

    The initial pulse is the Gaussian of the failure-modes benchmark (Krishnapriyan et al.,
    NeurIPS 2021, ``u0 = "gauss"``): width sigma = pi/4, centred at pi in every direction, made
    periodic by summing its images, u0(x) = prod_i sum_j g(x_i - pi - 2 pi j; sigma^2) with
    g(z; s^2) = exp(-z^2 / (2 s^2)). A Gaussian stays Gaussian under convection-diffusion, so

        u(x, t) = prod_i (sigma / s(t)) sum_j g(x_i - pi - beta_i t - 2 pi j; s(t)^2),
        s(t)^2 = sigma^2 + 2 nu t,

    exact on the periodic domain (the sum runs over every image within exp(-40) of the
    largest; the rest is below double precision). In 1D beta = (beta,), in 2D
    beta = (beta, beta_y).

    Conservation form u_t + div F = 0 with F = beta u - nu grad u: the mass is conserved. For the
    Lagrangian PINN the characteristic velocity is the constant beta and the diffusion
    coefficient nu: along X'(t) = beta the equation reads w_t = nu Lap_X w.
    """

    beta: float = param(1.0, low=-100.0, high=100.0, doc="convection velocity along x")
    beta_y: float = param(1.0, low=-100.0, high=100.0, doc="convection velocity along y (2D)")
    nu: float = param(0.1, low=0.0, high=10.0, doc="diffusivity")
    sigma: float = param(math.pi / 4, low=0.05, high=2.0, doc="initial width of the pulse")
    dim: int = param(1, choices=(1, 2), doc="spatial dimension")

    fields = ("u",)
    equation = (
        "u_t + beta . grad u = nu Lap u,  x in [0, 2pi)^d periodic (d = 1, 2),  t in [0, 1],  "
        "u(x, 0) = periodic Gaussian exp(-|x - pi|^2 / (2 sigma^2))"
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

    @property
    def velocity(self) -> tuple[float, ...]:
        return (self.beta,) if self.dim == 1 else (self.beta, self.beta_y)

    def domain(self) -> SpaceTime:
        d = self.dim
        space = Hyperrectangle([0.0] * d, [_L] * d, (True,) * d)
        return SpaceTime(space, TimeDomain(0.0, 1.0))

    def _pulse(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The exact solution at spatial points x (n, d) and times t (n,)."""
        s2 = self.sigma**2 + 2.0 * self.nu * t
        t_max = float(t.max()) if t.numel() else 0.0  # (no points: no images needed)
        s_max = math.sqrt(self.sigma**2 + 2.0 * self.nu * max(t_max, 0.0))
        images = int(math.ceil(math.sqrt(2.0 * _TAIL) * s_max / _L)) + 1
        shifts = _L * torch.arange(-images, images + 1, dtype=x.dtype, device=x.device)
        u = torch.ones_like(t)
        for i, b in enumerate(self.velocity):
            z = torch.remainder(x[:, i] - math.pi - b * t + 0.5 * _L, _L) - 0.5 * _L
            g = torch.exp(-((z[:, None] - shifts[None, :]) ** 2) / (2.0 * s2[:, None]))
            u = u * torch.sqrt(self.sigma**2 / s2) * g.sum(dim=1)
        return u

    def initial_condition(self, x):
        return {"u": self._pulse(x[:, : self.dim], torch.zeros_like(x[:, 0]))}

    def residual(self, f):
        space = self.coordinates[:-1]
        conv = sum(b * f.d("u", c) for b, c in zip(self.velocity, space))
        lap = f.laplacian("u")
        return {"convection_diffusion": f.d("u", "t") + conv - self.nu * lap}

    def flux(self, f):
        u = f["u"]
        space = self.coordinates[:-1]
        return tuple(b * u - self.nu * f.d("u", c) for b, c in zip(self.velocity, space))

    # -- what the Lagrangian PINN needs: X'(t) = c, w_t = diffusivity * Lap_X w ----------------
    def characteristic_velocity(self, u, points):
        """Velocity of the characteristics, one tensor per spatial coordinate: beta."""
        return tuple(torch.full_like(u, b) for b in self.velocity)

    @property
    def diffusivity(self) -> float:
        """Diffusion coefficient of the Lagrangian form w_t = nu Lap_X w."""
        return self.nu

    def exact(self, points):
        return {"u": self._pulse(points[:, : self.dim], points[:, -1])}

    def total_mass(self, t=0.0):
        """The conserved mass int u dx = (sigma sqrt(2 pi))^d."""
        return np.full(np.shape(t), (self.sigma * math.sqrt(2.0 * math.pi)) ** self.dim)
