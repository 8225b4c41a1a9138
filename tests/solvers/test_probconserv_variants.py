"""The rest of ProbConserv: end-to-end training through the constrained likelihood (PhysNP),
the "w/ diff" second-difference prior, the non-negative / monotone post-processing, and MC
dropout at prediction; each against an independent computation."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

import pdekit
from pdekit.errors import ParameterError
from pdekit.solvers.probconserv.physnp import (
    PhysNP,
    constrained_log_prob,
    trapezoid_weights_torch,
)
from pdekit.solvers.probconserv.postprocess import MODES, project
from pdekit.solvers.probconserv.solver import PRETRAINED_DIR, find_checkpoint
from pdekit.solvers.probconserv.update import (
    condition,
    condition_rows,
    diff_rows,
    sample_conditioned_rows,
    second_difference_matrix,
    second_difference_variance,
    trapezoid_weights,
)

TINY = {
    "hidden": 16,
    "heads": 2,
    "latent": 8,
    "decoder_width": 16,
    "decoder_layers": 2,
    "self_attention_blocks": 1,
    "cross_attention_blocks": 1,
    "dropout": 0.0,
}
ROOT = Path(__file__).resolve().parents[2]


def _joint(mu, cov, h, y, noise_cov):
    """Dense Gaussian conditioning of N(mu, cov) on h u = y + N(0, noise_cov) (a linear solve
    of the innovation covariance; no structure used)."""
    s = h @ cov @ h.T + noise_cov
    gain = np.linalg.solve(s, h @ cov).T
    return mu + gain @ (y - h @ mu), cov - gain @ h @ cov


def _case(rng, n):
    x = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, n - 2)]))
    mu = rng.normal(size=n)
    var = rng.uniform(0.01, 0.5, size=n)
    return x, mu, var, trapezoid_weights(x)


# -- "w/ diff": the second-difference rows ------------------------------------------------------
def test_second_difference_variance_is_that_of_a_correlated_field():
    """The reference's closed form = diag(D Sigma D^T) for Sigma_ij = s_i s_j alpha^|i - j|."""
    rng = np.random.default_rng(0)
    n = 9
    s = rng.uniform(0.1, 2.0, n)
    d = second_difference_matrix(n)
    for alpha in (0.0, 0.5, 0.9):
        cov = np.outer(s, s) * alpha ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
        want = np.diag(d @ cov @ d.T)
        np.testing.assert_allclose(second_difference_variance(s**2, alpha), want, rtol=1e-13)


@pytest.mark.parametrize("sigma_g2", [0.0, 0.05])
def test_diff_update_equals_dense_conditioning_joint_and_in_the_papers_order(sigma_g2):
    """condition_rows = dense conditioning on all rows at once = the reference's order
    (second differences first, then the conservation row on the resulting dense Gaussian)."""
    rng = np.random.default_rng(1)
    x, mu, var, g = _case(rng, 12)
    b = 0.7
    h, y, noise = diff_rows(g, b, var, 0.9, sigma_g2)
    got = condition_rows(mu, var, h, y, noise)
    m1, c1 = _joint(mu, np.diag(var), h, y, np.diag(noise))
    d = second_difference_matrix(12)
    m_d, c_d = _joint(mu, np.diag(var), d, np.zeros(10), np.diag(noise[:-1]))
    m2, c2 = _joint(m_d, c_d, g[None], np.array([b]), np.array([[sigma_g2]]))
    for m, c in ((m1, c1), (m2, c2)):  # 12x12 solves of O(1) data: 1e-12
        np.testing.assert_allclose(got.mean, m, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.covariance(), c, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.cov_diag, np.diag(c1), rtol=0, atol=1e-12)


