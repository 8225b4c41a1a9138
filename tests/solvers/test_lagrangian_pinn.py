"""The Lagrangian PINN (Mojgani, Balajewicz & Hassanzadeh 2023): chain rule, inverse map,
residuals in the label frame, the Eulerian answer, the support check, and small training runs
scored against exact solutions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import pdekit
from pdekit import problems
from pdekit.api import make_config
from pdekit.errors import ParameterError, UnsupportedPairError
from pdekit.problems.convection_diffusion.convection import Convection
from pdekit.solvers import get
from pdekit.solvers.lagrangian_frame import invert_characteristics, physical_derivatives
from pdekit.solvers.networks import (
    MLP,
    CoordinateEmbedding,
    FactorizedLinear,
    FourierFeatures,
    ModifiedMLP,
)

F64 = torch.float64


# -- a known mapping and field ----------------------------------------------------------------
def X_map(a, t):
    """Compressing but monotone: X_a = 1 + 0.3 t cos a >= 0.7."""
    return a + 0.3 * torch.sin(a) * t


def u_field(x, t):
    return torch.exp(-t) * torch.sin(2 * x) + torch.cos(x)


def u_derivs(x, t):
    """(u_t, u_x, u_xx) of :func:`u_field`, by hand."""
    e = torch.exp(-t)
    return (
        -e * torch.sin(2 * x),
        2 * e * torch.cos(2 * x) - torch.sin(x),
        (-4 * e * torch.sin(2 * x) - torch.cos(x)),
    )


def _grad(y, x):
    return torch.autograd.grad(y.sum(), x, create_graph=True)[0]


def test_chain_rule_gives_the_physical_second_derivative():
    """w(a, t) = u(X(a, t), t): u_xx from label derivatives equals the exact u_xx at X, to
    round-off in float64 (measured 8.9e-16; the released code's w_aa differs by O(1) where
    X_a != 1)."""
    a = torch.linspace(-3, 3, 101, dtype=F64).requires_grad_(True)
    t = torch.full_like(a, 0.8)
    X = X_map(a, t)
    w = u_field(X, t)
    w_a, X_a = _grad(w, a), _grad(X, a)
    w_aa, X_aa = _grad(w_a, a), _grad(X_a, a)
    u_x, u_xx = physical_derivatives(w_a, w_aa, X_a, X_aa)
    _, ux_exact, uxx_exact = u_derivs(X, t)
    torch.testing.assert_close(u_x, ux_exact, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(u_xx, uxx_exact, rtol=1e-13, atol=1e-13)
    assert float((w_aa - uxx_exact).detach().abs().max()) > 0.1  # the label derivative is not u_xx


class Fn(nn.Module):
    """A fixed function of the points as a one-output 'network'."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))

    def forward(self, pts):
        return (self.fn(pts[:, 0], pts[:, 1]) + 0 * self.dummy)[:, None]


def _task(problem, model, cfg=None):
    solver = get("lagrangian_pinn")
    cfg = cfg or make_config("lagrangian_pinn", None, {})
    cfg = make_config("lagrangian_pinn", cfg, {"train.dtype": "float64"})
    return solver.build_task(problem, cfg, model, np.random.default_rng(0), torch.device("cpu"))


