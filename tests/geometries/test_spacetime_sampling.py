"""Space-time collocation points must cover the (x, t) plane, whatever the sampler."""

import numpy as np
import pytest

import pdekit
from pdekit.errors import ParameterError
from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.geometries.sampling import METHODS


@pytest.mark.parametrize("method", METHODS)
def test_interior_points_fill_the_space_time_plane(method):
    # 4096 points in a 16 x 16 grid of cells: 16 per cell on average. Independent uniform
    # points leave some cell empty with probability ~ 256 exp(-16) ~ 3e-5; pairing two
    # scrambled Sobol sequences in draw order left 229 of 256 cells empty.
    dom = SpaceTime(Interval(0.0, 2.0), TimeDomain(0.0, 1.0))
    pts = dom.sample_interior(4096, np.random.default_rng(0), method)
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=16, range=[[0, 2], [0, 1]])
    assert (counts == 0).sum() == 0
    assert counts.max() <= 40  # Poisson(16): P(count > 40) < 1e-6 per cell


def test_too_short_time_interval_is_refused():
    # found by the solve fuzz test: taylor_green with t_end = 1.1e-35 gave a nan loss at step 1
    with pytest.raises(ParameterError, match="too short"):
        TimeDomain(0.0, 1e-35)
    with pytest.raises(ParameterError, match="too short"):
        TimeDomain(1e8, 1e8 + 1.0)  # below float resolution relative to t
    assert TimeDomain(0.0, 1e-6).t1 == 1e-6
    with pytest.raises(ParameterError, match="too short"):
        pdekit.solve("navier_stokes/taylor_green", solver="pinn", steps=1, t_end=1.1e-35)
