"""Robin conditions a u + b du/dn = g in every backend that loops over a problem's BCs.

Oracle: a manufactured diffusion problem with Robin data at both ends (coefficients numbers and
functions of the points). The misfit of its exact solution is zero to round-off, and the misfit
of the exact solution plus a known perturbation d is the Robin operator applied to d,
a d + b dd/dn (DeepXDE's RobinBC: dd/dn + a d / b), computed by hand (at least 5e-4 here) --
for the PINN's physics loss, the DeepXDE baseline's conditions and the Lagrangian PINN's
boundary terms. The
finite-volume reference solver, fed the same BCs through ``simulate``, converges to the exact
solution at second order. Last, PINN and DeepXDE runs on diffusion-sorption, whose x = 1 outflow
condition is a Robin BC, train with a finite loss that includes that term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import pdekit
from pdekit.api import make_config
from pdekit.geometries import Grid, Interval, SpaceTime, TimeDomain
from pdekit.problems import BC, Problem, param
from pdekit.problems.references.fv_gpme import simulate_gpme
from pdekit.solvers import get
from pdekit.solvers.deepxde_baseline import _dde
from pdekit.solvers.physics import PhysicsLoss, SamplingConfig

F64 = torch.float64
K, PHI = 2.0, 0.3


@dataclass(frozen=True)
class RobinHeat(Problem):
    """u_t = D u_xx on [0, 1] x [0, 1], exact u = 1 + exp(-D K^2 t) sin(K x + PHI).

    x = 0: a = 1 + t (a function), b = ``b_left`` (a number; 0 makes it Dirichlet-like);
    x = 1: a = 2 (a number), b = 0.5 + t (a function); g from the exact solution."""

    D: float = param(0.2, low=0.0, high=1.0, low_open=True, doc="diffusivity")
    b_left: float = param(0.5, low=0.0, high=1.0, doc="Robin b at x = 0")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}
    state_location = "center"

    def domain(self):
        return SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 1.0))

    def exact(self, p):
        x, t = p[:, 0], p[:, 1]
        return {"u": 1.0 + torch.exp(-self.D * K * K * t) * torch.sin(K * x + PHI)}

    def u_x(self, p):
        x, t = p[:, 0], p[:, 1]
        return K * torch.exp(-self.D * K * K * t) * torch.cos(K * x + PHI)

    def initial_condition(self, x):
        return self.exact(torch.cat([x, torch.zeros_like(x[:, :1])], dim=1))

    @staticmethod
    def a_left(p):
        return 1.0 + p[:, -1]

    @staticmethod
    def b_right(p):
        return 0.5 + p[:, -1]

    def boundary_conditions(self):
        def left(p):  # outward normal -x: du/dn = -u_x
            return {"u": self.a_left(p) * self.exact(p)["u"] - self.b_left * self.u_x(p)}

        def right(p):
            return {"u": 2.0 * self.exact(p)["u"] + self.b_right(p) * self.u_x(p)}

        return [
            BC("robin", ("u",), left, "xmin", a=self.a_left, b=self.b_left),
            BC("robin", ("u",), right, "xmax", a=2.0, b=self.b_right),
        ]

    def residual(self, f):
        return {"heat": f.d("u", "t") - self.D * f.d("u", "xx")}

    def characteristic_velocity(self, u, points):
        return (0.0,)

    @property
    def diffusivity(self):
        return self.D

    def simulate(self, initial_states, grid, times, *, rtol=1e-9):
        k = self.D
        return simulate_gpme(
            self,
            initial_states,
            grid,
            times,
            k=lambda u: np.full_like(u, k),
            kirchhoff=lambda u: k * u,
            rtol=rtol,
        )


EPS = 1e-3


def perturbation(p):
    """d = EPS (1 + x^2 + t) and its x-derivative."""
    x, t = p[:, 0], p[:, 1]
    return EPS * (1.0 + x * x + t), EPS * 2.0 * x


def robin_of_perturbation(problem, p):
    """a d + b dd/dn on each side, by hand."""
    d, dx = perturbation(p)
    t = p[:, 1]
    left = p[:, 0] < 0.5
    return torch.where(left, (1.0 + t) * d - problem.b_left * dx, 2.0 * d + (0.5 + t) * dx)


class Field(nn.Module):
    """The exact solution (plus the perturbation) as a one-output 'network'."""

    def __init__(self, problem, perturbed):
        super().__init__()
        self.problem, self.perturbed = problem, perturbed
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))

    def forward(self, p):
        u = self.problem.exact(p)["u"] + 0 * self.dummy
        if self.perturbed:
            u = u + perturbation(p)[0]
        return u[:, None]


@pytest.mark.parametrize("b_left", [0.5, 0.0])
def test_physics_loss_robin_misfit(b_left):
    problem = RobinHeat(b_left=b_left)
    sampling = SamplingConfig(n_interior=8, n_boundary=64, n_initial=8)
    physics = PhysicsLoss(
        problem, sampling, np.random.default_rng(0), device=torch.device("cpu"), dtype=F64
    )
    batch = physics.sample()
    exact = physics.boundary_misfit(Field(problem, False), batch)
    assert sorted(exact) == ["xmax1/u", "xmin0/u"]
    assert max(float(v.detach().abs().max()) for v in exact.values()) < 1e-14
    perturbed = physics.boundary_misfit(Field(problem, True), batch)
    for (pts, _), key in zip(batch.boundary, ("xmin0/u", "xmax1/u")):
        want = robin_of_perturbation(problem, pts)
        torch.testing.assert_close(perturbed[key], want, rtol=1e-12, atol=1e-15)
        assert float(want.abs().min()) > 5e-4  # the misfit sees the perturbation


@pytest.mark.parametrize("b_left", [0.5, 0.0])
def test_deepxde_robin_conditions(b_left):
    """RobinBC where b != 0 (error du/dn - (g - a u) / b), DirichletBC u = g / a where b is 0."""
    dde = _dde()
    problem = RobinHeat(b_left=b_left)
    solver = get("deepxde")
    try:
        dde.config.set_default_float("float64")
        geom = solver._geometry(dde, problem)
        _, conditions = solver._conditions(dde, problem, geom, initial=False, boundary=True)
        kinds = [type(c).__name__ for c in conditions]
        assert kinds == ["DirichletBC" if b_left == 0 else "RobinBC", "RobinBC"]
        X = geom.uniform_boundary_points(64)
        for cond in conditions:
            Xb = cond.filter(X)
            assert len(Xb) > 8
            pts = torch.as_tensor(Xb, dtype=F64)
            errors = []
            for perturbed in (False, True):
                inputs = pts.clone().requires_grad_(True)
                outputs = Field(problem, perturbed)(inputs)
                dde.grad.clear()
                errors.append(cond.error(Xb, inputs, outputs, 0, len(Xb)).detach().reshape(-1))
            assert float(errors[0].abs().max()) < 1e-13
            if type(cond).__name__ == "DirichletBC":  # u - g / a: the perturbation itself
                want = perturbation(pts)[0]
            else:
                a, b = problem.boundary_conditions()[int(Xb[0, 0] > 0.5)].coefficients(pts)
                want = robin_of_perturbation(problem, pts) / b
            torch.testing.assert_close(errors[1], want, rtol=1e-12, atol=1e-15)
            assert float(want.abs().min()) > 5e-4
    finally:
        dde.config.set_default_float("float32")


def test_lagrangian_pinn_robin_misfit():
    """Zero characteristic velocity: X(a, t) = a, and the state branch carries u itself."""
    problem = RobinHeat()
    solver = get("lagrangian_pinn")
    assert solver.supports(problem) is None
    cfg = make_config(
        "lagrangian_pinn",
        None,
        {"exact_initial_state": False, "train.dtype": "float64", "sampling.n_boundary": 64},
    )
    model = solver.build_model(problem, cfg).to(F64)

    class Zero(nn.Module):
        def forward(self, p):
            return torch.zeros_like(p[:, :1])

    model.char_net = Zero()
    for perturbed in (False, True):
        model.state_net = Field(problem, perturbed)
        task = solver.build_task(problem, cfg, model, np.random.default_rng(0), torch.device("cpu"))
        task.batch = task.draw_batch()
        misfit = task.boundary_misfit()
        assert sorted(misfit) == ["xmax1/state", "xmin0/state"]
        for (pts, _), key in zip(task.batch.boundary, ("xmin0/state", "xmax1/state")):
            torch.testing.assert_close(model.characteristic(pts), pts[:, 0], rtol=0, atol=0)
            if not perturbed:
                assert float(misfit[key].detach().abs().max()) < 1e-14
            else:
                want = robin_of_perturbation(problem, pts)
                torch.testing.assert_close(misfit[key], want, rtol=1e-12, atol=1e-15)


def test_finite_volume_takes_robin_data_from_the_problem():
    """simulate reads both Robin BCs (functions of x and t among the coefficients) and
    converges to the exact solution at second order (max error at t = 1; measured order 2.0)."""
    problem = RobinHeat()
    times = [0.0, 0.5, 1.0]
    ns, errors = [16, 32, 64], []
    for n in ns:
        grid = Grid([0.0], [1.0], n)
        pts = torch.as_tensor(grid.points())
        u0 = problem.initial_state(grid)["u"][None]
        u = problem.simulate({"u": u0}, grid, times)["u"][0, -1]
        end = torch.cat([pts, torch.ones_like(pts)], dim=1)
        errors.append(float(np.abs(u - problem.exact(end)["u"].numpy()).max()))
    order = np.polyfit(np.log(ns), np.log(errors), 1)[0]
    print(f"\n[robin] FV max errors {errors}, order {-order:.2f}")
    assert 1.8 < -order < 2.3


@pytest.mark.parametrize("solver", ["pinn", "deepxde"])
def test_diffusion_sorption_trains_with_its_robin_outflow(solver):
    small = {"network.width": 8, "network.depth": 1, "sampling.n_interior": 64}
    small.update({"sampling.n_boundary": 32, "sampling.n_initial": 16})
    sol = pdekit.solve(
        "porous_medium/diffusion_sorption",
        solver=solver,
        steps=5,
        verbose=False,
        overrides=small,
    )
    loss = sol.history["loss"]
    assert len(loss) >= 1 and all(math.isfinite(v) for v in loss)
    if solver == "pinn":
        assert "loss/boundary/xmax1/u" in sol.history, sorted(sol.history)
