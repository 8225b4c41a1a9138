"""Beltrami flow: the exact unsteady 3D Navier-Stokes solution of Ethier & Steinman (1994)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdekit.geometries import Box, SpaceTime, TimeDomain
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.navier_stokes.equations import UNSTEADY_DERIVATIVES_3D, navier_stokes_3d
from pdekit.problems.registry import register


@register("navier_stokes/beltrami")
@dataclass(frozen=True)
class Beltrami(Problem):
    """Unsteady incompressible Navier-Stokes in 3D with a closed-form solution on any domain
    (C. R. Ethier and D. A. Steinman, "Exact fully 3D Navier-Stokes solutions for
    benchmarking", Int. J. Numer. Methods Fluids 19:369-375, 1994):

        u_t + (u.grad) u + grad p - nu lap u = 0,  div u = 0  (density 1)

    with, for any a, d and nu, ::

        u = -a [e^{ax} sin(ay + dz) + e^{az} cos(ax + dy)] e^{-nu d^2 t}
        v = -a [e^{ay} sin(az + dx) + e^{ax} cos(ay + dz)] e^{-nu d^2 t}
        w = -a [e^{az} sin(ax + dy) + e^{ay} cos(az + dx)] e^{-nu d^2 t}
        p = -a^2/2 [e^{2ax} + e^{2ay} + e^{2az} + 2 sin(ax + dy) cos(az + dx) e^{a(y+z)}
                    + 2 sin(ay + dz) cos(ax + dy) e^{a(z+x)}
                    + 2 sin(az + dx) cos(ay + dz) e^{a(x+y)}] e^{-2 nu d^2 t}

    The velocity is a Beltrami field, parallel to its vorticity (curl u = d u), and a
    solution of the heat equation u_t = nu lap u (lap u = -d^2 u); the nonlinear term is then
    the gradient ``-grad(|u|^2/2)`` that the pressure balances. The paper's case is a = pi/4,
    d = pi/2 on the cube [-1, 1]^3 (the default domain). Since the formula holds everywhere,
    any domain will do: ``mesh=PATH`` takes a 3D mesh file (tetrahedra or hexahedra, any format
    meshio reads), and the initial data and the Dirichlet data for (u, v, w) on every boundary
    tag come from the exact solution. The velocity on the whole boundary fixes the pressure
    only up to a constant at each time (``gauge_fields``): no boundary data are imposed on it
    (the initial data, the exact fields at t = 0, include it, as taylor_green's do), and errors
    compare it after shifting it to the reference's mean at each time.
    """

    a: float = param(math.pi / 4, low=0.0, high=5.0, low_open=True, doc="wave number a")
    d: float = param(math.pi / 2, low=0.0, high=5.0, doc="wave number d")
    nu: float = param(1.0, low=1e-4, high=10.0, doc="kinematic viscosity")
    t_end: float = param(
        0.1,
        low=0.0,
        high=10.0,
        low_open=True,
        doc="final time (the velocity decays as exp(-nu d^2 t): by 22% at the defaults)",
    )
    mesh: str = param(
        "",
        doc="3D mesh file (any format meshio reads); empty: the cube [-1, 1]^3",
    )

    coordinates = ("x", "y", "z", "t")
    fields = ("u", "v", "w", "p")
    derivatives = UNSTEADY_DERIVATIVES_3D
    equation = (
        "u_t + u.grad(u) + grad p = nu lap u,  div u = 0  in 3D on [-1, 1]^3 or mesh=PATH, "
        "t in [0, t_end]; initial and Dirichlet velocity (all boundary tags) from the exact "
        "solution of Ethier & Steinman (1994)"
    )
    evaluation_resolution = {"x": 21, "y": 21, "z": 21, "t": 11}
    gauge_fields = ("p",)  # the velocity on the whole boundary leaves its constant free

    def __post_init__(self):
        super().__post_init__()
        self.domain()  # a bad mesh is refused now, not half-way through a solve

    def domain(self) -> SpaceTime:
        space = self.user_mesh(self.mesh, 3) if self.mesh else Box((-1, -1, -1), (1, 1, 1))
        return SpaceTime(space, TimeDomain(0.0, self.t_end))

    def initial_condition(self, x):
        """The exact fields at t = 0, the pressure included (as for taylor_green)."""
        return self.exact(torch.cat([x, torch.zeros_like(x[:, :1])], dim=1))

    def boundary_conditions(self) -> list[BC]:
        return [BC("dirichlet", ("u", "v", "w"), self.exact)]

    def residual(self, f):
        return navier_stokes_3d(f, self.nu, unsteady=True)

    def exact(self, points):
        x, y, z, t = points[:, 0], points[:, 1], points[:, 2], points[:, 3]
        a, d = self.a, self.d
        decay = torch.exp(-self.nu * d**2 * t)
        ex, ey, ez = torch.exp(a * x), torch.exp(a * y), torch.exp(a * z)
        # the three phases, each the sine's argument of one component
        sx, sy, sz = a * x + d * y, a * y + d * z, a * z + d * x
        u = -a * (ex * torch.sin(sy) + ez * torch.cos(sx)) * decay
        v = -a * (ey * torch.sin(sz) + ex * torch.cos(sy)) * decay
        w = -a * (ez * torch.sin(sx) + ey * torch.cos(sz)) * decay
        p = (
            -(a**2)
            / 2
            * (
                ex**2
                + ey**2
                + ez**2
                + 2 * torch.sin(sx) * torch.cos(sz) * ey * ez
                + 2 * torch.sin(sy) * torch.cos(sx) * ez * ex
                + 2 * torch.sin(sz) * torch.cos(sy) * ex * ey
            )
            * decay**2
        )
        return {"u": u, "v": v, "w": w, "p": p}
