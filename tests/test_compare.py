"""``pdekit compare``: solvers side by side at one wall-clock budget, each in its own process;
the table's errors are those of the saved runs (scored again here), the figure is written, and
bad input is refused before anything trains."""

from __future__ import annotations

import json

import pytest

import pdekit
from pdekit.cli import main
from pdekit.compare import compare, parse_budget
from pdekit.errors import ParameterError, UnknownNameError, UnsupportedPairError


def test_two_solvers_at_one_budget(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "porous_medium/heat", "--solvers", "pinn,causal_pinn", "--budget", "2s",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    table = json.loads((out / "compare.json").read_text())
    assert [r["solver"] for r in table["rows"]] == ["pinn", "causal_pinn"]
    assert table["budget_s"] == 2.0 and (out / "compare.png").stat().st_size > 10_000
    for r in table["rows"]:
        assert r["steps"] >= 1 and r["wall_s"] >= 2.0 and r["peak_rss_mib"] > 100
        sol = pdekit.load(r["checkpoint"])  # the table's numbers are the saved run's
        assert sol.solver == r["solver"] and sol.step == r["steps"]
        assert sol.errors()["rel_l2"] == pytest.approx(r["rel_l2"], rel=1e-9)
        assert f"| {r['solver']} | {r['rel_l2']:.3e} |" in text


def test_bad_input_is_refused_before_training(tmp_path):
    with pytest.raises(UnknownNameError, match="nope"):
        compare("porous_medium/heat", ["pinn", "nope"], 1, out=tmp_path)
    with pytest.raises(UnsupportedPairError):
        compare("navier_stokes/kovasznay", ["pinn", "causal_pinn"], 1, out=tmp_path)
    with pytest.raises(ParameterError, match="named twice"):
        compare("porous_medium/heat", ["pinn", "pinn"], 1, out=tmp_path)
    with pytest.raises(ParameterError, match="not for porous_medium/heat"):
        compare("porous_medium/heat", ["causal_pinn"], 1, out=tmp_path,
                presets={"causal_pinn": "benchmark"})  # fmt: skip
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written
    assert parse_budget("2m") == 120.0 and parse_budget("90") == 90.0
    assert parse_budget("1.5h") == 5400.0
    for bad in ("abc", "-3", "0s", "3 days"):
        with pytest.raises(ParameterError, match="budget"):
            parse_budget(bad)


def test_a_run_that_cannot_start_is_reported_not_waited_for(tmp_path):
    """A script calling compare() at module level, without the ``__main__`` guard: the spawned
    run imports it again and dies at start-up. A multiprocessing Pool replaced the dead worker
    and waited for ever (10 minutes observed before it was killed); the error now names the
    cause within seconds (8 s measured)."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pdekit.compare as c\n"
        f"c.compare('convection_diffusion/convection', ['pinn'], budget_s=1.0, "
        f"out={str(tmp_path / 'out')!r})\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode != 0
    assert "if __name__ ==" in done.stderr and "died without a result" in done.stderr


def test_per_solver_overrides_reach_the_run_and_bad_ones_are_refused_first(tmp_path):
    """``overrides={solver: {key: value}}`` is that solver's config (the saved run has it); an
    unknown key, a solver not compared, or the clock keys are refused before anything trains."""
    out = tmp_path / "cmp"
    argv = ["compare", "porous_medium/heat", "--solvers", "pinn", "--budget", "1s",
            "--threads", "1", "--out", str(out),
            "--config", "pinn:network.width=8", "--config", "pinn:network.depth=1"]  # fmt: skip
    assert main(argv) == 0  # the command line's --config SOLVER:KEY=VALUE is compare's overrides
    table = json.loads((out / "compare.json").read_text())
    sol = pdekit.load(table["rows"][0]["checkpoint"])
    assert (sol.config.network.width, sol.config.network.depth) == (8, 1)
    for bad, match in [
        ({"pinn": {"network.widht": 8}}, "widht"),
        ({"causal_pinn": {"network.width": 8}}, "not compared"),
        ({"pinn": {"train.steps": 10}}, "wall-clock budget"),
    ]:
        with pytest.raises((ParameterError, UnknownNameError), match=match):
            compare("porous_medium/heat", ["pinn"], budget_s=1.0, out=tmp_path / "x", overrides=bad)
    assert not (tmp_path / "x" / "pinn").exists()
    for bad in ("network.width=8", ":network.width=8", "pinn:network.width"):
        argv = ["compare", "porous_medium/heat", "--solvers", "pinn", "--budget", "1s",
                "--out", str(tmp_path / "y"), "--config", bad]  # fmt: skip
        assert main(argv) == 2
    assert not (tmp_path / "y" / "pinn").exists()