def test_diff_update_conserves_exactly_and_smooths():
    """Batched (30 draws x 201 nodes), sigma_G = 0: g^T mu~ = b to round-off, second
    differences well below those of the plain update, each row's posterior variance within
    its stated noise variance, and Matheron draws conserve and match the covariance."""
    rng = np.random.default_rng(2)
    n = 201
    x = np.linspace(0, 1, n)
    g = trapezoid_weights(x)
    mu = np.where(x < 0.4, 1.0, 0.0) + 0.05 * rng.standard_normal((30, n))
    var = rng.uniform(0.5e-3, 2e-3, size=(30, n))
    b = 0.3
    rows = diff_rows(g, b, var, 0.9)
    got = condition_rows(mu, var, *rows)
    plain = condition(mu, var, g, b)
    assert np.max(np.abs(got.mean @ g - b)) < 1e-14  # a 201-term sum of O(1e-3) terms
    d = second_difference_matrix(n)
    rough = np.linalg.norm(plain.mean @ d.T, axis=-1)
    assert np.all(np.linalg.norm(got.mean @ d.T, axis=-1) < 0.5 * rough)  # measured ~0.2
    cov = got.covariance()
    post = np.einsum("ij,sjk,ik->si", d, cov, d)
    assert np.all(post <= rows[2][..., :-1] * (1 + 1e-9))
    # sampling: one latent draw, 20k draws; every draw conserves exactly
    k = 3
    draws = sample_conditioned_rows(
        mu[k], var[k], rows[0], rows[1][k], rows[2][k],
        rng.standard_normal((20_000, n)), rng.standard_normal((20_000, n - 1)),
    )  # fmt: skip
    assert np.max(np.abs(draws @ g - b)) < 1e-13
    # Monte Carlo: variances ~1e-3, 2e4 draws: standard error of a covariance ~1e-5
    np.testing.assert_allclose(draws.mean(0), got.mean[k], atol=2e-3)
    np.testing.assert_allclose(np.cov(draws.T), cov[k], atol=1e-4)


# -- post-processing ----------------------------------------------------------------------------
def _slsqp(mean, metric, g, b, mode):
    """The same projection by SLSQP with explicit constraints (independent; ~1e-8 accurate)."""
    cons = [{"type": "eq", "fun": lambda u: g @ u - b, "jac": lambda u: g}]
    if mode in ("nonneg", "monotone_nonneg"):
        cons.append({"type": "ineq", "fun": lambda u: u, "jac": lambda u: np.eye(len(u))})
    if mode.startswith("monotone"):
        cons.append({"type": "ineq", "fun": lambda u: -np.diff(u)})
    res = minimize(
        lambda u: (u - mean) @ metric @ (u - mean),
        np.full(len(mean), b / g.sum()),
        jac=lambda u: 2 * metric @ (u - mean),
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 2000},
    )
    # SLSQP may stop at its precision limit ("positive directional derivative"); what is
    # compared is its point, feasible to 1e-9
    assert res.status in (0, 8), res.message
    assert abs(g @ res.x - b) < 1e-9
    return res.x


def _in_set(u, g, b, mode):
    assert abs(g @ u - b) < 1e-15 * max(1.0, abs(b)) * len(u)  # conservation to round-off
    if mode in ("nonneg", "monotone_nonneg"):
        assert u.min() >= -1e-12
    if mode.startswith("monotone"):
        assert np.diff(u).max() <= 1e-12


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sigma_g2", [0.0, 0.02])
def test_projection_matches_slsqp_and_lands_in_the_set(mode, sigma_g2):
    """sigma_G = 0: the covariance Sigma~ is singular along g, and on the plane g^T u = b its
    metric is Sigma^-1 (the prior's); sigma_G > 0: the metric is Sigma~^-1, equality imposed."""
    rng = np.random.default_rng(3)
    for _ in range(4):
        x, mu, var, g = _case(rng, 12)
        mu = mu * 0.3 + np.linspace(0.8, -0.4, 12)  # decreasing-ish, negative at the end
        b = 0.25
        cond = condition(mu, var, g, b, sigma_g2)
        cov = cond.covariance()
        metric = np.diag(1 / var) if sigma_g2 == 0 else np.linalg.inv(cov)
        got = project(cond.mean, cov, g, b, mode)
        _in_set(got, g, b, mode)
        want = _slsqp(cond.mean, metric, g, b, mode)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # SLSQP's accuracy
        # and it is at least as close as SLSQP's answer in the metric
        dist = (got - cond.mean) @ metric @ (got - cond.mean)
        assert dist <= (want - cond.mean) @ metric @ (want - cond.mean) + 1e-10


