"""The ProbConserv update against independent linear algebra (float64, random inputs)."""

import numpy as np
import pytest

from pdekit.solvers.probconserv.update import (
    condition,
    hardc_project,
    sample_conditioned,
    trapezoid_weights,
)


def _random_case(rng, n=9, batch=()):
    mu = rng.normal(size=batch + (n,))
    var = rng.uniform(0.05, 2.0, size=batch + (n,))
    g = rng.uniform(0.1, 1.0, size=n)
    b = rng.normal(size=batch)
    return mu, var, g, b


def _joint_conditioning(mu, cov, G, b, noise_cov):
    """Condition u ~ N(mu, cov) on y = G u + e, e ~ N(0, noise_cov), observed y = b.

    Generic block formula for the joint Gaussian of (u, y), any number of rows of G, with the
    gain obtained by a linear solve of the (dense) innovation covariance.
    """
    S = G @ cov @ G.T + noise_cov
    K = np.linalg.solve(S, G @ cov).T  # cov G^T S^-1 (S symmetric)
    return mu + K @ (b - G @ mu), cov - K @ G @ cov


@pytest.mark.parametrize("sigma_g2", [0.0, 1e-3, 0.7])
def test_update_matches_dense_joint_gaussian_conditioning(sigma_g2):
    rng = np.random.default_rng(1)
    for _ in range(5):
        mu, var, g, b = _random_case(rng)
        got = condition(mu, var, g, b, sigma_g2)
        want_mu, want_cov = _joint_conditioning(
            mu, np.diag(var), g[None, :], np.array([b]), np.array([[sigma_g2]])
        )
        # float64 round-off of O(10)-term sums and one division: 1e-12 relative to O(1) data
        np.testing.assert_allclose(got.mean, want_mu, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.covariance(), want_cov, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.cov_diag, np.diag(want_cov), rtol=0, atol=1e-12)


def test_update_matches_information_form_with_noise():
    """sigma_G > 0: posterior precision = Sigma^-1 + g g^T / sigma_G^2 (a different algebra)."""
    rng = np.random.default_rng(2)
    mu, var, g, b = _random_case(rng)
    s2 = 0.25
    prec = np.diag(1 / var) + np.outer(g, g) / s2
    cov = np.linalg.inv(prec)
    mean = cov @ (mu / var + g * b / s2)
    got = condition(mu, var, g, b, s2)
    np.testing.assert_allclose(got.mean, mean, rtol=0, atol=1e-11)  # inverse of a 9x9 SPD matrix
    np.testing.assert_allclose(got.covariance(), cov, rtol=0, atol=1e-11)


def test_update_with_zero_noise_is_the_constrained_minimiser():
    """sigma_G = 0: mu~ minimises the Mahalanobis distance subject to g^T u = b (KKT system)."""
    rng = np.random.default_rng(3)
    mu, var, g, b = _random_case(rng, n=12)
    n = mu.size
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = np.diag(1 / var)
    kkt[:n, n] = kkt[n, :n] = g
    rhs = np.concatenate([mu / var, [b]])
    want = np.linalg.solve(kkt, rhs)[:n]
    np.testing.assert_allclose(condition(mu, var, g, b).mean, want, rtol=0, atol=1e-12)


def test_conservation_exact_to_roundoff_batched():
    """G mu~ = b per (sample, time) slice when sigma_G = 0, on a batch of shape (S, nt)."""
    rng = np.random.default_rng(4)
    mu, var, g, b = _random_case(rng, n=201, batch=(30, 7))
    mu *= 50.0  # far from conserving: |G mu - b| ~ 1e2
    got = condition(mu, var, g, b)
    scale = np.sum(np.abs(g * mu), axis=-1) + np.abs(b)
    # a 201-term float64 sum: error below 201 * 2.2e-16 relative to the sum of |terms|
    assert np.all(np.abs(got.mean @ g - b) <= 201 * 2.3e-16 * scale)
    assert np.max(np.abs(got.mean @ g - b)) < 1e-10


