"""Residual-based adaptive sampling (RAD, Wu et al. 2023): the probability law, the draws it
gives, the task's pool schedule, exact resume, and the solvers that refuse it.

Oracles: the RAD formula evaluated by hand; the moments of the density a known "residual"
implies (closed forms); an uninterrupted run for resume (bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pdekit
from pdekit import problems
from pdekit.api import make_config
from pdekit.errors import ParameterError
from pdekit.solvers import get
from pdekit.solvers.physics import (
    AdaptiveSampling,
    PhysicsLoss,
    SamplingConfig,
    rad_probabilities,
)


def test_probabilities_follow_the_rad_formula():
    eps = np.array([0.0, 1.0, 2.0, 3.0])
    p = rad_probabilities(eps, k=2.0, c=1.0)  # eps^2 = 0, 1, 4, 9; mean 3.5
    want = np.array([1.0, 1 + 1 / 3.5, 1 + 4 / 3.5, 1 + 9 / 3.5])
    np.testing.assert_allclose(p, want / want.sum(), rtol=1e-14)
    p = rad_probabilities(-eps, k=1.0, c=0.0)  # the size of the residual, not its sign
    np.testing.assert_allclose(p[1:], [1 / 6, 2 / 6, 3 / 6], rtol=1e-8)
    assert 0 < p[0] < 1e-8  # floored, so a draw without replacement can still take it
    k0 = rad_probabilities(eps, k=0.0, c=0.0)
    np.testing.assert_allclose(k0, 0.25, rtol=1e-14)  # k = 0: uniform
    for bad in (np.array([1.0, np.nan]), np.array([1.0, np.inf]), np.zeros(4)):
        np.testing.assert_allclose(rad_probabilities(bad, 1.0, 1.0), 1 / len(bad))


def _physics(k: float, c: float, pool: int, n: int, seed: int = 0) -> PhysicsLoss:
    sampling = SamplingConfig(
        n_interior=n, method="uniform", adaptive=AdaptiveSampling("rad", k=k, c=c, pool=pool)
    )
    return PhysicsLoss(
        problems.get("porous_medium/heat", k=1.0),
        sampling,
        np.random.default_rng(seed),
        device=torch.device("cpu"),
        dtype=torch.float64,
    )


@pytest.mark.parametrize(
    ("k", "c", "mean"), [(1.0, 0.0, 2 / 3), (1.0, 1.0, 7 / 12), (0.0, 1.0, 0.5)]
)
def test_draws_follow_the_density_the_residual_implies(k, c, mean):
    """With eps(x, t) = x / L the drawn x / L has density proportional to u^k + c (mean 2/3
    for k = 1, c = 0; (2u + 1) / 2, mean 7/12, for c = 1; uniform, 1/2, for k = 0). The pool
    is 128 times the batch, so drawing without replacement barely bends the law; 8 batches of
    2048 give a standard error of 0.0018 on the mean."""
    physics = _physics(k, c, pool=2**18, n=2048)
    length = float(physics.domain.bounds[1, 0] - physics.domain.bounds[0, 0])
    physics.refresh_pool(lambda pts: pts[:, 0] / length)
    u = torch.cat([physics.sample().interior[:, 0] / length for _ in range(8)])
    assert abs(float(u.mean()) - mean) < 0.01
    # every batch holds distinct pool points
    batch = physics.sample().interior
    assert len(torch.unique(batch, dim=0)) == len(batch)


def test_the_pool_error_is_evaluated_in_chunks_and_kept_in_pool_order():
    """A pool larger than AdaptivePool.CHUNK is weighed piece by piece, each error on its own
    points: the probabilities are those of the whole pool's errors."""
    physics = _physics(1.0, 0.0, pool=20000, n=64)
    sizes = []

    def error(pts):
        sizes.append(len(pts))
        return pts[:, 0] * pts[:, 1] + 1.0

    physics.refresh_pool(error)
    chunk = physics.adaptive.CHUNK
    assert sizes == [chunk, chunk, 20000 - 2 * chunk]
    points = physics.adaptive.points
    want = rad_probabilities((points[:, 0] * points[:, 1] + 1.0).numpy(), 1.0, 0.0)
    np.testing.assert_allclose(physics.adaptive.prob, want, rtol=1e-12)


def _task(solver: str, problem, overrides: dict):
    cfg = make_config(solver, None, overrides)
    s = get(solver)
    torch.manual_seed(0)
    model = s.build_model(problem, cfg).to(dtype=cfg.train.torch_dtype)
    return s.build_task(problem, cfg, model, np.random.default_rng(0), torch.device("cpu"))