def test_nonneg_projection_in_the_euclidean_metric_is_water_filling():
    """C = I, g uniform: u_i = max(m_i + lam g_i, 0) with lam fixing the mass (by hand)."""
    rng = np.random.default_rng(4)
    n = 50
    m = rng.normal(size=n)
    g = np.full(n, 1.0 / n)
    b = 0.2
    # sum_i max(m_i + lam / n, 0) / n = b: piecewise linear in lam, solved on the sorted m
    lo, hi = -50.0, 50.0
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        lo, hi = (lam, hi) if np.maximum(m + lam / n, 0).mean() < b else (lo, lam)
    want = np.maximum(m + lam / n, 0)
    got = project(m, np.eye(n), g, b, "nonneg")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    _in_set(got, g, b, "nonneg")


def test_projection_keeps_a_mean_already_in_the_set_and_refuses_an_empty_set():
    x = np.linspace(0, 1, 30)
    g = trapezoid_weights(x)
    u = np.maximum(0.6 - x, 0.0)
    np.testing.assert_allclose(
        project(u, np.diag(np.full(30, 0.1)), g, g @ u, "monotone_nonneg"), u, atol=1e-14
    )
    with pytest.raises(ValueError, match="no field"):
        project(u, np.eye(30), g, -0.1, "nonneg")


# -- PhysNP: the constrained likelihood -----------------------------------------------------------
def test_constrained_log_prob_is_the_density_under_the_updated_gaussian():
    """The reference's O(N) form = log N(y | mu~, Sigma~) with b = g^T y, evaluated densely
    (scipy), per slice, on random sorted nodes."""
    rng = np.random.default_rng(5)
    nt, nx = 3, 8
    x = np.sort(rng.uniform(0, 1, (2, nt, nx)), axis=-1)
    mu, y = rng.normal(size=(2, nt, nx)), rng.normal(size=(2, nt, nx))
    sigma = rng.uniform(0.1, 1.0, (2, nt, nx))
    sg2 = 0.04
    got = constrained_log_prob(
        *(torch.tensor(a) for a in (y, mu, sigma, x)), torch.tensor(sg2, dtype=torch.float64)
    )
    want = np.zeros(2)
    for f in range(2):
        for t in range(nt):
            g = trapezoid_weights(x[f, t])
            np.testing.assert_allclose(
                trapezoid_weights_torch(torch.tensor(x[f, t])).numpy(), g, rtol=1e-14
            )
            c = condition(mu[f, t], sigma[f, t] ** 2, g, g @ y[f, t], sg2)
            want[f] += multivariate_normal(c.mean, c.covariance()).logpdf(y[f, t])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    # the documented property of this loss: it always favours a smaller sigma_G
    s = torch.tensor(sg2, dtype=torch.float64, requires_grad=True)
    args = (torch.tensor(a) for a in (y, mu, sigma, x))
    (-constrained_log_prob(*args, s).sum()).backward()
    assert s.grad > 0


@pytest.fixture(scope="module")
def physnp_run(tmp_path_factory):
    """A tiny PhysNP trained for real on heat k ~ U[1, 5] (80 steps of 4 functions, ~15 s)."""
    torch.set_num_threads(1)
    cfg = {
        "retrain": True,
        "model": "physnp",
        "z_samples": 8,
        "anp": TINY,
        "family": {"param": "k", "low": 1.0, "high": 5.0, "batch": 4},
        "train": {"steps": 80, "lr": 3e-3, "log_every": 20},
    }
    sol = pdekit.solve("porous_medium/heat", solver="probconserv", config=cfg, k=2.0, verbose=False)
    path = tmp_path_factory.mktemp("physnp") / "physnp.h5"
    sol.save(path)
    return sol, path