@pytest.mark.parametrize("form", ["divided", "cleared"])
def test_label_frame_residuals_on_a_known_mapping(form):
    """R_X = X_t - beta and R_w = w_t - nu u_xx of the Gaussian-pulse problem (times X_a^3 in
    the cleared form), for a mapping that is not its characteristics: exact values by hand
    (u_t + u_x X_t - nu u_xx at X), to round-off (measured 0 and 5.6e-16)."""
    problem = problems.get("convection_diffusion/gaussian_pulse", beta=2.0, nu=0.3)
    cfg = make_config("lagrangian_pinn", None, {"exact_initial_state": False, "state_form": form})
    model = get("lagrangian_pinn").build_model(problem, cfg)
    model = model.to(F64)
    # X = a + s tau N_X with t in [0, 1] (tau = t): N_X = 0.3 sin(a) / s gives X_map
    s = float(model.scale)
    model.char_net = Fn(lambda a, t: 0.3 * torch.sin(a) / s)
    model.state_net = Fn(lambda a, t: u_field(X_map(a, t), t))
    pts = torch.rand(200, 2, dtype=F64) * torch.tensor([2 * math.pi, 1.0], dtype=F64)
    res = _task(problem, model, cfg).residuals(pts)
    a, t = pts[:, 0], pts[:, 1]
    X = X_map(a, t)
    u_t, u_x, u_xx = u_derivs(X, t)
    X_t = 0.3 * torch.sin(a)
    torch.testing.assert_close(res["characteristic"], X_t - 2.0, rtol=1e-13, atol=1e-13)
    expected = u_t + u_x * X_t - 0.3 * u_xx
    if form == "cleared":
        expected = expected * (1.0 + 0.3 * torch.cos(a) * t) ** 3  # X_a^3
    torch.testing.assert_close(res["state"], expected, rtol=1e-13, atol=1e-13)


# -- the inverse map ----------------------------------------------------------------------------
def _char(fn):
    def char(a, t):
        with torch.enable_grad():
            a = a.detach().requires_grad_(True)
            X = fn(a, t)
            (X_a,) = torch.autograd.grad(X.sum(), a)
        return X.detach(), X_a

    return char


TWO_PI = 2 * math.pi
INVERSION_CASES = [
    # (name, map X(a, t), lo, hi, periodic)
    ("shift_beta50", lambda a, t: a + 50 * t, 0.0, TWO_PI, True),
    ("shift_beta100_squeezed",
     lambda a, t: a + 100 * t + 0.9 * torch.sin(a) * t, 0.0, TWO_PI, True),
    ("shift_backwards",
     lambda a, t: a - 37.5 * t + 0.5 * torch.cos(3 * a) * t / 3, 0.0, TWO_PI, True),
    ("burgers_like",
     lambda a, t: a - 0.97 * t * torch.sin(math.pi * a) / math.pi, -1.0, 1.0, False),
    ("bounded_bulge", lambda a, t: a + 0.45 * t * (1 - a * a), -1.0, 1.0, False),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, fn, lo, hi, periodic", INVERSION_CASES, ids=[c[0] for c in INVERSION_CASES]
)
def test_inversion_round_trips(name, fn, lo, hi, periodic):
    """X(X^{-1}(x, t), t) = x (mod the period), labels inside the label interval. Newton stops
    at |X(a) - x| <= 1e-13 (1 + |x|) <= 7.3e-13 or a bracket narrower than 1e-13 (1 + |a|)
    (times X_a <= 1.9 here): bound 2e-12 (the issue asked 1e-6). Measured worst gaps 1.8e-14
    (shift), 6.9e-13 (squeezed), 6.2e-13 (backwards), 1.8e-13 (Burgers), 2.0e-13 (bulge)."""
    gen = torch.Generator().manual_seed(1)
    x = lo + (hi - lo) * torch.rand(4000, generator=gen, dtype=F64)
    t = torch.rand(4000, generator=gen, dtype=F64)
    t[:10] = 0.0
    a = invert_characteristics(_char(fn), x, t, lo, hi, periodic=periodic)
    assert bool(((a >= lo) & (a <= hi)).all())
    gap = fn(a, t) - x
    if periodic:
        gap = torch.remainder(gap + math.pi, TWO_PI) - math.pi
    assert float(gap.abs().max()) <= 2e-12


def test_inversion_of_a_shift_is_the_shifted_label():
    x = torch.linspace(0, TWO_PI, 50, dtype=F64)[:-1]
    t = torch.full_like(x, 0.73)
    a = invert_characteristics(_char(lambda a, t: a + 50 * t), x, t, 0.0, TWO_PI, periodic=True)
    expected = torch.remainder(x - 50 * 0.73, TWO_PI)
    gap = torch.remainder(a - expected + math.pi, TWO_PI) - math.pi
    # X_a = 1: the label error is the stopping residual, <= 1e-13 (1 + 2 pi); measured 3.6e-15
    assert float(gap.abs().max()) <= 1e-12