def test_updated_covariance_is_symmetric_psd_and_annihilates_g():
    rng = np.random.default_rng(5)
    mu, var, g, b = _random_case(rng, n=40, batch=(6,))
    cov = condition(mu, var, g, b).covariance()
    assert np.array_equal(cov, np.swapaxes(cov, -1, -2))
    eig = np.linalg.eigvalsh(cov)
    # eigenvalues of an O(1) matrix: round-off 1e-14; one of them is the exact zero along g
    assert np.all(eig >= -1e-14)
    np.testing.assert_allclose(eig[:, 0], 0.0, atol=1e-14)
    assert np.all(eig[:, 1] > 1e-6)  # only one direction is removed (rank-one downdate)
    np.testing.assert_allclose(cov @ g, 0.0, atol=1e-14)
    noisy = condition(mu, var, g, b, 0.1).covariance()
    assert np.all(np.linalg.eigvalsh(noisy) > 0)  # with noise the downdate keeps it definite


def test_variance_only_decreases():
    rng = np.random.default_rng(6)
    mu, var, g, b = _random_case(rng, n=25, batch=(4,))
    assert np.all(condition(mu, var, g, b).cov_diag <= var)


def test_hardc_is_the_orthogonal_projection():
    """Sigma = I: the least-norm correction onto the hyperplane g^T u = b (numpy lstsq)."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        mu, _, g, b = _random_case(rng, n=15)
        delta = np.linalg.lstsq(g[None, :], np.array([b - g @ mu]), rcond=None)[0]
        np.testing.assert_allclose(hardc_project(mu, g, b), mu + delta, rtol=0, atol=1e-12)
        p = hardc_project(mu, g, b)
        # any other feasible point is farther from mu
        other = p + rng.normal(size=15)
        other -= g * (g @ other - b) / (g @ g)
        assert np.linalg.norm(other - mu) >= np.linalg.norm(p - mu)


def test_zero_variance_is_rejected():
    with pytest.raises(ValueError, match="no variance"):
        condition(np.ones(3), np.zeros(3), np.ones(3), 1.0)


def test_matheron_samples_conserve_and_match_the_posterior():
    rng = np.random.default_rng(8)
    n = 6
    mu, var, g, b = _random_case(rng, n=n)
    cond = condition(mu, var, g, b)
    draws = sample_conditioned(mu, var, g, b, 0.0, rng.standard_normal((200_000, n)))
    np.testing.assert_allclose(draws @ g, b, rtol=0, atol=1e-13)
    # Monte-Carlo: 2e5 draws of O(1) variances, standard error ~ 2e-3 (mean) and 3e-3 (cov)
    np.testing.assert_allclose(draws.mean(0), cond.mean, atol=1.5e-2)
    np.testing.assert_allclose(np.cov(draws.T), cond.covariance(), atol=2e-2)
    noisy = condition(mu, var, g, b, 0.3)
    draws = sample_conditioned(
        mu, var, g, b, 0.3, rng.standard_normal((200_000, n)), rng.standard_normal(200_000)
    )
    np.testing.assert_allclose(draws.mean(0), noisy.mean, atol=1.5e-2)
    np.testing.assert_allclose(np.cov(draws.T), noisy.covariance(), atol=2e-2)


# -- trapezoid weights ---------------------------------------------------------------------------
def test_trapezoid_exact_for_linear_on_random_nodes():
    rng = np.random.default_rng(9)
    x = np.concatenate([[0.0, 1.3], rng.uniform(0, 1.3, 40)])
    rng.shuffle(x)
    g = trapezoid_weights(x)
    np.testing.assert_allclose(g @ (2.0 - 3.0 * x), 2.0 * 1.3 - 1.5 * 1.3**2, rtol=1e-13)
    assert g.sum() == pytest.approx(1.3, rel=1e-14)


def test_trapezoid_second_order():
    errs = []
    for n in (21, 41, 81, 161):
        x = np.linspace(0, 1, n)
        errs.append(abs(trapezoid_weights(x) @ np.exp(x) - (np.e - 1)))
    slopes = -np.diff(np.log(errs)) / np.log(2)
    assert np.all(np.abs(slopes - 2) < 0.05)  # h^2 with h halving


def test_periodic_trapezoid():
    L = 2 * np.pi
    x = L * np.arange(64) / 64
    g = trapezoid_weights(x, period=L)
    assert g.sum() == pytest.approx(L, rel=1e-14)
    np.testing.assert_allclose(g, L / 64, rtol=1e-14)
    # spectral accuracy for a smooth periodic integrand: int exp(sin x) = 2 pi I0(1)
    from scipy.special import i0

    assert g @ np.exp(np.sin(x)) == pytest.approx(L * i0(1.0), rel=1e-14)
    with pytest.raises(ValueError, match="period"):
        trapezoid_weights(np.array([0.0, 7.0]), period=L)
