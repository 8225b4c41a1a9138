"""The traction ("do-nothing") condition b du_i/dn - p n_i = g_i in the PINN's physics loss.

Oracle: a field given in closed form, u = (x y, -y^2 / 2), p = x + 2 y, on the unit square with
traction data 0 on x = 1 (n = (1, 0)) and on y = 1 (n = (0, 1)): the misfit is the operator
applied to the field, computed by hand. A traction BC without its pressure field, and the grid
engines (which have no form for it), are refused with a message."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from pdekit.errors import ParameterError
from pdekit.geometries import Grid, Rectangle
from pdekit.problems import BC, Problem, param
from pdekit.problems.grid import grid_boundary
from pdekit.solvers.physics import PhysicsLoss, SamplingConfig

F64 = torch.float64
NU = 0.1


@dataclass(frozen=True)
class Box(Problem):
    nu: float = param(NU, low=0.0, high=1.0, low_open=True, doc="viscosity")

    coordinates = ("x", "y")
    fields = ("u", "v", "p")
    derivatives = {"u": ("x", "y"), "v": ("x", "y"), "p": ("x",)}

    def domain(self):
        return Rectangle((0.0, 0.0), (1.0, 1.0))

    def boundary_conditions(self):
        def zero(p):
            z = torch.zeros_like(p[:, 0])
            return {"u": z, "v": z}

        return [
            BC("traction", ("u", "v"), zero, tag="xmax", b=self.nu, pressure="p"),
            BC("traction", ("u", "v"), zero, tag="ymax", b=self.nu, pressure="p"),
        ]

    def residual(self, f):
        return {"continuity": f.d("u", "x") + f.d("v", "y")}


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))

    def forward(self, p):
        x, y = p[:, 0], p[:, 1]
        return torch.stack([x * y, -0.5 * y * y, x + 2 * y], dim=1) + 0 * self.dummy


def test_traction_misfit_is_the_operator_of_the_field():
    problem = Box()
    physics = PhysicsLoss(
        problem,
        SamplingConfig(n_interior=8, n_boundary=64),
        np.random.default_rng(0),
        device=torch.device("cpu"),
        dtype=F64,
    )
    batch = physics.sample()
    misfit = physics.boundary_misfit(Field(), batch)
    assert sorted(misfit) == ["xmax0/u", "xmax0/v", "ymax1/u", "ymax1/v"]
    (right, _), (top, _) = batch.boundary
    x, y = right[:, 0], right[:, 1]  # x = 1, n = (1, 0): (nu y - p, nu * 0)
    torch.testing.assert_close(misfit["xmax0/u"], NU * y - (x + 2 * y))
    torch.testing.assert_close(misfit["xmax0/v"], torch.zeros_like(y))
    x, y = top[:, 0], top[:, 1]  # y = 1, n = (0, 1): (nu x, -nu y - p)
    torch.testing.assert_close(misfit["ymax1/u"], NU * x)
    torch.testing.assert_close(misfit["ymax1/v"], -NU * y - (x + 2 * y))


def test_traction_needs_its_pressure_field():
    with pytest.raises(ParameterError, match="pressure"):
        BC("traction", ("u", "v"), lambda p: {}, tag="xmax", b=NU)
    with pytest.raises(ParameterError, match="pressure"):
        BC("dirichlet", ("u",), lambda p: {}, pressure="p")
    with pytest.raises(ParameterError, match="viscosity b"):
        BC("traction", ("u", "v"), lambda p: {}, tag="xmax", pressure="p")


def test_grid_engines_refuse_a_traction_condition():
    grid = Grid((0.0, 0.0), (1.0, 1.0), (8, 8), (False, False), ("x", "y"))
    with pytest.raises(ParameterError, match="traction"):
        grid_boundary(Box(), grid)
