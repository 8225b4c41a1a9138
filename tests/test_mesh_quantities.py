"""Quantities of interest of any solution on the DFG mesh problem: drag, lift and the pressure
difference beside the reference's, in the API, in errors.json and in `pdekit solve`'s report;
field errors measured where the reference is defined (outside the cylinder)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pdekit
from pdekit.cli import main
from pdekit.errors import ParameterError
from pdekit.solution import Solution


@pytest.fixture(scope="module")
def problem():
    return pdekit.problems.get("navier_stokes/cylinder_steady")


def _solution(problem, predict):
    return Solution(problem, "test", None, predict)


def test_the_reference_as_a_solution_scores_zero(problem):
    """A Solution that answers with the reference has zero field errors (the points inside the
    cylinder, where the reference is NaN, are left out) and its quantities equal the
    reference's."""
    ref = problem.reference()
    sol = _solution(problem, lambda pts: ref(pts))
    errors = sol.errors()
    assert np.isfinite(errors["rel_l2"]) and errors["rel_l2"] < 1e-12
    q = sol.quantities()
    assert set(q) == {"c_d", "c_l", "dp"}
    for v in q.values():
        assert v["rel_error"] < 1e-9
    assert q["c_d"]["reference"] == pytest.approx(5.57953, rel=1e-4)
    assert sol.pressure_difference((0.15, 0.2), (0.25, 0.2)) == pytest.approx(
        q["dp"]["reference"], rel=1e-9
    )
    f = sol.forces("cylinder")
    assert f["c_d"] == pytest.approx(q["c_d"]["reference"], rel=1e-9)


def test_a_wrong_flow_is_scored_as_wrong(problem):
    """Poiseuille flow everywhere (the cylinder ignored) has the no-slip misfit on the
    cylinder, so its drag is far from the reference: the quantities can fail."""

    def poiseuille(pts):
        y = pts[:, 1]
        u = 6 * 0.2 * y * (0.41 - y) / 0.41**2
        return {"u": u, "v": 0 * y, "p": -2 * 1e-3 * (-6 * 0.2 / 0.41**2) * (2.2 - pts[:, 0])}

    q = _solution(problem, poiseuille).quantities()
    assert q["c_d"]["rel_error"] > 0.5


def test_bad_force_requests(problem):
    ref = problem.reference()
    sol = _solution(problem, lambda pts: ref(pts))
    with pytest.raises(ParameterError, match="unknown boundary part 'disk'"):
        sol.forces("disk")
    with pytest.raises(ParameterError, match="method"):
        sol.forces("cylinder", method="surface")
    kov = _solution(pdekit.problems.get("navier_stokes/kovasznay"), lambda p: {})
    with pytest.raises(NotImplementedError, match="no forces"):
        kov.forces("inlet")
    assert kov.quantities() == {}


def test_cli_reports_quantities(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "solve",
            "navier_stokes/cylinder_steady",
            "--steps",
            "2",
            "--config",
            "sampling.n_interior=64",
            "--config",
            "sampling.n_boundary=32",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    record = json.loads((out / "errors.json").read_text())
    assert set(record["quantities"]) == {"c_d", "c_l", "dp"}
    assert record["quantities"]["c_d"]["reference"] == pytest.approx(5.57953, rel=1e-4)
    printed = capsys.readouterr().out
    assert "c_d = " in printed and "reference 5.579" in printed
    assert (out / "solution.pvd").exists()


def test_cli_writes_errors_for_a_problem_without_quantities(tmp_path):
    """The shedding cylinder defines no solution quantities (its trajectory quantities take MAC
    arrays): `pdekit solve` still writes errors.json, without a quantities entry."""
    out = tmp_path / "run"
    args = ["solve", "navier_stokes/cylinder", "--steps", "2", "--set", "t_end=0.25"]
    args += ["--config", "sampling.n_interior=64", "--config", "sampling.n_boundary=32"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "errors.json").read_text())
    assert np.isfinite(record["rel_l2"]) and "quantities" not in record
