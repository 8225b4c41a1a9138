"""State-dependent diffusion in the Lagrangian PINN: u_t + f1 u_x = f2(u, x, t) u_xx
(Mojgani, Balajewicz & Hassanzadeh 2023, eq. 2b), with f2 given by the problem as a callable.

Oracle: a manufactured problem whose flow map and state are known in closed form,

    u_t + sin(x) u_x = f2(u, x, t) u_xx  on [0, pi] x [0, 1],   u = e^t x^2 / pi^2,
    f2(u, x, t) = (pi^2 e^-t u + 2 x sin x) / 2   (= (x^2 + 2 x sin x) / 2 on the solution),
    X(a, t) = 2 arctan(e^t tan(a / 2))           (dX/dt = sin X, X(a, 0) = a),

so that w(a, t) = u(X(a, t), t) makes both Lagrangian residuals vanish to round-off in float64.
The same map with a wrong f2 leaves the state residual (f2 - f2_wrong) u_xx, computed by hand
(times X_a^3 in the cleared form). f2 depends on the state and on x (on the solution it runs
from 0 at x = 0 to pi^2 / 2 at x = pi), so a constant in its place, or f2 taken at the label
instead of X, is caught. The support check accepts the callable and refuses a wrong one; a
callable returning a constant gives the constant's residual exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from pdekit import problems
from pdekit.api import make_config
from pdekit.core.fields import AutogradFields
from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems import BC, Problem, param
from pdekit.problems.convection_diffusion.gaussian_pulse import GaussianPulse
from pdekit.solvers import get
from pdekit.solvers.lagrangian_pinn import diffusion_coefficient, lagrangian_form_mismatch

F64 = torch.float64
PI2 = math.pi**2


def f2_exact(u, points):
    """The manufactured diffusion coefficient f2(u, x, t)."""
    x, t = points[:, 0], points[:, 1]
    return 0.5 * (PI2 * torch.exp(-t) * u + 2.0 * x * torch.sin(x))


@dataclass(frozen=True)
class SineFlowDiffusion(Problem):
    """u_t + sin(x) u_x = f2(u, x, t) u_xx on [0, pi] x [0, 1], exact u = e^t x^2 / pi^2.

    ``f2_factor`` scales the f2 handed to the solver (``diffusivity``) but not the residual:
    1 is consistent, anything else a wrong Lagrangian form. ``constant_f2`` hands the solver
    the number 1 instead of the callable (also wrong)."""

    f2_factor: float = param(1.0, low=0.0, high=10.0, doc="factor on the f2 given the solver")
    constant_f2: bool = param(False, choices=(False, True), doc="give the solver f2 = 1")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}

    def domain(self):
        return SpaceTime(Interval(0.0, math.pi), TimeDomain(0.0, 1.0))

    def exact(self, p):
        x, t = p[:, 0], p[:, 1]
        return {"u": torch.exp(t) * x * x / PI2}

    def initial_condition(self, x):
        return {"u": x[:, 0] ** 2 / PI2}

    def boundary_conditions(self):
        return [
            BC("dirichlet", ("u",), self.exact, "xmin"),
            BC("dirichlet", ("u",), self.exact, "xmax"),
        ]

    def residual(self, f):
        x, t = f.coord("x"), f.coord("t")
        f2 = f2_exact(f["u"], torch.stack([x, t], dim=1))
        return {"pde": f.d("u", "t") + torch.sin(x) * f.d("u", "x") - f2 * f.d("u", "xx")}

    def characteristic_velocity(self, u, points):
        return (torch.sin(points[:, 0]),)

    @property
    def diffusivity(self):
        if self.constant_f2:
            return 1.0
        k = self.f2_factor
        return lambda u, points: k * f2_exact(u, points)


def X_exact(a, t):
    return 2.0 * torch.atan(torch.exp(t) * torch.tan(0.5 * a))


def X_a_exact(a, t):
    """dX/da by hand: e^t sec^2(a/2) / (1 + e^2t tan^2(a/2))."""
    q = torch.exp(t) * torch.tan(0.5 * a)
    return torch.exp(t) / torch.cos(0.5 * a) ** 2 / (1.0 + q * q)


class ExactFlow(nn.Module):
    """The exact characteristic map and carried state in place of the two branches."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))

    def characteristic(self, pts):
        return X_exact(pts[:, 0], pts[:, 1]) + 0 * self.dummy

    def state(self, pts):
        X, t = self.characteristic(pts), pts[:, 1]
        return torch.exp(t) * X * X / PI2


def _residuals(problem, model, form):
    cfg = make_config("lagrangian_pinn", None, {"state_form": form, "train.dtype": "float64"})
    task = get("lagrangian_pinn").build_task(
        problem, cfg, model, np.random.default_rng(0), torch.device("cpu")
    )
    gen = torch.Generator().manual_seed(0)
    # labels inside (0, pi): tan(a/2) is finite; X_a ranges over about [0.4, 2.7]
    a = 0.05 + (math.pi - 0.1) * torch.rand(400, generator=gen, dtype=F64)
    t = torch.rand(400, generator=gen, dtype=F64)
    return task.residuals(torch.stack([a, t], dim=1)), a, t


