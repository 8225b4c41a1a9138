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