def test_the_pool_is_renewed_every_period_and_forces_a_new_batch():
    task = _task(
        "pinn",
        problems.get("porous_medium/heat", k=1.0),
        {
            "network.width": 8,
            "network.depth": 1,
            "sampling.n_interior": 64,
            "sampling.resample_every": 0,  # one batch per pool
            "sampling.adaptive.method": "rad",
            "sampling.adaptive.pool": 256,
            "sampling.adaptive.every": 3,
        },
    )
    pools, batches = [], []
    for step in range(7):
        task.next_batch(step)
        pools.append(task.physics.adaptive.points)
        batches.append(task.batch.interior)
    kept = [True, True, False, True, True, False]  # steps 1..6: new at 3 and 6
    assert [pools[i] is pools[i - 1] for i in range(1, 7)] == kept
    assert [batches[i] is batches[i - 1] for i in range(1, 7)] == kept
    # the probabilities are the RAD law of the task's own residual on the pool
    eps = task.pointwise_error(pools[-1])
    np.testing.assert_allclose(task.physics.adaptive.prob, rad_probabilities(eps.numpy(), 1.0, 1.0))


CASES = {
    "pinn": ("porous_medium/heat", {"k": 1.0}, {"network.width": 16, "network.depth": 2}),
    "lagrangian_pinn": (
        "convection_diffusion/burgers",
        {},
        {
            "characteristic.width": 8,
            "state.width": 16,
            "state.depth": 2,
            "train.lbfgs_steps": 0,
        },
    ),
}


@pytest.mark.parametrize("solver", sorted(CASES))
def test_resume_mid_period_matches_the_uninterrupted_run(solver, tmp_path):
    """The checkpoint at step 20 falls inside a pool's period (pools at 0, 6, 12, 18, 24) and
    its batch in use was drawn at step 18, right after that step's new pool, and is used up to
    step 23 (batches every 8 steps and with each pool: 0, 6, 8, 12, 16, 18, 24): the resumed
    run must re-draw that batch from the saved pool and the generator state after the pool,
    then go on as the uninterrupted run did."""
    name, params, net = CASES[solver]
    cfg = {
        **net,
        "train.steps": 30,
        "train.checkpoint_every": 20,
        "train.log_every": 5,
        "sampling.n_interior": 128,
        "sampling.n_initial": 32,
        "sampling.n_boundary": 16,
        "sampling.resample_every": 8,
        "sampling.adaptive.method": "rad",
        "sampling.adaptive.pool": 512,
        "sampling.adaptive.every": 6,
    }
    kw = dict(solver=solver, overrides=cfg, verbose=False, **params)
    full = pdekit.solve(name, checkpoint_dir=tmp_path, **kw)
    ckpt = tmp_path / "checkpoint_00000020.h5"
    saved = pdekit.load(ckpt).trainer_state["task"]["adaptive"]
    assert saved["points"].shape == (512, 2) and saved["prob"].shape == (512,)
    resumed = pdekit.solve(name, resume=ckpt, **kw)
    assert resumed.step == full.step == 30
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert resumed.history["loss"] == full.history["loss"]


@pytest.mark.parametrize(
    ("solver", "overrides", "field"),
    [
        ("causal_pinn", {"sampling.adaptive.method": "rad"}, "sampling.adaptive.method"),
        ("deepxde", {"sampling.adaptive.method": "rad"}, "sampling.adaptive.method"),
        ("pinn", {"sampling.adaptive.method": "rad", "sampling.adaptive.pool": 100}, "pool"),
        ("pinn", {"sampling.adaptive.method": "often"}, "method"),
        ("pinn", {"sampling.adaptive.k": -1.0}, "k"),
        ("pinn", {"sampling.adaptive.every": 0}, "every"),
    ],
)
def test_bad_adaptive_settings_name_the_field(solver, overrides, field):
    with pytest.raises(ParameterError, match=field):
        make_config(solver, None, overrides)


@pytest.mark.parametrize("engine", ["autograd", "taylor", "taylor_compiled"])
def test_pinn_pointwise_error_is_the_size_of_its_residual(engine):
    """Against the problem's residual through nested autograd on the same network: the root sum
    of squares of the equations (NS: three), whatever engine the task trains with (the compiled
    one is run uncompiled for the pool)."""
    from pdekit.core.fields import AutogradFields

    problem = problems.get("navier_stokes/taylor_green")
    task = _task(
        "pinn",
        problem,
        {"network.width": 8, "network.depth": 2, "train.dtype": "float64", "engine": engine},
    )
    pts = torch.as_tensor(problem.domain().sample_interior(64, np.random.default_rng(3)))
    x = pts.clone().requires_grad_(True)
    y = task.model(x)
    values = {f: y[:, i] for i, f in enumerate(problem.fields)}
    res = problem.residual(AutogradFields(x, values, problem.coordinates, problem.derivatives))
    want = torch.sqrt(sum(r.detach() ** 2 for r in res.values()))
    assert len(res) == 3
    torch.testing.assert_close(task.pointwise_error(pts), want, rtol=1e-10, atol=0.0)