def test_solution_answers_in_the_eulerian_frame():
    """With the exact characteristics X = a + beta t and w = u0(a), the Solution's predictor
    returns sin(x - beta t) at Eulerian points (inverse map + periodic wrap), to the inverse
    map's stopping residual 1e-13 (1 + 2 pi) (|u'| <= 1); measured 1.6e-14."""
    problem = problems.get("convection_diffusion/convection", beta=50.0)
    solver = get("lagrangian_pinn")
    cfg = make_config("lagrangian_pinn", None, {"train.dtype": "float64"})
    model = solver.build_model(problem, cfg).to(F64)
    assert float(model.scale) == pytest.approx(50.0)
    model.char_net = Fn(lambda a, t: torch.ones_like(a))
    model.state_net = Fn(lambda a, t: torch.zeros_like(a))
    pts = problem.evaluation_grid().points()
    u = solver.predictor(problem, cfg, model)(pts)["u"]
    np.testing.assert_allclose(u, np.sin(pts[:, 0] - 50 * pts[:, 1]), rtol=0, atol=1e-12)


# -- what it supports -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MislabelledConvection(Convection):
    """Claims characteristics at the wrong speed: the support check must catch it."""

    def characteristic_velocity(self, u, points):
        return (torch.full_like(u, self.beta + 1.0),)


@pytest.mark.parametrize(
    "problem, why",
    [
        (problems.get("navier_stokes/taylor_green"), "one scalar field in one space dimension"),
        (problems.get("convection_diffusion/gaussian_pulse", dim=2), "one space dimension"),
        (problems.get("convection_diffusion/allen_cahn"), "does not state a convection-diffusion"),
        (problems.get("porous_medium/heat"), "does not state a convection-diffusion"),
        (MislabelledConvection(beta=5.0), "residual is not u_t + a u_x - D u_xx"),
    ],
    ids=["navier_stokes", "pulse_2d", "allen_cahn", "heat", "wrong_velocity"],
)
def test_declines_what_it_cannot_solve(problem, why):
    reason = get("lagrangian_pinn").supports(problem)
    assert reason is not None and why in reason


@pytest.mark.parametrize("name", ["convection", "gaussian_pulse", "burgers"], ids=lambda n: n)
def test_accepts_the_convection_diffusion_problems(name):
    assert get("lagrangian_pinn").supports(problems.get(f"convection_diffusion/{name}")) is None


def test_support_checks_leave_torchs_generator_alone():
    """Asking which solvers fit a problem cannot shift a user's random stream: every solver's
    check on every registered problem (the Lagrangian PINN's boundary probe on Burgers drew
    from torch's generator) leaves it as it was."""
    for name in problems.names():
        problem = problems.get(name)
        for solver in pdekit.solvers.names():
            state = torch.get_rng_state()
            get(solver).supports(problem)
            assert torch.equal(torch.get_rng_state(), state), (name, solver)


def test_solve_refuses_navier_stokes_with_the_reason():
    with pytest.raises(UnsupportedPairError, match="one space dimension"):
        pdekit.solve("navier_stokes/taylor_green", solver="lagrangian_pinn", steps=1)


# -- configuration of the two branches -------------------------------------------------------------
@pytest.mark.parametrize("branch", ["characteristic", "state"])
def test_periodic_labels_need_a_periodic_embedding(branch):
    """Without the (cos, sin) embedding X - a and w are not periodic in the label, and the
    inverse map, which reads X(a + P) as X(a) + P, would answer at the wrong label."""
    cfg = make_config("lagrangian_pinn", None, {f"{branch}.periodic_harmonics": 0})
    solver = get("lagrangian_pinn")
    with pytest.raises(ParameterError, match=f"{branch}.periodic_harmonics = 0.*1 to 64"):
        solver.build_model(problems.get("convection_diffusion/convection"), cfg)
    # bounded labels (Burgers on [-1, 1]) have no period to respect
    solver.build_model(problems.get("convection_diffusion/burgers"), cfg)


