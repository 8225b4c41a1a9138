"""The scripts in ``examples/`` run, at tiny budgets, and produce what they say they do.

Each example is imported from its file and its ``main`` called with a small network and a few
steps, writing into ``tmp_path`` (``torchrun_ddp.py`` runs as its users run it: two gloo
processes under torchrun). The assertions check the outputs against something independent of
the example: the closed-form solution, an independent reader (meshio, json, XML), an
uninterrupted run, the files the run wrote, the reference solver.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch
from robustness_support import subprocess_env

import pdekit
from pdekit.checkpoints import load_checkpoint
from pdekit.cli import main as pdekit_main
from pdekit.geometries.grid import TensorGrid
from pdekit.metrics import rel_l2
from pdekit.problems import Dataset, families, unregister

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: a network and batch small enough that a step takes milliseconds
TINY_PINN = {
    "network": {"width": 16, "depth": 2},
    "sampling": {"n_interior": 128, "n_boundary": 16, "n_initial": 32},
    "train": {"log_every": 10},
}


def load_example(name: str):
    """The example ``examples/<name>.py`` imported as a fresh module (its registrations run)."""
    spec = importlib.util.spec_from_file_location(f"pdekit_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_example_is_documented_and_tested():
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    readme = (EXAMPLES / "README.md").read_text()
    tests = Path(__file__).read_text()
    for name in scripts:
        doc = ast.get_docstring(ast.parse((EXAMPLES / f"{name}.py").read_text())) or ""
        assert "Run:" in doc, f"{name}.py's docstring says how to run it"
        assert f"{name}.py" in readme, f"{name}.py is listed in examples/README.md"
        assert f"def test_{name}(" in tests, f"{name}.py has a test here"
    assert len(scripts) >= 7


def test_your_own_pde(capsys):
    ex = load_example("your_own_pde")
    try:
        problem = pdekit.problems.get(ex.NAME, nu=0.05)
        # the user's exact solution is the formula of the docstring (independent numpy)
        grid = problem.evaluation_grid()
        x, t = grid.points().T
        want = np.exp(-(0.05 * math.pi**2 + 1.0) * t) * np.sin(math.pi * x)
        np.testing.assert_allclose(problem.reference()(grid.points())["u"], want, atol=1e-14)
        assert {"pinn", "deepxde", "causal_pinn"} <= set(pdekit.supported_solvers(problem))
        sol = ex.main(steps=300, config=TINY_PINN, verbose=False)["pinn"]
        assert sol.step == 300
        # the error against the formula; 300 Adam steps of a 16 x 2 network on a smooth
        # solution: 0.11 measured, an untrained network ~1
        err = rel_l2(sol.on(grid)["u"].ravel(), want)
        assert err == pytest.approx(sol.errors()["rel_l2"], rel=1e-9)
        assert err < 0.3
        # the printed values are the solution's and the formula's at the printed points
        out = capsys.readouterr().out
        pts = np.array([[0.25, 0.0], [0.5, 0.5], [0.75, 1.0]])
        for (xi, ti), u in zip(pts, sol(pts)["u"]):
            exact = math.exp(-(0.05 * math.pi**2 + 1.0) * ti) * math.sin(math.pi * xi)
            assert f"u({xi:.2f}, {ti:.2f}) = {u:+.5f}   exact {exact:+.5f}" in out
    finally:
        unregister(ex.NAME)


def test_your_own_mesh(tmp_path):
    ex = load_example("your_own_mesh")
    sol, pvd = ex.main(tmp_path, steps=100, config=TINY_PINN, verbose=False)
    # the mesh written, read back by meshio: the L (3 of 4 quarters of an 8 x 8 lattice)
    mesh = meshio.read(tmp_path / "l_shape.msh")
    tri = mesh.get_cells_type("triangle")
    assert len(tri) == 2 * 48 and len(mesh.points) == 65
    geom = sol.problem.domain().space
    assert geom.volume() == pytest.approx(0.75, rel=1e-12)
    assert set(geom.boundary_tags) == {"outer", "notch"}
    assert geom.boundary_area("notch") == pytest.approx(1.0, rel=1e-12)
    assert geom.boundary_area("outer") == pytest.approx(3.0, rel=1e-12)
    assert sol.step == 100 and np.isfinite(list(sol.errors().values())).all()
    # the VTK series: one .vtu per output time on the mesh's own nodes and triangles
    frames = ET.parse(pvd).getroot().findall("Collection/DataSet")
    times = sol.problem.evaluation_grid().axes["t"]
    assert [float(f.get("timestep")) for f in frames] == pytest.approx(times)
    last = meshio.read(pvd.parent / frames[-1].get("file"))
    assert len(last.points) == 65 and len(last.get_cells_type("triangle")) == 96
    u, ref, err = (last.point_data[k] for k in ("u", "u_reference", "u_error"))
    np.testing.assert_allclose(err, u - ref, atol=1e-6)
    nodes = np.column_stack([last.points[:, :2], np.full(len(u), times[-1])])
    np.testing.assert_allclose(ref, sol.problem.reference()(nodes)["u"], atol=1e-6)
    np.testing.assert_allclose(u, sol(nodes)["u"], atol=1e-6)


def test_compare_solvers(tmp_path, capsys):
    ex = load_example("compare_solvers")
    table = ex.main(tmp_path, budget_s=0.5, threads=1)
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["rows"] == table["rows"] and saved["budget_s"] == 0.5
    assert [r["solver"] for r in table["rows"]] == ["pinn", "causal_pinn"]
    assert Path(table["figure"]).stat().st_size > 10_000
    out = capsys.readouterr().out
    for row in table["rows"]:
        sol = pdekit.load(row["checkpoint"])  # the table's numbers are the saved runs'
        assert sol.solver == row["solver"] and sol.step == row["steps"] >= 1
        assert sol.errors()["rel_l2"] == pytest.approx(row["rel_l2"], rel=1e-9)
        assert sol.problem.params() == {"k": 0.5}
        assert f"| {row['solver']} | {row['rel_l2']:.3e} |" in out
    best = min(table["rows"], key=lambda r: r["rel_l2"])
    assert f"best: {best['solver']} (rel. L2 {best['rel_l2']:.3e}" in out


def test_resume_training(tmp_path, capsys):
    ex = load_example("resume_training")
    first, resumed, straight = ex.main(tmp_path, steps=60, more=40, config=TINY_PINN, verbose=False)
    assert first.step == 60 and resumed.step == straight.step == 100
    # the files: the periodic checkpoint at the end of the first run, and the saved one
    assert (tmp_path / "checkpoints" / "checkpoint_00000060.h5").is_file()
    saved = load_checkpoint(tmp_path / "first.h5")
    assert saved.step == 60 and saved.problem_params == {"beta": 5.0}
    # the resumed history continues the first run's
    assert resumed.history["step"][: len(first.history["step"])] == first.history["step"]
    assert resumed.history["step"][-1] == 100
    assert resumed.history["loss"][:6] == first.history["loss"]
    # and the resumed run is the uninterrupted one, bit for bit (CPU, one thread)
    pts = resumed.problem.evaluation_grid().points()
    np.testing.assert_array_equal(resumed(pts)["u"], straight(pts)["u"])
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)
    assert "resumed run equals the uninterrupted one: True" in capsys.readouterr().out


def test_load_results_numpy(tmp_path):
    run = tmp_path / "run"
    argv = ["solve", "porous_medium/heat", "--steps", "30", "--out", str(run), "--quiet"]
    argv += [f"--config={k}={v}" for k, v in
             {"network.width": 16, "network.depth": 2, "sampling.n_interior": 128,
              "sampling.n_initial": 32, "train.log_every": 10}.items()]  # fmt: skip
    assert pdekit_main(argv) == 0
    ex = load_example("load_results_numpy")
    got = ex.main(run, n_points=7)
    errors = json.loads((run / "errors.json").read_text())
    assert got["rel_l2"] == pytest.approx(errors["rel_l2"], rel=1e-12)
    assert got["fields"]["u"].shape == (101, 256)  # (t, x): time first
    sol = got["solution"]
    assert sol.step == errors["run"]["steps"] == 30
    # the loaded Solution reproduces the file, and the file's reference is the exact solution
    grid = sol.problem.evaluation_grid()
    np.testing.assert_allclose(sol.on(grid, time_first=True)["u"], got["fields"]["u"], atol=1e-6)
    x, t = np.meshgrid(got["axes"]["x"], got["axes"]["t"])
    np.testing.assert_allclose(got["fields"]["u_reference"], np.exp(-t) * np.sin(x), atol=1e-12)
    # the values at the user's points are the solution's; the loss is the checkpoint's history
    np.testing.assert_array_equal(got["values"]["u"], sol(got["points"])["u"])
    assert got["points"].shape == (7, 2)
    np.testing.assert_allclose(got["loss"], sol.history["loss"], rtol=1e-6)


def test_torchrun_ddp(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(EXAMPLES / "torchrun_ddp.py"), str(out), "20"]  # fmt: skip
    res = subprocess.run(
        cmd, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 process(es), gloo: 20 steps" in res.stdout
    assert res.stdout.count("process(es)") == 1  # rank 0 alone reports
    sol = pdekit.load(out / "checkpoint.h5")
    assert sol.step == 20 and np.isfinite(sol.errors()["rel_l2"])
    # two ranks trained it, each on half the points, each from its own sampler
    state = sol.trainer_state
    assert state["world_size"] == 2 and len(state["task_ranks"]) == 2
    assert sol.config.sampling.n_interior == 1024
    assert json.dumps(state["task_ranks"][0], default=str) != json.dumps(
        state["task_ranks"][1], default=str
    )
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint_00000020.h5"]
    assert (out / "solution.pvd").is_file()


def test_operator_learning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path / "cache"))
    ex = load_example("operator_learning")
    try:
        train, sol = ex.main(n_train=8, steps=150, width=8, modes=8, verbose=False)
        fam = families.get(ex.FAMILY.name)
        # the dataset: the reference solver's trajectories of the train split, cached in HDF5
        assert train.trajectories.shape == (8, 11, 32, 32, 1)
        again = Dataset.load(train.path)
        np.testing.assert_array_equal(again.trajectories, train.trajectories)
        # member 0 against its problem's reference (an independent 128^2 solve, interpolated in
        # time): 2.9e-3 measured, mostly the 64^2 solver's dealiasing of the initial field
        member = train.members[0]
        assert member.seed == fam.members("train", 1)[0].seed
        nodes = TensorGrid({"x": train.axes["x"], "y": train.axes["y"], "t": train.times})
        ref = member.problem().reference()(nodes.points())["w"].reshape(nodes.shape)
        assert rel_l2(np.moveaxis(train.trajectories[0, ..., 0], 0, -1), ref) < 1e-2
        # the instance answered is held out: a test member, in no training or validation data
        seed = sol.problem.params()["seed"]
        assert seed == fam.members("test", 1)[0].seed
        assert seed not in set(fam.split_seeds("train")) | set(fam.split_seeds("valid"))
        # it trained (150 Adam steps on 8 trajectories: the held-out rel_l2 was 0.6-0.7
        # measured; the zero prediction scores 1)
        assert sol.step == 150 and sol.history["loss"][-1] < 0.5 * sol.history["loss"][0]
        errors = sol.errors()
        assert errors["rel_l2"] < 0.9
        out = capsys.readouterr().out
        assert f"held-out member {seed}: rel_l2 {errors['rel_l2']:.3e}" in out
        assert "test split (8 members)" in out
    finally:
        families.unregister(ex.FAMILY.name)


def test_flow_control(tmp_path, monkeypatch):
    """The control through a (barely) trained network, checked by the test's own projection
    runs: the target is the projection solver's probe value at lid speed 1.3, the report's
    projection value at the network's control is a fresh run's there, and the projection
    solver's own control reproduces the target; the network's values are its stored model's,
    rolled out by the plain (non-differentiable) rollout on a scene built with that lid."""
    from pdekit.problems import mac
    from pdekit.problems.references.projection import ProjectionSolver, stable_dt
    from pdekit.solvers import neural_stagger as ns

    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path / "cache"))  # the model store too
    ex = load_example("flow_control")
    report = ex.main(tmp_path / "out", steps=30, cells=13, width=8, depth=1, iterations=10,
                     verbose=False)  # fmt: skip
    assert json.loads((tmp_path / "out" / "control.json").read_text()) == report
    i, j, nu = report["probe"]["i"], report["probe"]["j"], 1.0 / report["re"]
    scene = mac.cavity_scene(13)
    assert scene.roles["u"][i, j] == mac.FLUID
    h = 1.0 / 13  # the u sample nearest (0.5, 0.7)
    assert abs(report["probe"]["x"] - 0.5) <= h / 2 and abs(report["probe"]["y"] - 0.7) <= h / 2

    def projection_probe(theta):
        lid = mac.cavity_scene(13, lid=theta)
        zero = np.zeros(lid.grid.n)
        run = ProjectionSolver(lid, nu, report["projection_dt"]).run(zero, zero, 1.0)
        return float(run.u[-1][i, j])

    # one projection step for every run: the stable step of the fastest lid allowed (1.5)
    assert report["projection_dt"] == stable_dt(mac.cavity_scene(13, lid=1.5), nu, speed=1.5)
    target = projection_probe(1.3)
    assert report["target"] == pytest.approx(target, rel=1e-12)
    theta_net = report["theta_network"]
    assert report["probe_projection"] == pytest.approx(projection_probe(theta_net), rel=1e-12)
    # the projection solver's own control: 1.3 to Brent's tolerance (1e-10), target reproduced
    assert report["theta_projection"] == pytest.approx(1.3, rel=1e-8)
    assert projection_probe(report["theta_projection"]) == pytest.approx(target, rel=1e-8)
    # the network's side: Adam from 1.0 within the training lid speeds, and the probe there
    assert report["train_steps"] == 30 and Path(report["model"]).is_relative_to(tmp_path)
    hist = report["history"]["theta"]
    assert len(hist) == 10 and hist[0] == 1.0 and 0.5 <= theta_net <= 1.5
    model = pdekit.load(report["model"]).model
    for theta, key in ((theta_net, "probe_network"), (1.3, "probe_network_at_theta_target")):
        r = ns.rollout(model, mac.cavity_scene(13, lid=theta), 0.05, 1.0)
        assert len(r.times) == 21
        assert float(r.u[-1, i, j]) == pytest.approx(report[key], rel=1e-4, abs=1e-6)  # float32
    # the reported differences are those of the reported numbers
    diff = abs(theta_net - report["theta_projection"]) / report["theta_projection"]
    assert report["theta_rel_diff"] == pytest.approx(diff, rel=1e-12)
    miss = abs(report["probe_projection"] - target) / abs(target)
    assert report["target_miss_rel"] == pytest.approx(miss, rel=1e-9)
    # the stored model, taken instead of trained: the same control (CPU, one thread)
    again = ex.main(tmp_path / "again", cells=13, iterations=10, pretrained=report["model"],
                    verbose=False)  # fmt: skip
    assert again["theta_network"] == theta_net and again["train_s"] is None
    assert again["network"] == report["network"] and again["train_steps"] == 30
    with pytest.raises(pdekit.errors.ParameterError, match="this run needs .* 29 cells"):
        ex.main(tmp_path / "other", cells=29, pretrained=report["model"], verbose=False)
