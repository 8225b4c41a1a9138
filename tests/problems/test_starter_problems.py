"""The registry's contract: names, parameter validation, references callable on points."""

import numpy as np
import pytest

import pdekit
from pdekit.errors import ParameterError, UnknownNameError


def test_unknown_problem_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        pdekit.problems.get("porous_medium/hot")
    assert "porous_medium/heat" in str(err.value)


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(UnknownNameError, match=r"parameter of .*convection 'speed'.*beta"):
        pdekit.problems.get("convection_diffusion/convection", speed=3)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("porous_medium/heat", {"k": -1.0}, r"'k' .* must be in \(0, 10\]"),
        ("porous_medium/heat", {"k": 0.0}, r"'k' .* must be in \(0, 10\]"),
        ("convection_diffusion/convection", {"beta": 1e4}, r"'beta' .* \[0, 100\]"),
        ("navier_stokes/kovasznay", {"re": "twenty"}, r"'re' .* must be a number"),
        ("navier_stokes/kovasznay", {"re": float("nan")}, r"'re' .* must be finite"),
    ],
)
def test_out_of_range_parameters(name, params, message):
    with pytest.raises(ParameterError, match=message):
        pdekit.problems.get(name, **params)


def test_integer_parameter_is_coerced():
    assert pdekit.problems.get("convection_diffusion/convection", beta=3).beta == 3.0


@pytest.mark.parametrize("name", pdekit.problems.names())
def test_reference_and_evaluation_grid_conventions(name):
    problem = pdekit.problems.get(name)
    grid = problem.evaluation_grid()
    assert grid.coordinates == problem.coordinates
    pts = grid.points()[:500]
    ref = problem.reference()(pts)
    assert set(problem.fields) <= set(ref)
    for v in ref.values():
        assert v.shape == (len(pts),) and np.all(np.isfinite(v))
    assert problem.domain().contains(pts).all()
