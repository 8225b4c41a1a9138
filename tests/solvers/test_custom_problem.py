"""A user defines a PDE in a few lines, registers it and solves it with every solver that can.

This is the README's example: keep them in sync.
"""

import math
from dataclasses import dataclass

import pytest
import torch

import pdekit
from pdekit.errors import UnsupportedPairError
from pdekit.geometries import Interval
from pdekit.problems import BC, Problem, param, register, unregister


@dataclass(frozen=True)
class Poisson1D(Problem):
    """-u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0; exact u = sin(pi x)."""

    amplitude: float = param(1.0, low=0.0, high=10.0, doc="source amplitude")
    coordinates = ("x",)
    fields = ("u",)
    derivatives = {"u": ("xx",)}

    def domain(self):
        return Interval(0.0, 1.0)

    def boundary_conditions(self):
        return [BC("dirichlet", ("u",), lambda p: {"u": torch.zeros_like(p[:, 0])})]

    def residual(self, f):
        x = f.coord("x")
        return {"poisson": -f.d("u", "xx") - self.amplitude * math.pi**2 * torch.sin(math.pi * x)}

    def exact(self, points):
        return {"u": self.amplitude * torch.sin(math.pi * points[:, 0])}


@dataclass(frozen=True)
class ThirdOrder(Problem):
    """u''' = -cos x on [0, 1] with u = sin x at both ends: needs a 3rd derivative."""

    coordinates = ("x",)
    fields = ("u",)
    derivatives = {"u": ("xxx",)}

    def domain(self):
        return Interval(0.0, 1.0)

    def boundary_conditions(self):
        return [BC("dirichlet", ("u",), lambda p: {"u": torch.sin(p[:, 0])})]

    def residual(self, f):
        return {"ode": f.d("u", "xxx") + torch.cos(f.coord("x"))}


@pytest.fixture(autouse=True)
def user_problems():
    register("examples/poisson_1d")(Poisson1D)
    register("examples/third_order")(ThirdOrder)
    yield
    unregister("examples/poisson_1d")
    unregister("examples/third_order")


def test_custom_problem_with_every_supporting_solver():
    solvers = pdekit.supported_solvers(pdekit.problems.get("examples/poisson_1d"))
    assert {"pinn", "deepxde"} <= set(solvers)
    for solver in solvers:
        sol = pdekit.solve(
            "examples/poisson_1d",
            solver=solver,
            steps=1000,
            verbose=False,
            config={"sampling": {"n_interior": 256, "n_boundary": 2}},
        )
        # 1D smooth solution, 1k Adam steps: 2e-2 is loose but meaningful (untrained ~1)
        assert sol.errors()["rel_l2"] < 2e-2, solver


def test_unsupported_pair_says_why_and_who_can():
    problem = pdekit.problems.get("examples/third_order")
    assert "pinn" in pdekit.supported_solvers(problem)
    with pytest.raises(
        UnsupportedPairError, match=r"first and second derivatives.*Solvers that do: .*pinn"
    ):
        pdekit.solve("examples/third_order", solver="deepxde", steps=1)


def test_unknown_solver_lists_valid():
    with pytest.raises(pdekit.errors.UnknownNameError, match="valid: .*deepxde.*pinn"):
        pdekit.solve("porous_medium/heat", solver="pinnn")
