"""The pressure constant: problems that fix it only up to a constant compare it up to one.

Incompressible flow on a periodic box (Taylor-Green) or in a closed cavity determines the
pressure up to an additive constant at each time; a solver's constant is arbitrary. Errors and
written error arrays shift the prediction to the reference's mean over the grid at each time.
"""

from __future__ import annotations

import numpy as np
import pytest

from pdekit import problems
from pdekit.io.grids import solution_arrays
from pdekit.metrics import match_gauge
from pdekit.solution import Solution


def _offset_solution(problem, shift, scale=1.0):
    """The reference with ``shift(t)`` added to p and u scaled by ``scale``."""
    ref = problem.reference()

    def predict(points):
        out = {k: np.asarray(v, dtype=float).copy() for k, v in ref(points).items()}
        t = points[:, -1] if problem.time_dependent else np.zeros(len(points))
        out["p"] = out["p"] + shift(t)
        out["u"] = out["u"] * scale
        return out

    return Solution(problem, "test", None, predict)


def test_match_gauge_per_time_and_global():
    rng = np.random.default_rng(0)
    t = np.repeat([0.0, 0.5, 1.0], 7)
    ref = {"p": rng.normal(size=21), "u": rng.normal(size=21)}
    pred = {"p": ref["p"] + 3.0 * t - 2.0, "u": ref["u"] + 1.0}
    out = match_gauge(pred, ref, ("p",), t)
    np.testing.assert_allclose(out["p"], ref["p"], atol=1e-13)
    np.testing.assert_array_equal(out["u"], pred["u"])  # not a gauge field: untouched
    # one constant for all points when no times are given; a time-varying shift then remains
    glob = match_gauge(pred, ref, ("p",))
    assert abs(glob["p"].mean() - ref["p"].mean()) < 1e-13
    assert np.abs(glob["p"] - ref["p"]).max() > 1.0
    # the shift keeps the prediction's shape and does not modify its input
    assert match_gauge({"p": pred["p"].reshape(3, 7)}, ref, ("p",), t)["p"].shape == (3, 7)
    np.testing.assert_allclose(pred["p"], ref["p"] + 3.0 * t - 2.0)


def test_taylor_green_errors_ignore_the_pressure_constant():
    tg = problems.get("navier_stokes/taylor_green")
    assert tg.gauge_fields == ("p",)
    sol = _offset_solution(tg, lambda t: 0.7 + 0.3 * np.sin(t))
    e = sol.errors()
    assert e["rel_l2/p"] < 1e-12 and e["rel_l2"] < 1e-12
    # a real error in p is still seen: a pressure scaled by 1.1 has rel_l2/p = 0.1 whatever
    # constant is added (the reference has zero spatial mean at every time)
    ref = tg.reference()

    def scaled(points):
        out = dict(ref(points))
        out["p"] = 1.1 * np.asarray(out["p"]) + 5.0
        return out

    e = Solution(tg, "test", None, scaled).errors()
    assert e["rel_l2/p"] == pytest.approx(0.1, rel=1e-9)
    # and velocity errors are untouched
    e = _offset_solution(tg, lambda t: 0.0 * t, scale=1.2).errors()
    assert e["rel_l2/u"] == pytest.approx(0.2, rel=1e-9)


def test_gauge_free_problem_keeps_its_constant():
    kov = problems.get("navier_stokes/kovasznay")  # p is Dirichlet data on the boundary
    assert kov.gauge_fields == ()
    e = _offset_solution(kov, lambda t: 0.0 * t + 0.5).errors()
    assert e["max_abs/p"] == pytest.approx(0.5, rel=1e-12)


def test_written_error_arrays_use_the_same_gauge():
    tg = problems.get("navier_stokes/taylor_green")
    grid = tg.evaluation_grid()
    arrays = solution_arrays(_offset_solution(tg, lambda t: 2.0 - t), grid)
    assert np.abs(arrays["p_error"]).max() < 1e-12
    np.testing.assert_allclose(arrays["p"], arrays["p_reference"], atol=1e-12)