def _parameter_count(in_dim, width, depth, out_dim=1, encoders=0, factorized=False):
    """Trainable numbers of an MLP by its architecture: a layer n_in -> n_out holds
    n_out n_in weights and n_out biases (and n_out log-scales when factorized); the modified
    MLP adds two encoders in_dim -> width."""
    per_out = 2 if factorized else 1
    dims = [in_dim] + [width] * depth + [out_dim]
    layers = list(zip(dims[:-1], dims[1:])) + [(in_dim, width)] * encoders
    return sum(n_out * (n_in + per_out) for n_in, n_out in layers)


def _plain_forward(net, pts):
    """A tanh MLP on the embedding [2 t - 1, cos x, sin x] of (x, t) in [0, 2 pi) x [0, 1],
    in numpy from the network's weights."""
    x, t = pts[:, 0], pts[:, 1]
    h = np.stack([2 * t - 1, np.cos(x), np.sin(x)], axis=1)
    weights = [(lin.weight.detach().numpy(), lin.bias.detach().numpy()) for lin in net.layers]
    for w, b in weights[:-1]:
        h = np.tanh(h @ w.T + b)
    w, b = weights[-1]
    return h @ w.T + b


def _count(net):
    return sum(p.numel() for p in net.parameters())


def test_branch_network_options_are_honoured():
    """kind, Fourier features and weight factorization reach the branches (parameter counts by
    the architecture's formula); the default branches are plain tanh MLPs on (t, cos x, sin x)
    (their output computed in numpy), Glorot-normal with zero biases, and the same draws as
    before the solver took these options (same seed, same parameters), so earlier runs
    reproduce."""
    problem = problems.get("convection_diffusion/convection")
    solver = get("lagrangian_pinn")
    over = {"state.kind": "modified_mlp", "state.factorization": True,
            "characteristic.fourier_features": 8}  # fmt: skip
    cfg = make_config("lagrangian_pinn", None, over)
    model = solver.build_model(problem, cfg)
    assert isinstance(model.state_net, ModifiedMLP)
    assert any(isinstance(m, FactorizedLinear) for m in model.state_net.modules())
    assert isinstance(model.char_net.embedding, FourierFeatures)
    c, s = cfg.characteristic, cfg.state
    # the embedding of (x periodic, t bounded) with one harmonic: t, cos x, sin x
    assert _count(model.state_net) == _parameter_count(
        3, s.width, s.depth, encoders=2, factorized=True
    )
    # 8 Fourier features give 16 inputs; the frequency matrix B is a buffer, not trained
    assert _count(model.char_net) == _parameter_count(16, c.width, c.depth)
    assert tuple(model.char_net.embedding.B.shape) == (8, 3)

    cfg = make_config("lagrangian_pinn", None, {})
    torch.manual_seed(3)
    model = solver.build_model(problem, cfg)
    pts = np.random.default_rng(0).uniform([0, 0], [TWO_PI, 1], (50, 2))
    for net, c in zip((model.char_net, model.state_net), (cfg.characteristic, cfg.state)):
        assert (c.kind, c.activation, c.periodic_harmonics) == ("mlp", "tanh", 1)
        assert _count(net) == _parameter_count(3, c.width, c.depth)
        got = net(torch.tensor(pts, dtype=torch.float32)).detach().numpy()
        # float32 network against float64 numpy: measured 1.5e-7 on outputs up to 0.4
        np.testing.assert_allclose(got, _plain_forward(net, pts), rtol=0, atol=1e-6)
        for lin in net.layers:
            assert not lin.bias.detach().any()
            n_out, n_in = lin.weight.shape
            if n_in == n_out:  # Glorot normal: std sqrt(2 / (n_in + n_out)); 2500 draws, +-1.4 %
                glorot = math.sqrt(2 / (n_in + n_out))
                assert abs(float(lin.weight.detach().std()) / glorot - 1) < 0.1, (n_in, n_out)
    torch.manual_seed(3)
    dom = problem.domain()
    plain = [
        MLP(CoordinateEmbedding(dom.bounds, dom.periodic, c.periodic_harmonics), 1, c.width,
            c.depth, c.activation)
        for c in (cfg.characteristic, cfg.state)
    ]  # fmt: skip
    for net, ref in zip((model.char_net, model.state_net), plain, strict=True):
        for (k, v), (k_ref, v_ref) in zip(
            net.state_dict().items(), ref.state_dict().items(), strict=True
        ):
            assert k == k_ref
            torch.testing.assert_close(v, v_ref, rtol=0, atol=0)


