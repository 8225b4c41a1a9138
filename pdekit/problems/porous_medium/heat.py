"""The heat equation, the GPME with constant k: u_t = k u_xx on the periodic interval [0, 2 pi),
and u_t = k lap u in 2D/3D on a box or a mesh file with a manufactured solution."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdekit.geometries import Box, Interval, Rectangle, SpaceTime, TimeDomain
from pdekit.problems.base import BC, Problem, param
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


#: wave vectors w of :class:`HeatMesh`'s manufactured solution, by spatial dimension
WAVE_VECTORS = {2: (1.5, 1.0), 3: (1.5, 1.0, 0.5)}
#: its phase, so that u is neither odd nor even about the origin
PHASE = math.pi / 4


@register("porous_medium/heat_mesh")
@dataclass(frozen=True)
class HeatMesh(Problem):
    """u_t = k lap u in 2D or 3D, t in [0, 1], on the unit square or cube, or on a mesh file
    (``mesh=PATH``, any format meshio reads): a manufactured solution for your own geometry.

    Exact solution ``u = exp(-k |w|^2 t) sin(w.x + pi/4)``, w = (1.5, 1) in 2D and (1.5, 1, 0.5)
    in 3D (:data:`WAVE_VECTORS`); the initial data and Dirichlet data on every boundary tag
    come from it. Conservation form u_t + div F = 0 with F = -k grad u.

    One problem for both dimensions, set by ``dim``: its coordinates ((x, y, t) or
    (x, y, z, t)) are a property of the instance, as for ``porous_medium/barenblatt``, which
    works because the solvers, the writers and the ``pdekit`` command read
    ``problem.coordinates`` from an instance (only the PDEBench file reader looks them up on
    the class, for problems whose grid data it reads). The dimension is a parameter rather
    than read from the mesh so that the parameters alone say what the problem is (its
    coordinates, exact solution and evaluation grid; a checkpoint records them) without
    opening a file; a mesh of the other dimension is refused naming both.
    ``porous_medium/heat`` stays the 1D periodic problem it was (the ProbConserv benchmark's).
    """

    k: float = param(1.0, low=0.0, high=10.0, low_open=True, doc="diffusivity")
    dim: int = param(2, choices=(2, 3), doc="spatial dimension (a mesh must have it)")
    mesh: str = param(
        "", doc="mesh file of dimension dim (any format meshio reads); empty: the unit square/cube"
    )

    fields = ("u",)
    equation = (
        "u_t = k lap u  in 2D/3D on [0, 1]^dim or mesh=PATH,  t in [0, 1]; initial and "
        "Dirichlet data (all boundary tags) from u = exp(-k |w|^2 t) sin(w.x + pi/4)"
    )

    def __post_init__(self):
        super().__post_init__()
        self.domain()  # a bad mesh is refused now, not half-way through a solve

    @property
    def coordinates(self) -> tuple[str, ...]:
        return ("x", "y", "z")[: self.dim] + ("t",)

    @property
    def derivatives(self) -> dict[str, tuple[str, ...]]:
        """The derivatives the residual uses, per field (for this dimension)."""
        return {"u": ("t", *self.coordinates[:-1], "laplacian")}

    @property
    def wave_vector(self) -> tuple[float, ...]:
        return WAVE_VECTORS[self.dim]

    def domain(self) -> SpaceTime:
        if self.mesh:
            space = self.user_mesh(self.mesh, self.dim)
        else:
            space = (Rectangle, Box)[self.dim - 2]([0.0] * self.dim, [1.0] * self.dim)
        return SpaceTime(space, TimeDomain(0.0, 1.0))

    def initial_condition(self, x):
        return {"u": torch.sin(x[:, : self.dim] @ self._w(x) + PHASE)}

    def boundary_conditions(self) -> list[BC]:
        return [BC("dirichlet", ("u",), self.exact)]

    def residual(self, f):
        return {"diffusion": f.d("u", "t") - self.k * f.laplacian("u")}

    def flux(self, f):
        return tuple(-self.k * f.d("u", c) for c in self.coordinates[:-1])

    def exact(self, points):
        w = self._w(points)
        rate = self.k * float(sum(c * c for c in self.wave_vector))
        return {"u": torch.exp(-rate * points[:, -1]) * torch.sin(points[:, :-1] @ w + PHASE)}

    def _w(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.wave_vector, dtype=like.dtype, device=like.device)
