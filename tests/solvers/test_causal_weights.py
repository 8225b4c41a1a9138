"""Causal weights and epsilon annealing (Wang, Sankaran & Perdikaris 2022, eqs. 3.3-3.5, Alg. 1).

Oracles: a plain Python loop over k < i, and the strictly lower-triangular matrix form
``w = exp(-eps M L)`` of the authors' formulation; exact state transitions of the schedule on
scripted inputs.
"""

import math

import numpy as np
import pytest
import torch

from pdekit.solvers.causal_weights import (
    WEIGHT_FLOOR,
    AnnealingSchedule,
    causal_weights,
    chunk_means,
    exclusive_cumsum,
    grad_norm_weights,
)

FLOAT64_EXACT = 1e-14  # a cumulative sum of 32 O(1) float64 numbers, then exp: round-off only


def loop_weights(losses, eps, initial=0.0):
    """w_i = exp(-eps (L_0 + sum_{k<i} L_k)), written as the paper writes it."""
    return [math.exp(-eps * (initial + sum(losses[:i]))) for i in range(len(losses))]


@pytest.mark.parametrize("eps", [1e-2, 1.0, 10.0])
@pytest.mark.parametrize("initial", [0.0, 0.3])
def test_weights_are_the_exclusive_sum(eps, initial):
    losses = torch.rand(32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = causal_weights(losses, eps, initial)
    ref = torch.tensor(loop_weights(losses.tolist(), eps, initial), dtype=torch.float64)
    ref[ref < WEIGHT_FLOOR] = 0.0  # underflowing weights are returned as exact zeros
    torch.testing.assert_close(w, ref, rtol=FLOAT64_EXACT, atol=0)
    # the first chunk sees only the initial term: w_1 = 1 without one (an inclusive sum fails)
    assert w[0].item() == pytest.approx(math.exp(-eps * initial), rel=FLOAT64_EXACT)
    # the strictly lower-triangular matrix form of the authors' code: (M L)_i = sum_{k<i} L_k
    m = torch.tril(torch.ones(32, 32, dtype=torch.float64), diagonal=-1)
    matrix_form = torch.exp(-eps * (m @ losses + initial))
    matrix_form[matrix_form < WEIGHT_FLOOR] = 0.0
    torch.testing.assert_close(w, matrix_form, rtol=1e-13, atol=0)


def test_exclusive_cumsum_starts_at_zero():
    x = torch.tensor([2.0, 3.0, 5.0])
    assert exclusive_cumsum(x).tolist() == [0.0, 2.0, 5.0]


def test_exclusive_sum_keeps_float32_precision():
    """A small loss before a huge one: cumsum - L would cancel (5e3 + 2e-4 - 5e3 = 0 in
    float32, weight 1.0); the direct sum keeps exp(-100 * 2e-4) = 0.9802."""
    losses = torch.tensor([2e-4, 5e3, 1.0], dtype=torch.float32)
    assert exclusive_cumsum(losses)[1].item() == pytest.approx(2e-4, rel=1e-6)
    w = causal_weights(losses, eps=100.0)
    assert w[1].item() == pytest.approx(math.exp(-100 * 2e-4), rel=1e-6)


def test_no_gradient_flows_through_the_weights():
    losses = torch.rand(16, dtype=torch.float64, requires_grad=True)
    initial = torch.rand((), dtype=torch.float64, requires_grad=True)
    w = causal_weights(losses, 1.0, initial)
    assert not w.requires_grad
    (grad,) = torch.autograd.grad((w * losses).sum(), losses)
    # with detached weights d/dL_j sum_i w_i L_i = w_j exactly; a gradient through w_i
    # (i > j) would add -eps sum_{i>j} w_i L_i
    assert torch.equal(grad, w)


@pytest.mark.parametrize("seed", range(5))
def test_weights_are_monotone_for_positive_losses(seed):
    g = torch.Generator().manual_seed(seed)
    losses = torch.rand(64, generator=g, dtype=torch.float64) * 10 ** (
        4 * torch.rand(64, generator=g, dtype=torch.float64) - 3
    )
    w = causal_weights(losses, 0.5)
    assert torch.all(w[1:] < w[:-1])  # strictly: every loss is positive and nothing underflows
    assert w[0] == 1.0 and torch.all(w > 0)


def test_underflow_gives_exact_zeros_not_subnormals():
    losses = torch.full((32,), 10.0)  # eps = 100: exponents down to -31000
    w = causal_weights(losses, 100.0)
    assert w[0] == 1.0
    assert torch.all((w == 0) | (w >= WEIGHT_FLOOR))
    assert torch.all(w[1:] == 0)
    tiny = torch.finfo(torch.float32).tiny  # smallest normal float32
    assert not torch.any((w > 0) & (w < tiny))


def test_chunk_means_against_a_loop():
    rng = np.random.default_rng(3)
    values = torch.as_tensor(rng.random(50))
    chunk = torch.as_tensor(np.sort(rng.integers(0, 6, 50)))
    chunk[chunk == 4] = 3  # chunk 4 has no points: its mean is 0
    got = chunk_means(values, chunk, 6)
    for i in range(6):
        sel = values[chunk == i]
        want = sel.mean().item() if len(sel) else 0.0
        assert got[i].item() == pytest.approx(want, rel=1e-14)


# -- the annealing schedule ----------------------------------------------------------------------
EPS = (1e-2, 1e-1, 1.0, 10.0, 100.0)


def test_stage_advances_exactly_when_min_weight_exceeds_delta():
    s = AnnealingSchedule(EPS, 0.99, total=10**6, stage_steps=10**6)
    # (step, min w): equal to delta is not enough; strictly above is
    script = [(1, 0.5), (2, 0.99), (3, 0.991), (4, 0.2), (5, 0.999), (6, 0.995)]
    events = [s.update(step, float(step), mw) for step, mw in script]
    assert events == ["", "", "stage", "", "stage", "stage"]
    assert s.stage == 3 and s.epsilon == 10.0


def test_last_stage_criterion_finishes_training_or_not():
    s = AnnealingSchedule((1.0, 10.0), 0.99, total=100, stage_steps=100)
    assert s.update(1, 1, 1.0) == "stage"
    assert s.update(2, 2, 1.0) == "finished"  # paper: stop at the last stage's criterion
    s = AnnealingSchedule((1.0, 10.0), 0.99, total=100, stage_steps=100, early_stop=False)
    assert s.update(1, 1, 1.0) == "stage"
    assert [s.update(k, k, 1.0) for k in range(2, 101)][-2:] == ["", "finished"]


def test_fixed_stage_budget_and_check_every():
    s = AnnealingSchedule(EPS, 0.99, total=10**6, stage_steps=10, check_every=4)
    events = {k: s.update(k, k, 0.0) for k in range(1, 31)}
    assert [k for k, e in events.items() if e] == [10, 20, 30]
    s = AnnealingSchedule(EPS, 0.99, total=10**6, stage_steps=100, check_every=4)
    assert [s.update(k, k, 1.0) for k in (1, 2, 3, 4)] == ["", "", "", "stage"]
    assert s.update(5, 5, 1.0) == "" and s.update(8, 8, 1.0) == "stage"  # 4 steps into stage 1


def test_shared_budget_goes_to_later_stages_and_windows():
    # 2 windows x 2 stages over 400 steps: 100 steps each when no stage ends early
    s = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=400)
    events = {k: s.update(k, k, 0.0) for k in range(1, 401)}
    assert {k: e for k, e in events.items() if e} == {
        100: "stage",
        200: "window",
        300: "stage",
        400: "finished",
    }
    # the first stage meets the criterion at step 20: its 80 unused steps are shared by the
    # rest of the window (stage 2 ends at 200), the window budget is unchanged
    s = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=400)
    assert s.update(20, 20, 1.0) == "stage" and s.stage_end == 200
    # window 1 finishing early at 150 leaves 250 steps for window 2: 125 per stage
    assert s.update(150, 150, 1.0) == "window" and s.window_end == 400 and s.stage_end == 275