def test_modified_state_network_trains():
    """The Gaussian pulse with a modified-MLP state branch, as the plain-MLP training test
    below: float32, 300 Adam + 50 L-BFGS steps; seeds 0, 1, 2 measured 2.1e-3, 3.7e-3, 3.2e-3
    (plain MLP 1.5e-3, 1.6e-3, 2.1e-3): bound 6e-3, the worst x 1.5."""
    sol = pdekit.solve(
        "convection_diffusion/gaussian_pulse",
        solver="lagrangian_pinn",
        steps=300,
        device="cpu",
        verbose=False,
        overrides={**SMALL, "state.kind": "modified_mlp"},
    )
    assert sol.errors()["rel_l2"] < 6e-3


# -- training -------------------------------------------------------------------------------------
SMALL = {"train.lbfgs_steps": 50, "train.dtype": "float32"}

TRAINING_CASES = [
    # (problem, params, Adam steps, tolerance on rel_l2, reason)
    ("convection_diffusion/convection", {"beta": 50.0}, 1000, 1.6e-2,
     "float32, 1000 Adam + 50 L-BFGS steps, ~12 s: seeds 0, 1, 2 measured 8.0e-3, 1.1e-2, "
     "5.8e-3 (vanilla PINN ~1); the worst x 1.5"),
    ("convection_diffusion/gaussian_pulse", {}, 300, 3.2e-3,
     "float32, 300 Adam + 50 L-BFGS steps, ~13 s: seeds 0, 1, 2 measured 1.5e-3, 1.6e-3, "
     "2.1e-3; the worst x 1.5"),
]  # fmt: skip


@pytest.mark.parametrize("name, params, steps, tol, reason", TRAINING_CASES, ids=lambda c: str(c))
def test_training_reaches_the_exact_solution(name, params, steps, tol, reason):
    sol = pdekit.solve(
        name,
        solver="lagrangian_pinn",
        steps=steps,
        device="cpu",
        verbose=False,
        overrides=SMALL,
        **params,
    )
    assert sol.errors()["rel_l2"] < tol, reason


def test_untrained_network_is_far_from_the_solution():
    """The training tests can fail: before training the error is of order one."""
    sol = pdekit.solve(
        "convection_diffusion/convection",
        solver="lagrangian_pinn",
        steps=0,
        beta=50.0,
        device="cpu",
        verbose=False,
        overrides={"train.lbfgs_steps": 0},
    )
    assert sol.errors()["rel_l2"] > 0.3


def test_checkpoint_round_trip(tmp_path):
    """A saved and loaded Solution answers the same at Eulerian points (same networks, same
    inverse map), and its config survives."""
    sol = pdekit.solve(
        "convection_diffusion/burgers",
        solver="lagrangian_pinn",
        steps=30,
        device="cpu",
        verbose=False,
        overrides={"train.lbfgs_steps": 0},
    )
    path = sol.save(tmp_path / "lpinn.h5")
    again = pdekit.load(path)
    assert again.solver == "lagrangian_pinn" and again.config == sol.config
    pts = sol.problem.evaluation_grid({"x": 64, "t": 11}).points()
    np.testing.assert_array_equal(again(pts)["u"], sol(pts)["u"])