def test_physnp_trains_learns_sigma_g_and_round_trips(physnp_run):
    sol, path = physnp_run
    assert isinstance(sol.model, PhysNP)
    h = sol.history
    # per-function NLL summed over 100 targets: it falls by tens (measured ~60)
    assert np.mean(h["loss"][-2:]) < h["loss"][0] - 20
    # sigma_G starts at 1e2 ** -0.5 = 0.1 and drifts down (lr 3e-3 x 80 steps in log precision)
    assert 0.05 < h["loss/sigma_g"][-1] < h["loss/sigma_g"][0] <= 0.1
    back = pdekit.load(path)
    assert float(back.model.sigma_g2.detach()) == float(sol.model.sigma_g2.detach())
    pts = sol.slice_points(0.5, 41)
    np.testing.assert_array_equal(back(pts)["u"], sol(pts)["u"])
    # the learned sigma_G > 0 leaves a mass misfit; physnp_limit (sigma_G = 0) removes it
    assert abs(sol.slice_metrics(nx=41, n_front=0)["ce"]) > 1e-8
    limit = sol.variant(physnp_limit=True)
    assert abs(limit.slice_metrics(nx=41, n_front=0)["ce"]) < 1e-14
    draws = limit.sample(50, pts)
    assert np.max(np.abs(draws @ trapezoid_weights(pts[:, 0]) - 0.0)) < 1e-14  # heat: b = 0


def test_physnp_warm_starts_from_a_plain_anp(tmp_path):
    torch.set_num_threads(1)
    base = {
        "retrain": True,
        "anp": TINY,
        "family": {"param": "k", "low": 1.0, "high": 5.0, "batch": 2},
        "train": {"steps": 2},
    }
    anp = pdekit.solve(
        "porous_medium/heat", solver="probconserv", config=base, k=2.0, verbose=False
    )
    anp.save(tmp_path / "anp.h5")
    cfg = dict(base, model="physnp", init=str(tmp_path / "anp.h5"), physnp_precision=1e4)
    cfg["train"] = {"steps": 0}
    warm = pdekit.solve(
        "porous_medium/heat", solver="probconserv", config=cfg, k=2.0, verbose=False
    )
    np.testing.assert_allclose(float(warm.model.sigma_g2.detach()), 1e-4, rtol=1e-6)
    pts = warm.slice_points(0.3, 21)
    np.testing.assert_array_equal(  # same network: the same ANP prediction
        warm.variant(physnp_limit=True).prior_samples(pts)[0],
        anp.variant(model="probconserv").prior_samples(pts)[0],
    )


# -- the Solution with the variants (the shipped PME network) -----------------------------------
PME_ANP = find_checkpoint(pdekit.problems.get("porous_medium/pme", m=3.0), "anp", PRETRAINED_DIR)


@pytest.fixture(scope="module")
def pme():
    torch.set_num_threads(1)
    problem = pdekit.problems.get("porous_medium/pme", m=3.0)
    cfg = {"model": "probconserv", "z_samples": 10, "pretrained": str(PME_ANP)}
    return pdekit.solve(problem.name, solver="probconserv", config=cfg, m=3.0, verbose=False)


@pytest.mark.skipif(PME_ANP is None, reason="no shipped PME ANP")
def test_diff_prior_on_a_trained_model_conserves_and_smooths(pme):
    pts = pme.slice_points(0.5)
    g = trapezoid_weights(pts[:, 0])
    b = pme.slice_metrics(n_front=0)["ce"]  # ~0: the plain update conserves
    plain = pme(pts)["u"]
    diff = pme.variant(diff_prior=True)
    u = diff(pts)["u"]
    assert abs(b) < 1e-14 and abs(diff.slice_metrics(n_front=0)["ce"]) < 1e-14
    d2 = second_difference_matrix(len(u))
    assert np.linalg.norm(d2 @ u) < 0.5 * np.linalg.norm(d2 @ plain)  # measured ~0.2
    draws = diff.sample(40, pts)
    mass = pme._mass(np.array([0.5]))[0]
    assert np.max(np.abs(draws @ g - mass)) < 1e-13
    (rows, cov), = diff.covariance(pts)  # fmt: skip
    np.testing.assert_allclose(np.diag(cov), diff(pts)["u_std"] ** 2, rtol=1e-9, atol=1e-8)


