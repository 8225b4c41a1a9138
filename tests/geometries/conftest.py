"""Independent oracles for mesh tests, as the fixture ``oracles``: brute-force location and a
sub-cell chi-square statistic. Nothing here uses pdekit's locator or sampler.

(A fixture rather than an importable module: the suite runs with ``--import-mode=importlib``.)
"""

from __future__ import annotations

import pathlib
from types import SimpleNamespace

import numpy as np
import pytest

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def _barycentric(inv, origin, points, candidates):
    """Barycentric coordinates (n, k, d + 1) of each point in each of its candidate simplices."""
    lam = np.einsum("pkij,pkj->pki", inv[candidates], points[:, None, :] - origin[candidates])
    return np.concatenate([1.0 - lam.sum(axis=2, keepdims=True), lam], axis=2)


def brute_force_barycentric(points, nodes, simplices, chunk=500, k=16):
    """For each point: a simplex holding it, and its barycentric coordinates (-1, NaN if none).

    Exhaustive and independent of pdekit's locator: every point is first tested against the
    ``k`` simplices with the nearest centroids (scipy's KD-tree), and every point that none of
    those holds is then tested against all simplices.
    """
    from scipy.spatial import cKDTree

    vert = nodes[simplices]
    origin = vert[:, 0]
    inv = np.linalg.inv(np.transpose(vert[:, 1:] - vert[:, :1], (0, 2, 1)))
    d = nodes.shape[1]
    k = min(k, len(simplices))
    _, near = cKDTree(vert.mean(axis=1)).query(points, k=k)
    near = near.reshape(len(points), k)
    index = np.full(len(points), -1)
    bary = np.full((len(points), d + 1), np.nan)
    lam = _barycentric(inv, origin, points, near)
    ok = lam.min(axis=2) >= -1e-12
    rows = np.flatnonzero(ok.any(axis=1))
    first = np.argmax(ok[rows], axis=1)
    index[rows] = near[rows, first]
    bary[rows] = lam[rows, first]
    rest = np.flatnonzero(index < 0)
    everything = np.arange(len(simplices))
    for start in range(0, len(rest), chunk):
        p = rest[start : start + chunk]
        lam = _barycentric(
            inv, origin, points[p], np.broadcast_to(everything, (len(p), everything.size))
        )
        ok = lam.min(axis=2) >= -1e-12
        hit = np.flatnonzero(ok.any(axis=1))
        first = np.argmax(ok[hit], axis=1)
        index[p[hit]] = first
        bary[p[hit]] = lam[hit, first]
    return index, bary


def subcell_of(bary):
    """Which of 2^d equal-volume pieces of its simplex a point lies in, from its barycentrics.

    Triangle (4 pieces, each 1/4 of the area): corner i where lambda_i > 1/2, else the middle
    triangle (the red refinement). Tetrahedron (8 pieces, each 1/8 of the volume): corner i
    where lambda_i > 1/2, else one of the four quarters of the central octahedron cut by the
    signs of lambda_0 - lambda_2 and lambda_1 - lambda_3 (equal by the vertex swaps 0<->2 and
    1<->3, which map the octahedron onto itself).
    """
    d = bary.shape[1] - 1
    corner = np.argmax(bary, axis=1)
    is_corner = bary.max(axis=1) > 0.5
    if d == 2:
        return np.where(is_corner, corner, 3)
    quarter = 4 + 2 * (bary[:, 0] > bary[:, 2]) + (bary[:, 1] > bary[:, 3])
    return np.where(is_corner, corner, quarter)


def subcell_chi_square(points, nodes, simplices):
    """Pearson chi-square statistic of the counts in the 2^d equal pieces of every simplex.

    Expected counts are proportional to piece volume (uniform density in the domain).
    Returns (statistic, degrees of freedom, number of points outside every simplex).
    """
    from scipy.special import factorial

    index, bary = brute_force_barycentric(points, nodes, simplices)
    inside = index >= 0
    d = nodes.shape[1]
    pieces = 2**d
    bins = index[inside] * pieces + subcell_of(bary[inside])
    counts = np.bincount(bins, minlength=len(simplices) * pieces)
    vert = nodes[simplices]
    vol = np.abs(np.linalg.det(vert[:, 1:] - vert[:, :1])) / factorial(d)
    expected = np.repeat(vol / vol.sum() / pieces, pieces) * inside.sum()
    stat = float(np.sum((counts - expected) ** 2 / expected))
    return stat, counts.size - 1, int((~inside).sum())


@pytest.fixture(scope="session")
def oracles():
    """The independent oracles of this module."""
    return SimpleNamespace(
        data=DATA,
        brute_force_barycentric=brute_force_barycentric,
        subcell_chi_square=subcell_chi_square,
        subcell_of=subcell_of,
    )
