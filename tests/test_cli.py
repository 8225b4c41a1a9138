"""The pdekit command: list, info, solve, export; one-line errors with exit status 2."""

import subprocess
import sys

import numpy as np
import pytest

import pdekit
from pdekit.cli import main
from pdekit.errors import ParameterError


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "porous_medium/heat" in out and "pinn" in out and "deepxde" in out
    assert main(["info", "navier_stokes/kovasznay"]) == 0
    out = capsys.readouterr().out
    assert "re (float) = 20.0" in out and "reference: exact" in out
    assert "up to a constant" not in out  # Kovasznay's pressure is fixed by its conditions
    assert main(["info", "navier_stokes/taylor_green"]) == 0
    assert "up to a constant: p " in capsys.readouterr().out
    assert main(["info", "pinn"]) == 0
    out = capsys.readouterr().out
    assert "train.lr (float) = 0.001  allowed any finite number  Adam learning rate" in out
    assert "network.width (int) = 64  allowed integer in [1, 4096]  hidden width" in out


@pytest.mark.parametrize("name", pdekit.problems.names() + pdekit.solvers.names())
def test_info_describes_every_problem_and_solver(name, capsys, tmp_path, monkeypatch):
    """Every registered name (gaussian_pulse and barenblatt, whose coordinates are computed,
    once crashed it); a solver's every config key with its type, default and doc."""
    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path))
    assert main(["info", name]) == 0
    out = capsys.readouterr().out
    if name in pdekit.solvers.names():
        from pdekit.solvers.config import config_help

        rows = config_help(pdekit.solvers.get(name).Config)
        assert all(f"  {r['key']} ({r['type']}) = {r['default']!r}" in out for r in rows)
        assert all(r["doc"] for r in rows), [r["key"] for r in rows if not r["doc"]]
    else:
        problem = pdekit.problems.get(name)
        assert f"coordinates: {', '.join(problem.coordinates)}" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["solve", "porous_medium/hot"], "unknown problem 'porous_medium/hot'; valid:"),
        (["solve", "porous_medium/heat", "--set", "k=-1"], "must be in (0, 10]"),
        (["solve", "porous_medium/heat", "--set", "kk=1"], "unknown parameter"),
        (["solve", "porous_medium/heat", "--set", "k"], "expects key=value"),
        (["solve", "porous_medium/heat", "--config", "train.lrr=1"], "'lrr'; valid:"),
        (["solve", "porous_medium/heat", "--solver", "nope"], "unknown solver 'nope'"),
        (["export", "/nonexistent/ck.h5"], "does not exist"),
        (["info", "nothing"], "unknown problem or solver"),
    ],
)
def test_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_solve_and_export(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["solve", "porous_medium/heat", "--steps", "20", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rel_l2 = " in text
    for name in ("solution.pvd", "solution.png", "fields.h5", "checkpoint.h5", "errors.json"):
        assert (out / name).is_file(), name
    import json

    record = json.loads((out / "errors.json").read_text())
    assert f"rel_l2 = {record['rel_l2']:.4e}" in text
    run = record["run"]
    assert (run["problem"], run["solver"], run["steps"], run["device"]) == (
        "porous_medium/heat", "pinn", 20, "cpu",
    )  # fmt: skip
    assert run["wall_s"] > 0
    # the training history as CSV, every recorded value once: the checkpoint's own history
    import csv

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    hist = pdekit.load(out / "checkpoint.h5").history
    assert f"wrote metrics: {out / 'metrics.csv'}" in text
    losses = [(int(r["step"]), float(r["value"])) for r in rows if r["name"] == "loss"]
    assert losses == list(zip(hist["step"], hist["loss"]))
    assert {r["name"] for r in rows} == {k for k in hist if k != "step"}
    # the resolved settings, written to repeat the run: the same solve from them alone trains
    # the same network (CPU, same seed)
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["problem"], cfg["solver"], cfg["steps"], cfg["seed"]) == (
        "porous_medium/heat", "pinn", 20, 0,
    )  # fmt: skip
    again = pdekit.solve(cfg["problem"], solver=cfg["solver"], config=cfg["config"],
                         seed=cfg["seed"], params=cfg["params"], verbose=False)  # fmt: skip
    pts = again.problem.evaluation_grid().points()[::50]
    np.testing.assert_array_equal(again(pts)["u"], pdekit.load(out / "checkpoint.h5")(pts)["u"])
    # and from the command line: --config-file names the run's config.json
    repeat = tmp_path / "repeat"
    argv = ["solve", "--config-file", str(out / "config.json"), "--quiet", "--out", str(repeat)]
    assert main(argv) == 0
    np.testing.assert_array_equal(pdekit.load(repeat / "checkpoint.h5")(pts)["u"], again(pts)["u"])
    capsys.readouterr()
    assert main(["export", str(out / "checkpoint.h5"), "--out", str(tmp_path / "exp")]) == 0
    assert (tmp_path / "exp" / "solution.pvd").is_file()
    # --out naming a file: said as solve says it (was "[Errno 17] File exists")
    (tmp_path / "afile").write_text("")
    assert main(["export", str(out / "checkpoint.h5"), "--out", str(tmp_path / "afile")]) == 2
    assert "--out directory" in capsys.readouterr().err
    # resuming a checkpoint that already reaches --steps says that nothing was trained
    argv = ["solve", "porous_medium/heat", "--resume", str(out / "checkpoint.h5")]
    assert main([*argv, "--steps", "10", "--out", str(tmp_path / "again")]) == 0
    assert "resumed at step 20, which already reaches the 10 steps" in capsys.readouterr().err


def test_a_toml_config_file_sets_the_run_and_flags_win(tmp_path, capsys):
    import json

    toml = tmp_path / "run.toml"
    toml.write_text(
        'problem = "porous_medium/heat"\nsolver = "pinn"\nsteps = 7\nseed = 3\n'
        "[params]\nk = 2.0\n[config.train]\nlr = 2e-3\n"
    )
    out = tmp_path / "a"
    assert main(["solve", "--config-file", str(toml), "--quiet", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["steps"], cfg["seed"], cfg["params"]["k"], cfg["config"]["train"]["lr"]) == (
        7, 3, 2.0, 2e-3,
    )  # fmt: skip
    out = tmp_path / "b"  # flags beside the file win
    argv = ["solve", "--config-file", str(toml), "--steps", "4", "--set", "k=3", "--quiet",
            "--config", "train.lr=1e-3", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["steps"], cfg["seed"], cfg["params"]["k"], cfg["config"]["train"]["lr"]) == (
        4, 3, 3.0, 1e-3,
    )  # fmt: skip
    capsys.readouterr()
    bad = [
        ('problem = "porous_medium/heat"\nstep = 3\n', "unknown keys ['step']"),
        ('problem = "porous_medium/heat"\nsteps = "3"\n', "steps must be an integer"),
        ('problem = "porous_medium/heat"\nparams = 3\n', "params must be a table"),
        ("problem = \n", "not readable as TOML"),
        ("solver = 'pinn'\n", "needs a problem name"),
    ]
    for text, message in bad:
        toml.write_text(text)
        assert main(["solve", "--config-file", str(toml), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    missing = str(tmp_path / "nope.toml")
    assert main(["solve", "--config-file", missing]) == 2
    assert "--config-file" in capsys.readouterr().err


def test_module_entry_point():
    res = subprocess.run(
        [sys.executable, "-m", "pdekit", "--version"], capture_output=True, text=True, check=True
    )
    assert res.stdout.startswith("pdekit ")


def test_readme_lists_every_problem_and_solver():
    """The README's tables cannot fall behind the registries."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [
        n for n in [*pdekit.problems.names(), *pdekit.solvers.names()] if f"`{n}`" not in readme
    ]
    assert not missing, f"README.md does not list {missing}"


#: tiny settings for solves that only check where parameters go
SMALL = ["--config", "network.width=4", "--config", "network.depth=1"]
SMALL += ["--config", "sampling.n_interior=16", "--config", "sampling.n_initial=8"]


def test_problem_parameter_named_like_a_solve_argument(tmp_path):
    """kolmogorov's ``seed`` (its initial field) is not the training ``--seed``; found by the
    fuzz test: ``--set seed=3`` used to collide with ``solve(seed=...)`` (internal error)."""
    argv = ["solve", "navier_stokes/kolmogorov", "--set", "seed=3", "--seed", "1", *SMALL]
    argv += ["--steps", "0", "--device", "cpu", "--quiet", "--no-export", "--out", str(tmp_path)]
    assert main(argv) == 0
    sol = pdekit.load(tmp_path / "checkpoint.h5")
    assert sol.problem.seed == 3
    with pytest.raises(ParameterError, match="k given both"):
        pdekit.solve("porous_medium/heat", steps=0, params={"k": 1.0}, k=2.0)
    with pytest.raises(ParameterError, match="params must be a mapping"):
        pdekit.solve("porous_medium/heat", steps=0, params=[("k", 1.0)])


def test_unknown_names_suggest_the_closest_and_ranges_print_integers_in_full():
    with pytest.raises(pdekit.errors.UnknownNameError) as exc:
        pdekit.solve("porous_medium/heat", config={"network": {"widht": 3}}, steps=0)
    assert str(exc.value).startswith("unknown config key in network 'widht'; valid: activation")
    assert str(exc.value).endswith("(did you mean 'width'?)")
    with pytest.raises(pdekit.errors.UnknownNameError, match=r"did you mean 'porous_medium/heat'"):
        pdekit.problems.get("porous_medium/hot")
    rows = {
        r["name"]: r for r in pdekit.problems.get_class("navier_stokes/kolmogorov").param_table()
    }
    assert rows["seed"]["range"] == "[0, 4294967295]"


def test_a_run_without_a_terminal_logs_plain_lines(tmp_path, capsys):
    """stderr is not a terminal here (a batch job's log): one line per log_every steps."""
    argv = ["solve", "porous_medium/heat", "--steps", "6", "--config", "train.log_every=3"]
    argv += ["--config", "network.width=8", "--no-export", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("pdekit: step ")]
    assert [x.split()[2] for x in lines] == ["3/6", "6/6"]
    assert all("loss=" in x and "lr=" in x and "steps/s" in x for x in lines)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_a_cuda_device_without_a_gpu_is_named_as_asked():
    from pdekit.solvers.training import select_device

    with pytest.raises(ParameterError, match=r"device 'cuda:1' requested but no CUDA GPU"):
        select_device("cuda:1")
