"""Primitives and space-time sampling: inside, uniform, normals, tags, reproducibility."""

import math

import numpy as np
import pytest

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries import Box, Interval, Rectangle, SpaceTime, TimeDomain, unit_samples


@pytest.mark.parametrize("method", ["sobol", "halton", "lhs", "uniform"])
def test_unit_samples_uniform(method):
    x = unit_samples(4096, 2, method, rng=0)
    assert x.shape == (4096, 2) and x.min() >= 0 and x.max() < 1
    # mean 1/2 and variance 1/12 per axis; 4096 iid points: SE of mean ~ 0.0045
    assert np.allclose(x.mean(axis=0), 0.5, atol=0.015)
    assert np.allclose(x.var(axis=0), 1 / 12, atol=0.01)


def test_samples_reproducible_with_seed():
    r = Rectangle((0, 0), (2, 1))
    assert np.array_equal(r.sample_interior(100, rng=7), r.sample_interior(100, rng=7))
    assert not np.array_equal(r.sample_interior(100, rng=7), r.sample_interior(100, rng=8))


def test_boundary_points_and_outward_normals():
    box = Box((0, -1, 2), (1, 1, 5))
    pts, normals = box.sample_boundary(6000, rng=0)
    assert box.contains(pts).all()
    assert np.allclose(np.linalg.norm(normals, axis=1), 1)
    # divergence theorem: surface integral of x . n = dim * volume (points spread by area)
    area = 2 * (2 * 3 + 1 * 3 + 1 * 2)
    flux = area * np.mean(np.sum(pts * normals, axis=1))
    assert math.isclose(flux, 3 * box.volume(), rel_tol=0.03)  # sampling error ~1%


def test_tags_and_aliases():
    r = Rectangle((0, 0), (1, 2))
    pts, n = r.sample_boundary(50, tag="top", rng=0)
    assert np.allclose(pts[:, 1], 2) and np.allclose(n, [0, 1])
    assert set(r.boundary_tags) == {"xmin", "xmax", "ymin", "ymax"}
    with pytest.raises(UnknownNameError, match="valid: .*xmax"):
        r.sample_boundary(10, tag="inlet")


def test_periodic_axes_have_no_boundary():
    line = Interval(0, 2 * math.pi, periodic=True)
    assert line.boundary_tags == ()
    with pytest.raises(ParameterError, match="no boundary"):
        line.sample_boundary(10)


def test_spacetime_sampling():
    st = SpaceTime(Interval(-1, 1), TimeDomain(0, 0.5))
    x = st.sample_interior(1000, rng=0)
    assert x.shape == (1000, 2) and st.contains(x).all()
    x0 = st.sample_initial(100, rng=0)
    assert np.all(x0[:, 1] == 0)
    pts, n = st.sample_boundary(100, rng=0)
    assert np.all(np.isin(pts[:, 0], [-1, 1])) and n.shape == (100, 1)
    assert np.allclose(st.bounds, [[-1, 0], [1, 0.5]])


def test_bad_geometry_input():
    with pytest.raises(ParameterError, match="lo < hi"):
        Interval(1, 0)
    with pytest.raises(ParameterError, match="t0 < t1"):
        TimeDomain(1, 1)
