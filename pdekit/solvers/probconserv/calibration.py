"""Calibration of a Gaussian predictive distribution: interval coverage and calibration error.

For predictions N(mean_i, std_i^2) of values y_i, the central interval of level p is
mean_i +- z_p std_i with z_p = Phi^-1((1 + p) / 2), and its empirical coverage is

    cov(p) = (1 / n) sum_i 1[ abs(y_i - mean_i) <= z_p std_i ].

A calibrated prediction has cov(p) = p for every p; the expected calibration error over a grid
of levels p_1..p_K is ECE = (1 / K) sum_k ``|cov(p_k) - p_k|`` (Kuleshov, Fenner & Ermon, ICML
2018, for regression; here with central intervals). ProbConserv (Hansen et al. 2023) reports
the log-likelihood; these are the complementary coverage numbers of the same Gaussian.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

#: the levels whose coverage is reported
REPORTED_LEVELS = (0.5, 0.9, 0.95)
#: the grid of levels the calibration error averages over: 0.05, 0.10, ..., 0.95
ECE_LEVELS = tuple(np.round(np.arange(1, 20) * 0.05, 2))


def coverage(y, mean, std, levels=REPORTED_LEVELS) -> np.ndarray:
    """Fraction of ``y`` inside the central intervals of each level (arrays broadcast; the
    fraction is over all of their elements). A zero std covers only an exact hit."""
    y, mean, std = (np.asarray(a, dtype=np.float64) for a in (y, mean, std))
    if np.any(std < 0):
        raise ValueError("standard deviations must be non-negative")
    dev = np.abs(y - mean).reshape(-1)
    std = np.broadcast_to(std, np.broadcast_shapes(y.shape, mean.shape, std.shape)).reshape(-1)
    z = norm.ppf(0.5 * (1.0 + np.asarray(levels, dtype=np.float64)))
    return np.mean(dev[None, :] <= z[:, None] * std[None, :], axis=1)


def calibration_error(y, mean, std, levels=ECE_LEVELS) -> float:
    """Mean ``|coverage(p) - p|`` over ``levels`` (0: calibrated; at most max(p, 1 - p))."""
    levels = np.asarray(levels, dtype=np.float64)
    return float(np.mean(np.abs(coverage(y, mean, std, levels) - levels)))


def calibration_metrics(y, mean, std) -> dict[str, float]:
    """``cov50``, ``cov90``, ``cov95`` (coverage of the central 50/90/95 % intervals) and
    ``ece`` (:func:`calibration_error` over 0.05..0.95)."""
    cov = coverage(y, mean, std, REPORTED_LEVELS)
    out = {f"cov{round(100 * p)}": float(c) for p, c in zip(REPORTED_LEVELS, cov)}
    out["ece"] = calibration_error(y, mean, std)
    return out
