"""ProbConserv's training family comes from the family registry (``pdekit.problems.family``):
``family.name`` names a registered family, and without a shipped checkpoint or ``init`` the
problem's registered ProbConserv family gives the range (the paper's, Hansen et al. 2023, Sec. 4,
which ``tests/problems/test_family.py`` checks against the shipped checkpoints)."""

from __future__ import annotations

import pytest

import pdekit
from pdekit.errors import ParameterError, UnknownNameError
from pdekit.solvers.probconserv import solver as pc_solver
from pdekit.solvers.probconserv.family import FamilyConfig
from pdekit.solvers.probconserv.solver import ProbConserv, ProbConservConfig


def _family(problem: str, **family) -> FamilyConfig:
    p = pdekit.problems.get(problem)
    cfg = ProbConservConfig(family=FamilyConfig(**family), retrain=True)
    return ProbConserv()._with_family(p, cfg).family


def test_a_named_family_gives_its_range():
    fam = _family("porous_medium/pme", name="probconserv_pme")
    assert (fam.param, fam.low, fam.high) == ("m", 1.0, 6.0)


def test_an_explicit_range_wins_over_the_name():
    fam = _family("porous_medium/pme", name="probconserv_pme", param="m", low=2.0, high=3.0)
    assert (fam.param, fam.low, fam.high) == ("m", 2.0, 3.0)


def test_without_a_checkpoint_the_problems_registered_family_is_used(monkeypatch):
    monkeypatch.setattr(pc_solver, "shipped_checkpoints", lambda problem: [])
    fam = _family("porous_medium/stefan")
    assert (fam.param, fam.low, fam.high, fam.name) == ("u_star", 0.55, 0.7, "probconserv_stefan")


def test_a_family_of_another_problem_or_kind_is_refused():
    with pytest.raises(
        ParameterError,
        match="family probconserv_heat is a family of porous_medium/heat, not of porous_medium/pme",
    ):
        _family("porous_medium/pme", name="probconserv_heat")
    with pytest.raises(ParameterError, match="does not vary one parameter uniformly"):
        _family("navier_stokes/kolmogorov", name="kolmogorov_nu1e-3")
    with pytest.raises(UnknownNameError, match="probconserv_heat"):
        _family("porous_medium/heat", name="probconserv_hat")
