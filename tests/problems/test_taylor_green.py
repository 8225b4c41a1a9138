"""Taylor-Green vortex problem definition."""

import math

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.problems import get


def test_default_span_is_two_decay_times():
    p = get("navier_stokes/taylor_green")
    # |u| ~ exp(-2 nu t): two e-folding times 2 / (2 nu) = t_end at the default nu
    assert p.t_end == pytest.approx(2 / (2 * p.nu))
    pts = torch.tensor([[0.0, math.pi / 2, p.t_end]], dtype=torch.float64)
    assert float(p.exact(pts)["u"][0]) == pytest.approx(math.exp(-2))


def test_pressure_has_zero_mean_and_initial_condition_matches_exact():
    p = get("navier_stokes/taylor_green", nu=0.05)
    x = torch.as_tensor(np.random.default_rng(0).uniform(0, 2 * math.pi, (50, 2)))
    ic = p.initial_condition(x)
    ex = p.exact(torch.cat([x, torch.zeros(50, 1, dtype=x.dtype)], dim=1))
    for k in p.fields:
        assert torch.equal(ic[k], ex[k])
    g = p.evaluation_grid({"t": 2})
    vals = p.reference()(g.points())
    assert abs(vals["p"].mean()) < 1e-14


@pytest.mark.parametrize("kw", [{"nu": 0.0}, {"nu": -1.0}, {"t_end": 0.0}])
def test_bad_parameters(kw):
    with pytest.raises(ParameterError, match=next(iter(kw))):
        get("navier_stokes/taylor_green", **kw)