def test_schedule_state_round_trip():
    s = AnnealingSchedule(EPS, 0.99, windows=3, total=1000)
    for k in range(1, 140):
        s.update(k, k, 0.995 if k % 37 == 0 else 0.1)
    t = AnnealingSchedule(EPS, 0.99, windows=3, total=1000)
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict()
    for k in range(140, 1001):
        mw = 0.995 if k % 37 == 0 else 0.1
        assert s.update(k, k, mw) == t.update(k, k, mw)


def test_resume_with_a_larger_budget_reshares_it():
    # 2 windows x 2 stages over 400 steps, all spent: resumed with 800, training goes on in the
    # last stage of the last window, which now ends at 800 (what is left, given to it)
    s = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=400, early_stop=False)
    assert [s.update(k, k, 0.0) for k in range(1, 401)][-1] == "finished"
    t = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=800, early_stop=False)
    t.load_state_dict(s.state_dict())
    assert not t.finished and (t.window, t.stage) == (1, 1) and t.stage_end == 800
    assert t.update(401, 401, 1.0) == "" and t.update(800, 800, 0.0) == "finished"
    # mid-run (step 150, window 0, stage 1): the 650 steps left go half to this window
    s = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=400)
    for k in range(1, 151):
        s.update(k, k, 0.0)
    t = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=800)
    t.load_state_dict(s.state_dict())
    assert (t.window, t.stage) == (0, 1) and t.window_end == 475 and t.stage_end == 475
    # the same budget: the saved plan stands exactly
    u = AnnealingSchedule((1.0, 10.0), 0.99, windows=2, total=400)
    u.load_state_dict(s.state_dict())
    assert u.state_dict() == s.state_dict()


def test_resume_after_the_criterion_stopped_training_stays_finished():
    s = AnnealingSchedule((1.0,), 0.99, total=400)  # early_stop: the criterion ends training
    assert s.update(30, 30, 1.0) == "finished"
    t = AnnealingSchedule((1.0,), 0.99, total=800)
    t.load_state_dict(s.state_dict())
    assert t.finished


def test_grad_norm_weights_equalise_the_gradient_norms():
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)  # ||grad|| = 5
    b = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    terms = {"residual": (a * p).sum(), "initial": (b * p).sum() ** 2}  # grad 2 (b.p) b: norm 4
    lam = grad_norm_weights(terms, [p])
    assert lam == pytest.approx({"residual": 9 / 5, "initial": 9 / 4}, rel=1e-14)
    # every weighted term then has the same gradient norm, sum_j ||grad L_j|| = 9
    assert lam["residual"] * 5 == pytest.approx(lam["initial"] * 4, rel=1e-14)