def test_manufactured_solution_is_a_solution():
    """The oracle itself: u = e^t x^2 / pi^2 zeroes the problem's Eulerian residual (autograd,
    float64), and f2 is far from constant on it (so a constant D could not pass below)."""
    problem = SineFlowDiffusion()
    pts = torch.rand(300, 2, dtype=F64) * torch.tensor([math.pi, 1.0], dtype=F64)
    pts.requires_grad_(True)
    u = problem.exact(pts)["u"]
    (r,) = problem.residual(AutogradFields(pts, {"u": u}, problem.coordinates)).values()
    assert float(r.detach().abs().max()) < 1e-12
    f2 = f2_exact(u, pts).detach()
    assert float(f2.max() / f2.min()) > 10.0


@pytest.mark.parametrize("form", ["cleared", "divided"])
def test_exact_flow_zeroes_both_residuals_with_a_state_dependent_f2(form):
    """R_X = X_t - sin X and R_w (chain rule through X_a, f2 at (w, X, t)) vanish at the exact
    map and state: float64 round-off, below 1e-11 (measured largest: R_X 3.3e-16, R_w 1.6e-14
    cleared and 1.3e-13 divided, with R_w of order 1 for a wrong f2 below)."""
    res, _, _ = _residuals(SineFlowDiffusion(), ExactFlow(), form)
    assert float(res["characteristic"].detach().abs().max()) < 1e-11
    assert float(res["state"].detach().abs().max()) < 1e-11


@pytest.mark.parametrize("form", ["cleared", "divided"])
@pytest.mark.parametrize(
    "wrong, f2_of",
    [
        ({"f2_factor": 1.5}, lambda f2: 1.5 * f2),
        ({"constant_f2": True}, lambda f2: torch.ones_like(f2)),
    ],
    ids=["scaled", "constant"],
)
def test_a_wrong_f2_leaves_its_difference_times_u_xx(form, wrong, f2_of):
    """With the solver's f2 wrong, R_w = (f2 - f2_wrong) u_xx at X, u_xx = 2 e^t / pi^2 (times
    X_a^3 cleared), by hand, to 1e-10; it is at least 1e-3 somewhere."""
    res, a, t = _residuals(SineFlowDiffusion(**wrong), ExactFlow(), form)
    X = X_exact(a, t)
    u = torch.exp(t) * X * X / PI2
    f2 = f2_exact(u, torch.stack([X, t], dim=1))
    expected = (f2 - f2_of(f2)) * 2.0 * torch.exp(t) / PI2
    if form == "cleared":
        expected = expected * X_a_exact(a, t) ** 3
    got = res["state"].detach()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert float(got.abs().max()) > 1e-3


def test_support_check_accepts_the_callable_and_refuses_a_wrong_one():
    assert lagrangian_form_mismatch(SineFlowDiffusion()) is None
    for wrong in ({"f2_factor": 1.5}, {"constant_f2": True}):
        why = lagrangian_form_mismatch(SineFlowDiffusion(**wrong))
        assert why is not None and "is not u_t + a u_x - D u_xx" in why


@dataclass(frozen=True)
class PulseWithCallable(GaussianPulse):
    """The Gaussian pulse with its constant nu handed over as a function (or a bad one)."""

    shape_ok: bool = param(True, choices=(True, False), doc="return one value per point")

    @property
    def diffusivity(self):
        nu = self.nu
        if self.shape_ok:
            return lambda u, points: torch.full_like(u, nu)
        return lambda u, points: torch.full((2, len(u)), nu)


@pytest.mark.parametrize("form", ["cleared", "divided"])
def test_a_constant_callable_gives_the_constant_residual(form):
    """f2 = nu as a callable and as a number give identical residuals (the number's path is
    unchanged) on a network that is not the solution."""
    base = problems.get("convection_diffusion/gaussian_pulse", beta=2.0, nu=0.3)
    other = PulseWithCallable(beta=2.0, nu=0.3)
    cfg = make_config("lagrangian_pinn", None, {"state_form": form, "train.dtype": "float64"})
    torch.manual_seed(0)
    model = get("lagrangian_pinn").build_model(base, cfg).to(F64)
    pts = torch.rand(200, 2, dtype=F64) * torch.tensor([2 * math.pi, 1.0], dtype=F64)
    out = []
    for p in (base, other):
        task = get("lagrangian_pinn").build_task(
            p, cfg, model, np.random.default_rng(0), torch.device("cpu")
        )
        out.append({k: v.detach() for k, v in task.residuals(pts).items()})
    assert float(out[0]["state"].abs().max()) > 1e-3
    for k in out[0]:
        torch.testing.assert_close(out[1][k], out[0][k], rtol=0, atol=0)


def test_a_diffusivity_function_must_give_one_value_per_point():
    u = torch.zeros(5, dtype=F64)
    pts = torch.zeros(5, 2, dtype=F64)
    assert diffusion_coefficient(0.3, u, pts) == 0.3
    with pytest.raises(ValueError, match="one value per point"):
        diffusion_coefficient(lambda u, p: torch.zeros(2, 5), u, pts)
    why = lagrangian_form_mismatch(PulseWithCallable(shape_ok=False))
    assert why is not None and "one value per point" in why
