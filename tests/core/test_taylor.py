"""Taylor engine against nested autograd: every declared derivative, and parameter gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pdekit.core import AutogradFields, TaylorFields, UndeclaredDerivativeError
from pdekit.core.taylor import Jet, plan
from pdekit.errors import ParameterError
from pdekit.solvers.networks import NetworkConfig, build_mlp

COORDS = ("x", "y", "t")
BOUNDS = np.array([[-1.0, 0.0, 0.0], [2.0, 2 * np.pi, 1.5]])
PERIODIC = (False, True, False)
FIELDS = ("u", "v", "p")
# a Navier-Stokes-like declaration with a mixed and a pure time second derivative
DECLARED = {
    "u": ("x", "y", "t", "xx", "yy", "xt"),
    "v": ("x", "y", "xx", "yy"),
    "p": ("x", "y", "tt"),
}

NETWORKS = {
    # name: NetworkConfig overrides
    "mlp-tanh": {},
    "mlp-sin": {"activation": "sin"},
    "mlp-gelu": {"activation": "gelu"},
    "mlp-softplus": {"activation": "softplus"},
    "mlp-no-periodic-embedding": {"periodic_harmonics": 0},
    "mlp-periodic-3-harmonics": {"periodic_harmonics": 3},
    "mlp-fourier": {"fourier_features": 8, "fourier_scale": 2.0},
    "modified-tanh": {"kind": "modified_mlp"},
    "modified-gelu-fourier": {"kind": "modified_mlp", "activation": "gelu", "fourier_features": 6},
    "modified-softplus": {"kind": "modified_mlp", "activation": "softplus"},
    "mlp-factorized": {"factorization": True},
    "modified-factorized": {"kind": "modified_mlp", "factorization": True},
}


def network(overrides, seed=0):
    torch.manual_seed(seed)
    cfg = NetworkConfig(width=16, depth=3, **overrides)
    return build_mlp(cfg, BOUNDS, PERIODIC, len(FIELDS)).double()


def random_points(n, seed):
    rng = np.random.default_rng(seed)
    pts = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * rng.random((n, 3))
    return torch.tensor(pts)


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def both_engines(model, pts, declared=DECLARED):
    taylor = TaylorFields(model, pts, COORDS, FIELDS, declared)
    p = pts.clone().requires_grad_(True)
    out = model(p)
    auto = AutogradFields(p, {f: out[:, i] for i, f in enumerate(FIELDS)}, COORDS, declared)
    return taylor, auto


def compare(taylor, auto, declared=DECLARED, tol=1e-12):
    """Relative to the larger of the derivative and 1e-3 x the largest derivative of the same
    field: a derivative far smaller than its siblings (one point where v_y happens to be 7e-6
    while v_x is O(1)) is a cancellation of O(1) terms, and its round-off is relative to those.
    The value is held to the same rule (hypothesis found p = 1e-4 at one point, a cancellation
    in the last layer, 2e-12 off)."""
    for f, specs in declared.items():
        scale = max([float(auto[f].abs().max())] + [float(auto.d(f, s).abs().max()) for s in specs])
        err = float((taylor[f] - auto[f]).abs().max())  # the value: the same rule
        assert err <= tol * max(float(auto[f].abs().max()), 1e-3 * scale, 1e-300), (f, err)
        for s in specs:
            a, b = taylor.d(f, s), auto.d(f, s)
            err = float((a - b).abs().max()) / max(float(b.abs().max()), 1e-3 * scale, 1e-300)
            assert err <= tol, (f, s, err)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_taylor_equals_autograd_on_every_declared_derivative(name):
    model = network(NETWORKS[name])
    assert TaylorFields.supports(model)
    taylor, auto = both_engines(model, random_points(64, 1))
    # float64: both engines are exact up to round-off, so 1e-12 relative (the bar)
    compare(taylor, auto)


@pytest.mark.parametrize("name", ["mlp-tanh", "modified-gelu-fourier", "mlp-periodic-3-harmonics"])
def test_parameter_gradients_equal_autograd(name):
    # the loss of a residual built from the fields: reverse mode through the Taylor
    # propagation gives the same parameter gradient as through nested autograd
    model = network(NETWORKS[name], seed=4)
    pts = random_points(48, 2)

    def loss(f):
        r1 = f.d("u", "t") + f["u"] * f.d("u", "x") + f["v"] * f.d("u", "y") + f.d("p", "x")
        r1 = r1 - 0.01 * (f.d("u", "xx") + f.d("u", "yy")) + f.d("u", "xt")
        r2 = f.d("u", "x") + f.d("v", "y") + f.d("p", "tt") * f.d("v", "xx")
        return (r1**2).mean() + (r2**2).mean()

    taylor, auto = both_engines(model, pts)
    params = list(model.parameters())
    g_taylor = torch.autograd.grad(loss(taylor), params)
    g_auto = torch.autograd.grad(loss(auto), params)
    for a, b in zip(g_taylor, g_auto):
        assert rel(a, b) <= 1e-12  # float64 round-off of two exact evaluations


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(NETWORKS)),
    seed=st.integers(0, 2**16),
    n=st.integers(1, 20),
    scale=st.sampled_from([1e-3, 1.0, 4.0]),
)
def test_taylor_equals_autograd_under_random_inputs(name, seed, n, scale):
    # random networks and inputs, including points outside the box (scale 4) and clustered
    model = network(NETWORKS[name], seed=seed % 97)
    rng = np.random.default_rng(seed)
    pts = torch.tensor(BOUNDS.mean(0) + scale * rng.normal(size=(n, 3)))
    taylor, auto = both_engines(model, pts)
    compare(taylor, auto)


def test_only_declared_derivatives_are_propagated():
    # Kovasznay-like: (x, y), first x, y and second xx, yy only: 1 + 2 + 2 slots
    dirs, pairs = plan({"u": {(0,), (1,), (0, 0), (1, 1)}, "p": {(0,)}}, 2)
    assert dirs == (0, 1) and pairs == ((0, 0), (1, 1))
    # heat in (x, t): t, x, xx -> directions both, one pair
    assert plan({"u": {(1,), (0,), (0, 0)}}, 2) == ((0, 1), ((0, 0),))
    # a second derivative alone brings in its first-derivative direction, nothing else
    assert plan({"u": {(2, 2)}}, 3) == ((2,), ((0, 0),))
    model = network({})
    f = TaylorFields(model, random_points(5, 0), COORDS, FIELDS, {"u": ("xx",)})
    f.d("u", "xx")
    assert [t.shape for t in f._outputs()["u"]] == [(5,)] * 3  # value, u_x, u_xx
    with pytest.raises(UndeclaredDerivativeError, match="du/dx"):
        f.d("u", "x")


def test_engine_errors():
    model = network({})
    pts = random_points(4, 0)
    with pytest.raises(ParameterError, match="second order"):
        TaylorFields(model, pts, COORDS, FIELDS, {"u": ("xxx",)})
    plain = nn.Sequential(nn.Linear(3, 3))
    assert not TaylorFields.supports(plain)
    with pytest.raises(ParameterError, match="forward_taylor"):
        TaylorFields(plain, pts, COORDS, FIELDS, DECLARED)
    with pytest.raises(ValueError, match="outputs"):
        TaylorFields(model, pts, COORDS, ("u", "v"), {"u": ("x",)})["u"]
    with pytest.raises(ValueError, match="unknown"):
        Jet.input(pts, (0,), ()).apply("relu")


def test_no_declaration_propagates_everything():
    model = network({"kind": "modified_mlp"})
    pts = random_points(16, 5)
    everything = {f: ("x", "y", "t", "xx", "yy", "tt", "xy", "xt", "yt") for f in FIELDS}
    taylor = TaylorFields(model, pts, COORDS, FIELDS, None)
    _, auto = both_engines(model, pts, None)
    compare(taylor, auto, everything)


# -- the Laplacian carried as one slot (forward Laplacian) ------------------------------------
# with a mixed pair (x, t) beside it, so the jet carries both kinds of second-order slot
LAP_DECLARED = {
    "u": ("x", "y", "t", "laplacian"),
    "v": ("x", "y", "laplacian", "xt"),
    "p": ("x", "y"),
}


def compare_laplacian(taylor, auto, declared=LAP_DECLARED, tol=1e-12):
    compare(taylor, auto, {f: tuple(s for s in v if s != "laplacian") for f, v in declared.items()})
    for f, specs in declared.items():
        if "laplacian" in specs:
            want = auto.d(f, "xx") + auto.d(f, "yy")  # autograd: the sum of pure seconds
            assert rel(taylor.laplacian(f), want) <= tol, f
            assert torch.equal(auto.laplacian(f), want)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_taylor_laplacian_equals_the_sum_of_pure_second_derivatives(name):
    model = network(NETWORKS[name], seed=7)
    pts = random_points(64, 3)
    taylor = TaylorFields(model, pts, COORDS, FIELDS, LAP_DECLARED)
    _, auto = both_engines(model, pts, None)  # autograd with everything allowed
    compare_laplacian(taylor, auto)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(NETWORKS)), seed=st.integers(0, 2**16), n=st.integers(1, 20))
def test_taylor_laplacian_under_random_inputs(name, seed, n):
    model = network(NETWORKS[name], seed=seed % 89)
    rng = np.random.default_rng(seed)
    pts = torch.tensor(BOUNDS.mean(0) + 2.0 * rng.normal(size=(n, 3)))
    taylor = TaylorFields(model, pts, COORDS, FIELDS, LAP_DECLARED)
    _, auto = both_engines(model, pts, None)
    compare_laplacian(taylor, auto)


def test_laplacian_parameter_gradients_equal_autograd():
    model = network(NETWORKS["modified-tanh"], seed=5)
    pts = random_points(48, 6)

    def loss(f):
        r1 = f.d("u", "t") + f["u"] * f.d("u", "x") + f["v"] * f.d("u", "y") + f.d("p", "x")
        r1 = r1 - 0.01 * f.laplacian("u") + f["u"] * f.laplacian("v")
        r2 = f.d("u", "x") + f.d("v", "y") + f.d("v", "xt")
        return (r1**2).mean() + (r2**2).mean()

    taylor, auto = both_engines(model, pts, LAP_DECLARED)
    params = list(model.parameters())
    for a, b in zip(
        torch.autograd.grad(loss(taylor), params), torch.autograd.grad(loss(auto), params)
    ):
        assert rel(a, b) <= 1e-12


def test_the_laplacian_takes_one_slot():
    model = network({})
    pts = random_points(5, 0)
    ns = {"u": ("t", "x", "y", "laplacian"), "v": ("t", "x", "y", "laplacian"), "p": ("x", "y")}
    f = TaylorFields(model, pts, COORDS, FIELDS, ns)
    # value, x, y, t, Laplacian: 5 slots where u_xx and u_yy would take 6
    assert len(f._outputs()["u"]) == 5 and f.lap == (0, 1) and f.pairs == ()
    # the Laplacian alone still brings in both spatial directions, and no time direction
    g = TaylorFields(model, pts, COORDS, FIELDS, {"u": ("laplacian",)})
    assert g.directions == (0, 1) and len(g._outputs()["u"]) == 4
    g.laplacian("u")
    with pytest.raises(UndeclaredDerivativeError, match="du/dxx"):
        g.d("u", "xx")  # carried only inside the sum
    with pytest.raises(UndeclaredDerivativeError, match="dp/dlaplacian"):
        f.laplacian("p")