@pytest.mark.skipif(PME_ANP is None, reason="no shipped PME ANP")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("diff_prior", [False, True])
def test_postprocessed_mean_is_the_projection_in_the_predictive_metric(pme, mode, diff_prior):
    sol = pme.variant(postprocess=mode, diff_prior=diff_prior)
    pts = sol.slice_points(0.5)
    g = trapezoid_weights(pts[:, 0])
    mass = sol._mass(np.array([0.5]))[0]
    u = sol(pts)["u"]
    _in_set(u, g, mass, mode)
    base = sol.variant(postprocess="")
    (_, cov), = base.covariance(pts)  # fmt: skip
    np.testing.assert_allclose(u, project(base(pts)["u"], cov, g, mass, mode), atol=1e-12)
    np.testing.assert_array_equal(sol(pts)["u_std"], base(pts)["u_std"])  # mean only


def test_variant_options_are_validated():
    with pytest.raises(ParameterError, match="diff_prior"):
        pdekit.api.make_config("probconserv", {"model": "anp", "diff_prior": True})
    with pytest.raises(ParameterError, match="postprocess"):
        pdekit.api.make_config("probconserv", {"model": "softc", "postprocess": "nonneg"})
    with pytest.raises(ParameterError, match="postprocess"):
        pdekit.api.make_config("probconserv", {"postprocess": "positive"})


def test_mc_dropout_is_repeatable_and_leaves_the_global_rng(physnp_run):
    sol, _ = physnp_run
    pts = sol.slice_points(0.5, 21)
    # dropout 0: MC dropout is the eval-mode prediction
    np.testing.assert_allclose(
        sol.variant(mc_dropout=True).prior_samples(pts)[0], sol.prior_samples(pts)[0], atol=1e-6
    )
    anp = dataclasses.replace(sol.config.anp, dropout=0.3)
    model = PhysNP(anp, sol.model.lo.numpy(), sol.model.hi.numpy())
    model.load_state_dict(sol.model.state_dict())
    drop = type(sol)(
        sol.problem, sol.solver, dataclasses.replace(sol.config, anp=anp, mc_dropout=True),
        model, sol.contexts, sol.eps,
    )  # fmt: skip
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = drop.prior_samples(pts)[0]
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(a, drop.prior_samples(pts)[0])
    assert np.abs(a - drop.variant(mc_dropout=False).prior_samples(pts)[0]).max() > 1e-3


# -- the benchmark ------------------------------------------------------------------------------
def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_pc", ROOT / "benchmarks/probconserv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_trains_physnp_and_reports_calibration(tmp_path):
    torch.set_num_threads(1)
    bench = _benchmark()
    sizes = [f"--anp={k}={v}" for k, v in TINY.items()]
    ckpts = tmp_path / "models"
    rc = bench.main(
        ["train", "--problem", "porous_medium/heat", "--set", "k=1", "--family", "k:1:5",
         "--kind", "physnp", "--steps", "3", "--batch", "2", "--z-samples", "4", "--nx", "21",
         "--front-samples", "0", "--out", str(ckpts / "heat_physnp.h5"), *sizes]
    )  # fmt: skip
    assert rc == 0
    out = tmp_path / "res.json"
    rc = bench.main(
        ["evaluate", "--cases", "heat_1", "--functions", "2", "--z-samples", "4", "--nx", "21",
         "--checkpoints", str(ckpts), "--variants", "diff", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    res = json.loads(out.read_text())
    row = res["cases"]["heat_1"]["physnp"]
    assert {"cov50", "cov90", "cov95", "ece"} <= set(row)
    assert 0 <= row["ece"] <= 0.95 and 0 <= row["cov50"] <= row["cov90"] <= row["cov95"] <= 1
    assert "ECE" in out.with_suffix(".md").read_text()
