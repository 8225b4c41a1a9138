"""Inequality post-processing of a conserving prediction: the nearest non-negative and/or
monotone field with the same conserved mass.

Hansen et al. (ICML 2023), downstream task and their ``apply_non_linear_ineq_constraint``: the
posterior mean mu~ of one time slice is replaced by

    u* = argmin (u - mu~)^T C^+ (u - mu~)   subject to   g^T u = b   and   u in K,

the projection in the metric of the predictive covariance C, with K one of

* ``nonneg``: u >= 0 (their ``mode="nonneg"``);
* ``monotone_nonneg``: u non-increasing in x and u >= 0 (their ``mode="monotone"``: they write
  u = D^-1 v with D = I - superdiagonal and ask v >= 0, i.e. u_i - u_{i+1} >= 0 and u_N >= 0);
* ``monotone``: u non-increasing in x only (the same with v_N free).

With sigma_G = 0 the covariance is singular along g (C g = 0), its range is the plane
g^T d = 0 and the Mahalanobis distance is finite only on the plane g^T u = b: the conservation
constraint is part of the paper's problem. Their code reaches it approximately (a float32
Cholesky of the singular C and ``scipy.optimize.nnls``, no equality row). Here the equality is
imposed exactly: on the plane, C^+ equals ``(C + tau g g^T / |g|^2)^-1`` up to a constant, so the
metric is that positive-definite matrix; with sigma_G > 0 (C definite) it is C^-1 and the
equality is imposed as well (deviation: the paper's code then only pulls g^T u towards b).
The Solution passes its predictive covariance mean_s Sigma~_s + Cov_s(mu~_s) of the latent
draws (deviation: the paper's code uses mean_s Sigma~_s, leaving out the between-draw term that
is part of the reported variance).

Solver: for a multiplier lambda of the equality, the problem without it is a non-negative least
squares (``scipy.optimize.nnls``) whose mass g^T u(lambda) is non-decreasing and piecewise linear
in lambda; a safeguarded Newton iteration on lambda finds the piece with g^T u = b, and a final
equality-constrained least squares on that piece's free variables makes g^T u = b hold to
round-off and the active bounds exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import nnls

#: the post-processings, by name
MODES = ("nonneg", "monotone", "monotone_nonneg")


def _basis(n: int, mode: str) -> np.ndarray:
    """T with u = T v and the constraint set K = {v >= 0} (a free v_N enters as v+ - v-)."""
    if mode == "nonneg":
        return np.eye(n)
    upper = np.triu(np.ones((n, n)))  # u_i = sum_{j >= i} v_j: v_i = u_i - u_{i+1}, v_N = u_N
    if mode == "monotone_nonneg":
        return upper
    if mode == "monotone":
        return np.hstack([upper, -upper[:, -1:]])
    raise ValueError(f"unknown post-processing {mode!r}; choose one of {list(MODES)}")


def metric_factor(cov: np.ndarray, g: np.ndarray, null_rtol: float = 1e-9) -> np.ndarray:
    """Lower Cholesky factor L of the metric's inverse: the distance is ``|L^-1 (u - m)|``.

    When ``cov`` annihilates g (sigma_G = 0) it is completed along g by ``tau g g^T / |g|^2``,
    tau = trace(cov) / N, which changes the distance on the plane g^T u = b by a constant only.
    """
    cov = np.asarray(cov, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    n = cov.shape[0]
    scale = np.trace(cov) / n
    if scale <= 0:
        raise ValueError("the covariance has no variance: nothing to project in")
    gh = g / np.linalg.norm(g)
    if gh @ cov @ gh <= null_rtol * scale:
        cov = cov + scale * np.outer(gh, gh)
    cov = 0.5 * (cov + cov.T)
    jitter = 0.0
    for _ in range(8):  # round-off can leave a tiny negative eigenvalue: add the least jitter
        try:
            return np.linalg.cholesky(cov + jitter * np.eye(n))
        except np.linalg.LinAlgError:
            jitter = max(jitter * 100, 1e-14 * scale)
    raise ValueError("the covariance is not positive semi-definite")


def project(mean, cov, g, b: float, mode: str) -> np.ndarray:
    """The projection u* of ``mean`` (N,) in the metric of ``cov`` (N, N) onto
    {g^T u = b} and the set ``mode`` (see the module docstring); nodes sorted by x.

    Raises ValueError when no field of the set has mass b (e.g. b < 0 with u >= 0).
    """
    mean = np.asarray(mean, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    n = mean.size
    t = _basis(n, mode)
    chol = metric_factor(cov, g)
    a = solve_triangular(chol, t, lower=True)  # L^-1 T
    r = solve_triangular(chol, mean, lower=True)  # L^-1 m
    h = chol.T @ g  # A^T h = T^T g: the mass of T v is (T^T g)^T v
    e = t.T @ g
    scale = np.abs(g) @ np.abs(mean) + abs(b) + np.abs(g).sum() * np.abs(mean).max()
    tol = 1e-12 * scale

    def at(lam):
        v, _ = nnls(a, r + lam * h, maxiter=50 * a.shape[1])
        return v, e @ v - b

    def piece(free):
        """v_F(lam) = p + lam q on the piece whose free variables are ``free``."""
        af = a[:, free]
        p = np.linalg.lstsq(af, r, rcond=None)[0]
        q = np.linalg.lstsq(af, h, rcond=None)[0]
        return p, q

    # the mass is non-decreasing in lam: Newton on the current piece, kept inside the bracket
    # [lo, hi] of multipliers known to give too little / too much mass (bisection otherwise)
    lam, (v, f) = 0.0, at(0.0)
    lo = hi = None
    step = None
    for _ in range(200):
        if abs(f) <= tol:
            break
        if f < 0:
            lo = lam
        else:
            hi = lam
        free = v > 0
        dq = float(e[free] @ piece(free)[1]) if free.any() else 0.0
        cand = lam - f / dq if dq > 1e-300 else np.nan
        if lo is not None and hi is not None:
            if not lo < cand < hi:
                cand = 0.5 * (lo + hi)
        elif (
            not np.isfinite(cand)
            or (lo is not None and cand <= lo)
            or (hi is not None and cand >= hi)
        ):
            if step is None:  # a first scale: the mass misfit over the unconstrained slope
                slope = float(e @ np.linalg.lstsq(a, h, rcond=None)[0])
                step = abs(f) / slope if slope > 0 else 1.0
            cand = lam + (step if f < 0 else -step)
            step *= 2
        lam = cand
        v, f = at(lam)
    else:
        raise ValueError(
            f"no field of the set {mode!r} has the mass {b:.6g} on these nodes (the projection "
            "found no multiplier)"
        )
    # polish: on this piece's free variables F the answer is v_F = p + lam q with the lam that
    # gives mass b exactly (a free variable sent below zero is bound at zero and it is redone)
    free = v > 0
    for _ in range(n):
        if not free.any():
            break
        p, q = piece(free)
        eq = e[free] @ q
        if eq <= 0:
            break
        sol = p + (b - e[free] @ p) / eq * q
        if np.all(sol >= 0):
            v = np.zeros_like(v)
            v[free] = sol
            break
        if sol.min() < -tol:
            break  # not this piece after all: keep the non-negative least-squares answer
        idx = np.flatnonzero(free)
        free[idx[sol < 0]] = False
    return t @ v
