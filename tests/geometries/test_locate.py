"""The numba point-location kernel (pdekit.core.locate) against independent locators."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import Delaunay

from pdekit.core.locate import SimplexLocator


@pytest.fixture(scope="module", params=[1, 2, 3])
def delaunay(request):
    d = request.param
    rng = np.random.default_rng(d)
    nodes = rng.random((60 if d == 1 else 800, d))
    if d == 1:  # 1D: segments between sorted nodes
        order = np.argsort(nodes[:, 0])
        return nodes, np.stack([order[:-1], order[1:]], axis=1), None
    tri = Delaunay(nodes)
    return nodes, tri.simplices, tri


def test_agrees_with_brute_force_and_scipy(delaunay, oracles):
    nodes, simplices, tri = delaunay
    d = nodes.shape[1]
    rng = np.random.default_rng(10 + d)
    x = rng.random((2000, d)) * 1.2 - 0.1
    locator = SimplexLocator(nodes, simplices)
    index, bary = locator.locate(x)
    ref, ref_bary = oracles.brute_force_barycentric(x, nodes, simplices)
    np.testing.assert_array_equal(index, ref)  # random points are never on a shared face
    np.testing.assert_allclose(bary[index >= 0], ref_bary[index >= 0], atol=1e-12)
    assert np.all(np.isnan(bary[index < 0]))
    if tri is not None:
        np.testing.assert_array_equal(index, tri.find_simplex(x))
    assert 0 < (index >= 0).sum() < len(x)  # both inside and outside points exercised


def test_barycentric_coordinates_reproduce_the_point(delaunay):
    nodes, simplices, _ = delaunay
    x = np.random.default_rng(0).random((2000, nodes.shape[1]))
    index, bary = SimplexLocator(nodes, simplices).locate(x)
    inside = index >= 0
    np.testing.assert_allclose(bary[inside].sum(axis=1), 1.0, atol=1e-13)
    back = np.einsum("ij,ijk->ik", bary[inside], nodes[simplices[index[inside]]])
    np.testing.assert_allclose(back, x[inside], atol=1e-13)


def test_vertices_and_faces_are_located(delaunay):
    """The closed simplices: every node and every face midpoint is inside some simplex."""
    nodes, simplices, _ = delaunay
    locator = SimplexLocator(nodes, simplices)
    assert np.all(locator.locate(nodes[np.unique(simplices)])[0] >= 0)
    mids = nodes[simplices[:, :-1]].mean(axis=1)  # centroid of the face opposite the last node
    index, bary = locator.locate(mids)
    assert np.all(index >= 0) and np.all(bary[index >= 0] >= -1e-10)


def test_interpolation_exact_for_linear_fields(delaunay):
    nodes, simplices, _ = delaunay
    d = nodes.shape[1]
    coef = np.arange(1.0, d + 1)
    x = np.random.default_rng(1).random((3000, d))
    got = SimplexLocator(nodes, simplices).interpolate(2.0 - nodes @ coef, x)
    inside = ~np.isnan(got)
    assert inside.sum() > 2000
    np.testing.assert_allclose(got[inside], 2.0 - x[inside] @ coef, atol=1e-12)


def test_non_finite_and_far_points_are_outside():
    nodes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    locator = SimplexLocator(nodes, np.array([[0, 1, 2]]))
    x = np.array([[np.nan, 0.1], [0.1, np.inf], [5.0, 5.0], [0.2, 0.2]])
    index, _ = locator.locate(x)
    np.testing.assert_array_equal(index, [-1, -1, -1, 0])


def test_grid_lists_each_simplex_in_few_bins():
    """The bounding-volume grid is sized to the cells: a simplex is listed in O(1) grid cells
    (not all of them), so a query tests O(1) candidates."""
    rng = np.random.default_rng(2)
    nodes = rng.random((20_000, 2))
    simplices = Delaunay(nodes).simplices
    locator = SimplexLocator(nodes, simplices)
    assert locator.members.size < 10 * len(simplices)
    per_bin = np.diff(locator.offsets)
    assert per_bin.max() < 50 and np.prod(locator.nb) > len(simplices) / 16


def test_degenerate_simplices_are_rejected():
    nodes = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="1 degenerate"):
        SimplexLocator(nodes, np.array([[0, 1, 3], [0, 1, 2]]))
