"""b(t): the conserved mass the update enforces, two ways that must agree."""

import numpy as np
import pytest

import pdekit
from pdekit.solvers.probconserv.mass import mass_source

# (problem, parameters, tolerance on |flux route - closed form|, reason)
CASES = [
    ("porous_medium/stefan", {"u_star": 0.6}, 1e-14, "t^-1/2 flux: Gauss in sqrt(t) is exact"),
    ("porous_medium/stefan", {"u_star": 0.55}, 1e-14, "same"),
    ("porous_medium/pme", {"m": 1.0}, 1e-14, "flux linear in t: exact"),
    ("porous_medium/pme", {"m": 3.0}, 1e-9, "flux ~ t^(1/3): 64 Gauss nodes, measured 5e-11"),
    ("porous_medium/pme", {"m": 6.0}, 1e-8, "flux ~ t^(1/6): 64 Gauss nodes, measured 7e-10"),
]


@pytest.mark.parametrize("name,params,tol,reason", CASES)
def test_boundary_flux_integral_matches_closed_form_mass(name, params, tol, reason):
    problem = pdekit.problems.get(name, **params)
    t1 = problem.domain().bounds[1, -1]
    t = np.array([0.0, 0.01, 0.05, 0.3, 0.5, 1.0]) * t1
    closed, how = mass_source(problem)
    assert "closed-form" in how
    flux, how = mass_source(problem, closed_form=False)
    assert "boundary flux" in how
    np.testing.assert_allclose(flux(t), closed(t), rtol=0, atol=tol, err_msg=reason)


def test_published_mass_values():
    """Hansen et al. (2023) values, re-derived in the paper notes (A1)."""
    stefan = mass_source(pdekit.problems.get("porous_medium/stefan", u_star=0.6))[0]
    assert stefan(np.array([0.05]))[0] == pytest.approx(0.18595, abs=5e-6)
    for m, want in [(1.0, 0.125), (3.0, 0.42927), (6.0, 0.51469)]:
        pme = mass_source(pdekit.problems.get("porous_medium/pme", m=m))[0]
        assert pme(np.array([0.5]))[0] == pytest.approx(want, abs=5e-6)


def test_periodic_heat_conserves_zero_mass():
    b, how = mass_source(pdekit.problems.get("porous_medium/heat", k=3.0))
    assert how == "initial mass"  # periodic: no boundary term
    np.testing.assert_allclose(b(np.linspace(0, 1, 5)), 0.0, atol=1e-15)
