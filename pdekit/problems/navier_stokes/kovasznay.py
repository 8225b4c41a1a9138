"""Kovasznay flow: the steady 2D Navier-Stokes solution behind a periodic array of cylinders."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdekit.geometries import MeshGeometry, Rectangle
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.navier_stokes.equations import STEADY_DERIVATIVES, navier_stokes_2d
from pdekit.problems.registry import register


@register("navier_stokes/kovasznay")
@dataclass(frozen=True)
class Kovasznay(Problem):
    """Steady incompressible Navier-Stokes on [-0.5, 1] x [-0.5, 1.5] (Kovasznay 1948).

        u u_x + v u_y + p_x - (u_xx + u_yy)/re = 0
        u v_x + v v_y + p_y - (v_xx + v_yy)/re = 0
        u_x + v_y = 0

    Exact solution, with lambda = re/2 - sqrt(re^2/4 + 4 pi^2):
    u = 1 - e^{lambda x} cos(2 pi y),  v = lambda/(2 pi) e^{lambda x} sin(2 pi y),
    p = (1 - e^{2 lambda x})/2. Dirichlet data for u, v, p on the whole boundary.

    The formula holds everywhere, so any 2D domain will do: ``mesh=PATH`` takes a mesh file
    (triangles or quads, any format meshio reads) instead of the rectangle, with the same
    Dirichlet data from the exact solution on every boundary tag.
    """

    re: float = param(20.0, low=0.0, high=1000.0, low_open=True, doc="Reynolds number")
    mesh: str = param(
        "", doc="2D mesh file (any format meshio reads); empty: [-0.5, 1] x [-0.5, 1.5]"
    )

    coordinates = ("x", "y")
    fields = ("u", "v", "p")
    derivatives = STEADY_DERIVATIVES
    equation = (
        "u.grad(u) + grad p = (1/re) lap u,  div u = 0  on [-0.5, 1] x [-0.5, 1.5] or "
        "mesh=PATH, Dirichlet u, v, p from the exact solution"
    )

    @property
    def lam(self) -> float:
        return self.re / 2 - math.sqrt(self.re**2 / 4 + 4 * math.pi**2)

    def __post_init__(self):
        super().__post_init__()
        self.domain()  # a bad mesh is refused now, not half-way through a solve

    def domain(self) -> Rectangle | MeshGeometry:
        if self.mesh:
            return self.user_mesh(self.mesh, 2)
        return Rectangle((-0.5, -0.5), (1.0, 1.5))

    def boundary_conditions(self):
        return [BC("dirichlet", ("u", "v", "p"), self.exact)]

    def residual(self, f):
        return navier_stokes_2d(f, 1.0 / self.re, unsteady=False)

    def exact(self, points):
        x, y = points[:, 0], points[:, 1]
        lam = self.lam
        e = torch.exp(lam * x)
        return {
            "u": 1 - e * torch.cos(2 * math.pi * y),
            "v": lam / (2 * math.pi) * e * torch.sin(2 * math.pi * y),
            "p": 0.5 * (1 - torch.exp(2 * lam * x)),
        }
