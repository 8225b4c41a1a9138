"""The ProbConserv update: condition a Gaussian prediction on the integral conservation law.

Hansen et al. (ICML 2023), Sec. 3, Eq. (5)-(6). At one time t the model predicts the field at
nodes x_1..x_N as u ~ N(mu, Sigma) with Sigma = diag(sigma^2). The conservation law in integral
form, discretised with trapezoid weights g (:func:`trapezoid_weights`), is one noisy linear
observation

    g^T u = b(t) + eps,     eps ~ N(0, sigma_G^2),

where b(t) is the conserved mass. Conditioning gives

    mu~    = mu - Sigma g (g^T Sigma g + sigma_G^2)^-1 (g^T mu - b),
    Sigma~ = Sigma - Sigma g (g^T Sigma g + sigma_G^2)^-1 g^T Sigma,

a rank-one downdate of the diagonal covariance: Sigma~ = diag(v) - w w^T / a with w = v * g and
a = g^T diag(v) g + sigma_G^2. With sigma_G = 0 (the paper's ProbConserv-ANP) g^T mu~ = b exactly
and Sigma~ g = 0. HardC-ANP is the same projection with Sigma := I (an orthogonal projection of
the mean onto the hyperplane g^T u = b) and the variance left as it was.

ProbConserv "w/ diff" (the paper's PME variant, ``second_deriv_alpha`` in their code) adds the
N - 2 second differences u_{i-1} - 2 u_i + u_{i+1} = 0 as further noisy rows, each with the
variance the prior itself gives that difference under a neighbour correlation alpha
(:func:`second_difference_variance`): a smoothness prior. :func:`condition_rows` conditions on
any stack of rows; :func:`diff_rows` builds this one (second differences over the node index,
as in the paper's code, then the conservation row).

Everything here is float64 numpy and batched over leading axes: ``mu`` and ``var`` have shape
(..., N), ``g`` (N,) or (..., N), ``b`` a scalar or shape (...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def trapezoid_weights(x: np.ndarray, period: float | None = None) -> np.ndarray:
    """Trapezoid quadrature weights g over the nodes x (any order; returned in x's order).

    Non-periodic: sum_i g_i u_i approximates the integral over [min x, max x], with
    g_1 = dx_1 / 2, g_i = (dx_{i-1} + dx_i) / 2, g_N = dx_{N-1} / 2 over the sorted nodes.
    Periodic with ``period`` L: the interval from the last node to the first node + L closes the
    circle, so every node gets half of each neighbouring gap and sum g = L.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    if n < 2:
        raise ValueError(f"trapezoid weights need at least 2 nodes; got {n}")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    gaps = np.diff(xs)
    gs = np.zeros(n)
    gs[:-1] += gaps / 2
    gs[1:] += gaps / 2
    if period is not None:
        wrap = xs[0] + period - xs[-1]
        if wrap < 0:
            raise ValueError(f"nodes span more than the period {period}")
        gs[0] += wrap / 2
        gs[-1] += wrap / 2
    g = np.empty(n)
    g[order] = gs
    return g


@dataclass
class Conditioned:
    """N(mean, diag(var) - w w^T / a): the Gaussian after the conservation update.

    Attributes have the batch shape of the inputs: mean, var, w (..., N); a (...).
    ``cov_diag`` is the diagonal of the updated covariance (before any variance floor).
    """

    mean: np.ndarray
    var: np.ndarray
    w: np.ndarray
    a: np.ndarray

    @property
    def cov_diag(self) -> np.ndarray:
        return self.var - self.w**2 / self.a[..., None]

    def covariance(self) -> np.ndarray:
        """The dense updated covariance, shape (..., N, N)."""
        dense = self.var[..., :, None] * np.eye(self.var.shape[-1])
        return dense - self.w[..., :, None] * self.w[..., None, :] / self.a[..., None, None]


def condition(mu, var, g, b, sigma_g2: float = 0.0) -> Conditioned:
    """Condition N(mu, diag(var)) on g^T u = b + N(0, sigma_g2) (Hansen et al. Eq. 5-6).

    Returns the updated mean and the factors of the full updated covariance. Raises ValueError
    when the constraint has no prior variance to act on (g^T Sigma g + sigma_g2 = 0).
    """
    mu = np.asarray(mu, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.any(var < 0):
        raise ValueError("variances must be non-negative")
    if sigma_g2 < 0:
        raise ValueError(f"sigma_g2 must be non-negative; got {sigma_g2}")
    w = var * g
    a = np.sum(g * w, axis=-1) + sigma_g2
    if np.any(a <= 0):
        raise ValueError("g^T Sigma g + sigma_G^2 = 0: the prediction has no variance to update")
    misfit = np.sum(g * mu, axis=-1) - b
    mean = mu - w * (misfit / a)[..., None]
    return Conditioned(mean, np.broadcast_to(var, mean.shape).copy(), w, a)


def hardc_project(mu, g, b) -> np.ndarray:
    """HardC-ANP: the orthogonal projection of mu onto {u : g^T u = b} (Sigma := I, sigma_G = 0)."""
    mu = np.asarray(mu, dtype=np.float64)
    return condition(mu, np.ones_like(mu), g, b).mean


def sample_conditioned(prior_mu, prior_var, g, b, sigma_g2: float, normals, noise=None):
    """Draws of N(mu~, Sigma~) by conditioning prior draws (Matheron's rule), O(N) each.

    A prior draw u0 = mu + sigma * normals and an observation draw y = b + sigma_G * noise give
    u = u0 - Sigma g (g^T u0 - y) / a, which is distributed as N(mu~, Sigma~) exactly; with
    sigma_G = 0 every draw satisfies g^T u = b to round-off.

    Parameters
    ----------
    prior_mu, prior_var: (..., N).
    normals: standard normal draws, (n, ..., N).
    noise: standard normal draws (n, ...) for the observation noise (only when sigma_g2 > 0).
    """
    mu = np.asarray(prior_mu, dtype=np.float64)
    var = np.asarray(prior_var, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    u0 = mu + np.sqrt(var) * normals
    y = np.asarray(b, dtype=np.float64)
    if sigma_g2 > 0:
        y = y + np.sqrt(sigma_g2) * noise
    w = var * g
    a = np.sum(g * w, axis=-1) + sigma_g2
    return u0 - w * ((np.sum(g * u0, axis=-1) - y) / a)[..., None]


# -- several rows: the second-difference ("w/ diff") prior and the conservation row together ---
def second_difference_matrix(n: int) -> np.ndarray:
    """The (n - 2, n) matrix of second differences u_{i-1} - 2 u_i + u_{i+1} (rows [1, -2, 1])."""
    if n < 3:
        raise ValueError(f"second differences need at least 3 nodes; got {n}")
    d = np.zeros((n - 2, n))
    rows = np.arange(n - 2)
    d[rows, rows], d[rows, rows + 1], d[rows, rows + 2] = 1.0, -2.0, 1.0
    return d


def second_difference_variance(var, alpha: float) -> np.ndarray:
    """Var(u_{i-1} - 2 u_i + u_{i+1}) for u_i ~ N(., var_i) with correlation alpha between
    neighbours and alpha^2 two apart (an AR(1)-like field; Hansen et al.'s code,
    ``_get_second_derivative_var``):

        v0 + 4 v1 + v2 - 4 alpha sqrt(v0 v1) + 2 alpha^2 sqrt(v0 v2) - 4 alpha sqrt(v1 v2),

    with (v0, v1, v2) the variances at (i-1, i, i+1). ``var`` (..., n) -> (..., n - 2).
    """
    var = np.asarray(var, dtype=np.float64)
    v0, v1, v2 = var[..., :-2], var[..., 1:-1], var[..., 2:]
    s0, s1, s2 = np.sqrt(v0), np.sqrt(v1), np.sqrt(v2)
    return v0 + 4 * v1 + v2 - 4 * alpha * s0 * s1 + 2 * alpha**2 * s0 * s2 - 4 * alpha * s1 * s2


@dataclass
class ConditionedRows:
    """N(mean, diag(var) - W K^-1 W^T): the Gaussian after conditioning on several rows.

    W = Sigma H^T (..., N, r) and K = H Sigma H^T + R (..., r, r) for the stacked rows H.
    """

    mean: np.ndarray
    var: np.ndarray
    w: np.ndarray
    k: np.ndarray

    @property
    def cov_diag(self) -> np.ndarray:
        return self.var - np.sum(self.w * self._kinv_wt(), axis=-1)

    def _kinv_wt(self) -> np.ndarray:  # (K^-1 W^T)^T, shape (..., N, r)
        return np.swapaxes(np.linalg.solve(self.k, np.swapaxes(self.w, -1, -2)), -1, -2)

    def covariance(self) -> np.ndarray:
        """The dense updated covariance, shape (..., N, N)."""
        dense = self.var[..., :, None] * np.eye(self.var.shape[-1])
        return dense - self.w @ np.swapaxes(self._kinv_wt(), -1, -2)


def condition_rows(mu, var, h, y, noise_var) -> ConditionedRows:
    """Condition N(mu, diag(var)) on the rows H u = y + e, e ~ N(0, diag(noise_var)).

    mu~ = mu - Sigma H^T K^-1 (H mu - y),  Sigma~ = Sigma - Sigma H^T K^-1 H Sigma,
    K = H Sigma H^T + diag(noise_var). Rows with zero noise hold exactly for mu~ (and for
    every draw of N(mu~, Sigma~)). Shapes: mu, var (..., N); h (r, N); y, noise_var (..., r).
    Conditioning on all rows at once equals conditioning on them one group after the other
    (the paper's code applies the second-difference rows first, then the conservation row).
    """
    mu = np.asarray(mu, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    noise_var = np.asarray(noise_var, dtype=np.float64)
    if np.any(var < 0) or np.any(noise_var < 0):
        raise ValueError("variances must be non-negative")
    w = var[..., :, None] * h.T  # (..., N, r)
    k = h @ w
    k = k + noise_var[..., None] * np.eye(h.shape[0])
    misfit = mu @ h.T - np.asarray(y, dtype=np.float64)
    mean = mu - np.squeeze(w @ np.linalg.solve(k, misfit[..., None]), -1)
    return ConditionedRows(mean, np.broadcast_to(var, mean.shape).copy(), w, k)


def diff_rows(g, b, var, alpha: float, sigma_g2: float = 0.0):
    """Rows of ProbConserv "w/ diff" (Hansen et al.'s ``second_deriv_alpha``): the (N - 2)
    second differences with target 0 and variance :func:`second_difference_variance`, and the
    conservation row g^T u = b with variance sigma_g2. Returns (H, y, noise_var) for
    :func:`condition_rows`; ``var`` (..., N) and ``b`` (...) may carry batch axes."""
    g = np.asarray(g, dtype=np.float64)
    n = g.shape[-1]
    h = np.vstack([second_difference_matrix(n), g[None, :]])
    v2 = second_difference_variance(var, alpha)
    b = np.asarray(b, dtype=np.float64)
    shape = np.broadcast_shapes(v2.shape[:-1], b.shape)
    y = np.zeros(shape + (n - 1,))
    y[..., -1] = b
    noise = np.zeros(shape + (n - 1,))
    noise[..., :-1] = v2
    noise[..., -1] = sigma_g2
    return h, y, noise


def sample_conditioned_rows(prior_mu, prior_var, h, y, noise_var, normals, noise):
    """Draws of N(mu~, Sigma~) of :func:`condition_rows` by Matheron's rule: a prior draw
    u0 = mu + sigma * normals and an observation draw y + sqrt(noise_var) * noise give
    u = u0 - Sigma H^T K^-1 (H u0 - y_draw). normals (n, ..., N); noise (n, ..., r)."""
    mu = np.asarray(prior_mu, dtype=np.float64)
    var = np.asarray(prior_var, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    noise_var = np.asarray(noise_var, dtype=np.float64)
    u0 = mu + np.sqrt(var) * normals
    yd = np.asarray(y, dtype=np.float64) + np.sqrt(noise_var) * noise
    w = var[..., :, None] * h.T
    k = h @ w + noise_var[..., None] * np.eye(h.shape[0])
    misfit = u0 @ h.T - yd
    if k.ndim == 2:  # one prior for all draws: one factorisation
        return (
            u0 - np.linalg.solve(k, misfit.reshape(-1, k.shape[0]).T).T.reshape(misfit.shape) @ w.T
        )
    return u0 - np.squeeze(w @ np.linalg.solve(k, misfit[..., None]), -1)
