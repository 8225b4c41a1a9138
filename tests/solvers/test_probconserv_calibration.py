"""Calibration metrics of a Gaussian prediction against cases with known answers."""

import numpy as np
import pytest
from scipy.stats import norm

from pdekit.solvers.probconserv.calibration import (
    ECE_LEVELS,
    calibration_error,
    calibration_metrics,
    coverage,
)


def test_draws_of_the_predicted_gaussian_cover_at_the_nominal_levels():
    rng = np.random.default_rng(0)
    n = 200_000
    mean = rng.normal(size=n)
    std = rng.uniform(0.01, 3.0, size=n)
    y = mean + std * rng.standard_normal(n)
    levels = np.array([0.05, 0.5, 0.9, 0.95, 0.99])
    got = coverage(y, mean, std, levels)
    # binomial standard error sqrt(p (1 - p) / n) <= 1.2e-3; 4 of them
    np.testing.assert_allclose(got, levels, atol=4.5e-3)
    m = calibration_metrics(y, mean, std)
    assert set(m) == {"cov50", "cov90", "cov95", "ece"}
    assert m["ece"] < 3e-3  # 19 levels, each within a few standard errors


def test_coverage_is_exact_on_values_placed_at_known_quantiles():
    """y_i at the quantiles (i + 1/2) / n of N(mean, std): the fraction inside the central
    p-interval is the fraction of those quantiles inside (1 -+ p) / 2: known exactly."""
    n = 1000
    q = (np.arange(n) + 0.5) / n
    mean, std = 0.3, 0.7
    y = mean + std * norm.ppf(q)
    for p in (0.5, 0.9, 0.95):
        want = np.mean(np.abs(q - 0.5) <= p / 2)
        assert coverage(y, mean, std, [p])[0] == pytest.approx(want, abs=1e-12)
        assert abs(want - p) <= 1 / n  # and that is p to the grid's resolution


def test_overconfidence_gives_the_closed_form_calibration_error():
    """Truth N(0, 1), predicted std 1/2: cov(p) = 2 Phi(z_p / 2) - 1 < p for every p."""
    n = 1000
    q = (np.arange(n) + 0.5) / n
    y = norm.ppf(q)
    levels = np.asarray(ECE_LEVELS)
    want_cov = 2 * norm.cdf(0.5 * norm.ppf(0.5 * (1 + levels))) - 1
    got_cov = coverage(y, 0.0, 0.5, levels)
    np.testing.assert_allclose(got_cov, want_cov, atol=1.5 / n)  # quantile-grid resolution
    want = np.mean(np.abs(want_cov - levels))
    assert calibration_error(y, 0.0, 0.5) == pytest.approx(want, abs=1.5 / n)
    # underconfident (std 2): coverage above nominal
    assert np.all(coverage(y, 0.0, 2.0, levels) >= levels)


def test_zero_std_covers_only_exact_hits_and_negative_std_is_refused():
    assert coverage(np.array([1.0, 1.0]), np.array([1.0, 2.0]), 0.0, [0.5])[0] == 0.5
    with pytest.raises(ValueError, match="non-negative"):
        coverage(np.ones(2), np.ones(2), -np.ones(2))
