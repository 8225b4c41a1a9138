"""The ``fno`` solver on a tiny Kolmogorov family (8 training trajectories on 32^2 to t = 1,
a 2-layer FNO of width 8, 40 steps): train -> store -> find -> load reproduces predictions
exactly; the operator Solution of one instance equals the model at the grid nodes and snapshot
times and is scored against the problem's reference (stub networks as oracles); family errors
over a split; the CLI; and the bad inputs, each one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import pdekit
from pdekit import store
from pdekit.cli import main
from pdekit.errors import CheckpointError, ParameterError, UnknownNameError
from pdekit.metrics import rel_l2
from pdekit.problems.datasets import Dataset
from pdekit.problems.family import Family, families
from pdekit.solvers.fno import evaluate
from pdekit.solvers.operator_solution import OperatorSolution, predict, simulate_instance

PROBLEM = "navier_stokes/kolmogorov"
TINY = "test_fno_tiny_kolmogorov"
#: 9 snapshots on [0, 1]; trajectories simulated on 64^2 (exact point values at the 32^2 nodes)
TINY_FAMILY = Family(
    name=TINY,
    problem=PROBLEM,
    fixed={"nu": 1e-3, "t_end": 1.0},
    seed_param="seed",
    sizes={"train": 8, "valid": 2, "test": 3},
    grid=32,
    times=tuple(np.linspace(0.0, 1.0, 9)),
    min_solver_cells=64,
    description="a tiny family for tests",
)
CONFIG = {
    "dataset": {
        "family": TINY,
        "n_train": 8,
        "n_valid": 2,
        "in_steps": 2,
        "start": 0,
        "grid": 32,
        "batch_size": 4,
        "eval_every": 10,
    },
    "network": {"modes": 8, "width": 8, "layers": 2},
    "train": {"steps": 40, "log_every": 10},
}
SEED = 123  # the instance solved (not a member of the tiny family's splits)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache (datasets, references, the user model store) and the tiny family."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PDEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    families.register(TINY_FAMILY)
    yield
    families.unregister(TINY)
    mp.undo()


@pytest.fixture(scope="module")
def trained(cache):
    return pdekit.solve(
        PROBLEM, solver="fno", nu=1e-3, t_end=1.0, params={"seed": SEED}, config=CONFIG,
        verbose=False,
    )  # fmt: skip


def _points(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, (n, 3))


class Fixed(nn.Module):
    """A stub network: the same output ``y`` (out_steps, *space, fields) for every input."""

    def __init__(self, y):
        super().__init__()
        self.y = nn.Parameter(torch.as_tensor(np.asarray(y), dtype=torch.float64))

    def forward(self, x):
        return self.y[None].expand(x.shape[0], *self.y.shape)


class Lookup(nn.Module):
    """A stub network that knows a dataset: each input's own targets (nearest stored input)."""

    def __init__(self, inputs, targets):
        super().__init__()
        self.x = nn.Parameter(torch.as_tensor(inputs, dtype=torch.float64))
        self.y = torch.as_tensor(targets, dtype=torch.float64)

    def forward(self, x):
        dist = ((x[:, None] - self.x[None]) ** 2).flatten(2).sum(-1)
        return self.y[dist.argmin(1)]


def _instance():
    return pdekit.problems.get(PROBLEM, nu=1e-3, t_end=1.0, seed=SEED)


def _solution(model) -> OperatorSolution:
    fam = families.get(TINY)
    return OperatorSolution(
        _instance(), "fno", None, model, fam, fam.make_grid(32), fam.output_times(), 2, 0
    )


# -- train, store, find, load -----------------------------------------------------------------
def test_trained_model_is_stored_found_and_reloaded_exactly(trained, tmp_path, capsys):
    assert trained.step == 40
    losses = trained.history["loss"]
    assert losses[-1] < losses[0]  # it trains (40 Adam steps; no accuracy claim at this budget)
    found = store.find("fno", TINY, grid=32)
    assert found is not None and found.place == "user"
    assert str(found.path) == trained.extras["store_path"]
    assert found.command.startswith("pdekit.solve('navier_stokes/kolmogorov', solver='fno'")
    pts = _points()
    want = trained(pts)
    # a second solve uses the stored model, says so in one line, and predicts the same
    again = pdekit.solve(
        PROBLEM, solver="fno", nu=1e-3, t_end=1.0, params={"seed": SEED}, config=CONFIG
    )
    err = capsys.readouterr().err
    assert f"using the user model fno {TINY} 32 [user] {found.path}" in err
    assert again.step == trained.step
    # the stored file, and a Solution saved by the user, load with nothing else
    for path in (found.path, trained.save(tmp_path / "sol.h5")):
        loaded = pdekit.load(path)
        got = loaded(pts) if path != found.path else again(pts)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    # the instance's Solution reloads as that instance
    loaded = pdekit.load(tmp_path / "sol.h5")
    assert loaded.problem.params() == trained.problem.params()
    assert loaded.problem.params()["seed"] == SEED


def test_retrain_forces_training(trained):
    config = {**CONFIG, "retrain": True, "train": {"steps": 2}}
    sol = pdekit.solve(
        PROBLEM, solver="fno", t_end=1.0, params={"seed": SEED}, config=config, verbose=False
    )
    assert sol.step == 2
    # the user store keeps the newest model of a family, grid and layout (same file name)
    stored = store.load(store.find("fno", TINY, grid=32))
    assert stored.step == 2 and str(store.find("fno", TINY).path) == sol.extras["store_path"]


# -- the operator Solution of one instance ----------------------------------------------------
def test_solution_is_the_model_at_nodes_and_snapshots(trained):
    sol = trained
    fam, grid = sol.family, sol.grid
    traj = sol.trajectory
    # the input snapshots are the instance's simulation: the same as the dataset of a split
    # holding just this seed (batched simulate; float32 storage)
    ds = Dataset.generate(fam.with_seeds("test", [SEED]), "test", 1, grid=32)
    np.testing.assert_allclose(traj[: sol.known], ds.trajectories[0, : sol.known], atol=1e-6)
    # the predicted snapshots are the model's output on the last in_steps snapshots
    pred = predict(sol.model, traj[None, sol.start : sol.known])[0]
    np.testing.assert_array_equal(traj[sol.known :], pred)
    # sol(points) at every node and snapshot time equals the completed fields there
    nodes = grid.axes("node")
    tg = pdekit.geometries.grid.TensorGrid({"x": nodes["x"], "y": nodes["y"], "t": sol.times})
    on_grid = sol.fields_on_grid()
    values = sol(tg.points())
    for k in ("u", "v", "w"):
        want = np.moveaxis(on_grid[k], 0, -1)  # (t, x, y) -> (x, y, t)
        got = values[k].reshape(tg.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(on_grid["w"], traj[..., 0], atol=1e-12)
    # between nodes: periodic in space
    p = _points(16)
    shifted = p.copy()
    shifted[:, :2] += 1.0
    np.testing.assert_allclose(sol(shifted)["w"], sol(p)["w"], atol=1e-12)


def test_errors_are_measured_against_the_reference(cache):
    fam = families.get(TINY)
    inst = _instance()
    sol = _solution(Fixed(np.zeros((7, 32, 32, 1))))
    g = sol.prediction_grid()
    ref = inst.reference()(g.points())
    w_ref = np.moveaxis(ref["w"].reshape(g.shape), -1, 0)[..., None]  # (t, x, y, 1)
    # a network predicting the reference itself: w is exact; u, v follow from w spectrally on
    # 32^2 (measured 7.8e-5 and 9.3e-5 against the 128^2 reference)
    exact = _solution(Fixed(w_ref)).errors()
    assert exact["rel_l2/w"] == 0.0
    assert exact["rel_l2/u"] < 5e-4 and exact["rel_l2/v"] < 5e-4
    # a prediction off by 1% everywhere scores exactly 1% in w
    off = _solution(Fixed(1.01 * w_ref)).errors()
    assert off["rel_l2/w"] == pytest.approx(0.01, rel=1e-9)
    # the zero prediction scores 1
    assert sol.errors()["rel_l2/w"] == pytest.approx(1.0, rel=1e-12)
    # the simulated trajectory itself (64^2 solver) scores ~0: measured rel_l2 5.9e-4 in w, the
    # reference's cubic interpolation between its snapshots every 0.25
    simulated = simulate_instance(fam, inst, fam.make_grid(32), fam.output_times())
    near = _solution(Fixed(simulated[2:])).errors()
    assert near["rel_l2/w"] < 2e-3 and near["rel_l2"] < 2e-3


def test_output_and_persistence_work_as_for_every_solution(trained, tmp_path):
    pvd = trained.to_vtk(tmp_path / "vtk" / "sol.pvd")
    assert pvd.exists() and len(list(pvd.parent.glob("sol/*.vts"))) == 11
    assert trained.plot(tmp_path / "sol.png").stat().st_size > 0
    errors = trained.errors()
    assert set(errors) >= {"rel_l2", "rel_l2/u", "rel_l2/v", "rel_l2/w"}
    again = pdekit.load(trained.save(tmp_path / "sol.h5")).errors()
    assert again == errors


# -- family errors ----------------------------------------------------------------------------
def test_family_errors_are_mean_and_std_over_the_split(trained):
    ds = Dataset.generate(families.get(TINY), "test", grid=32)
    data = ds.trajectories.astype(np.float64)
    res = trained.family_errors("test")
    assert res["members"]["count"] == 3
    pred = predict(trained.model, data[:, :2])
    per = [rel_l2(p, r) for p, r in zip(pred, data[:, 2:], strict=True)]
    assert res["rel_l2"]["mean"] == pytest.approx(np.mean(per), rel=1e-12)
    assert res["rel_l2"]["std"] == pytest.approx(np.std(per), rel=1e-9)
    assert {"nrmse", "crmse", "brmse", "max", "frmse_low"} <= set(res)
    # a network that knows every test trajectory scores 0 on all of them
    oracle = _solution(Lookup(data[:, :2], data[:, 2:]))
    exact = oracle.family_errors("test")
    assert exact["rel_l2"] == {"mean": 0.0, "std": 0.0}
    assert exact["nrmse"]["mean"] == 0.0


# -- CLI ----------------------------------------------------------------------------------------
def _cli_config() -> list[str]:
    flat = []
    for section, values in CONFIG.items():
        flat += [f"--config={section}.{k}={v}" for k, v in values.items() if k != "family"]
    return flat


def test_cli_train_then_evaluate(trained, capsys):
    assert main(["train", TINY, "--solver", "fno", "--quiet", *_cli_config()]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("wrote model: ")
    path = line.removeprefix("wrote model: ")
    assert store.describe(path).command.startswith(f"pdekit train {TINY} --solver fno")
    assert main(["evaluate", path, "--split", "test"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"family: {TINY}    split: test (3 members)"
    rel = [x for x in out if x.startswith("rel_l2: ")]
    assert rel and "+-" in rel[0]
    want = evaluate(path, "test")["rel_l2"]["mean"]
    assert rel[0] == f"rel_l2: {want:.4e} +- {evaluate(path, 'test')['rel_l2']['std']:.2e}"


# -- bad input: one line, exit 2 on the CLI, a clear exception in the API ----------------------
def _one_line_error(argv, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pdekit: error: "), err
    for needle in needles:
        assert needle in err, err


def test_unknown_family(cache, capsys):
    _one_line_error(["train", "no_such_family"], capsys, "no_such_family", "kolmogorov_nu1e-3")
    with pytest.raises(UnknownNameError, match="kolmogorov_nu1e-3"):
        pdekit.solve(PROBLEM, solver="fno", config={"dataset": {"family": "no_such_family"}})
    with pytest.raises(ParameterError, match="family of porous_medium/heat"):
        pdekit.solve(PROBLEM, solver="fno", config={"dataset": {"family": "probconserv_heat"}})
    reason = pdekit.solvers.get("fno").supports(pdekit.problems.get("convection_diffusion/burgers"))
    assert "family" in reason and "navier_stokes/kolmogorov" in reason


def test_model_of_another_family(trained, capsys):
    other = Family(**{**TINY_FAMILY.__dict__, "name": TINY + "_other"})
    families.register(other)
    try:
        config = {**CONFIG, "pretrained": trained.extras["store_path"]}
        config["dataset"] = {**CONFIG["dataset"], "family": other.name}
        with pytest.raises(CheckpointError, match=f"trained on family {TINY}, not {other.name}"):
            pdekit.solve(PROBLEM, solver="fno", t_end=1.0, config=config, verbose=False)
        argv = ["solve", PROBLEM, "--solver", "fno", "--set", "t_end=1.0", "--quiet"]
        argv += [
            f"--config=pretrained={config['pretrained']}",
            f"--config=dataset.family={other.name}",
        ]
        _one_line_error(argv, capsys, f"trained on family {TINY}, not {other.name}")
    finally:
        families.unregister(other.name)
    # an instance the family does not hold (another viscosity) is refused by name
    with pytest.raises(ParameterError, match="not an instance of family"):
        pdekit.solve(PROBLEM, solver="fno", nu=1e-4, t_end=1.0, config=CONFIG, verbose=False)


@pytest.mark.parametrize("grid", ["33", "6"])
def test_resolution_the_model_cannot_take(trained, capsys, grid):
    path = trained.extras["store_path"]
    _one_line_error(["evaluate", path, "--grid", grid], capsys, "cannot take", "even")
    with pytest.raises(ParameterError, match="cannot take"):
        evaluate(path, grid=int(grid))


def test_damaged_model_file(trained, tmp_path, capsys):
    raw = bytearray(open(trained.extras["store_path"], "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(raw))
    _one_line_error(["evaluate", str(bad)], capsys, "corrupt", str(bad))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        evaluate(bad)
    config = {**CONFIG, "pretrained": str(bad)}
    with pytest.raises(CheckpointError, match="corrupt"):
        pdekit.solve(PROBLEM, solver="fno", t_end=1.0, config=config, verbose=False)


# -- the training loss --------------------------------------------------------------------------
def test_training_loss_is_chosen_by_config_and_rel_l2_is_the_relative_error():
    from pdekit.solvers import registry
    from pdekit.solvers.dataset_task import mean_rel_l2, mse
    from pdekit.solvers.fno import FNOConfig

    solver = registry.get("fno")
    assert solver.loss_fn(FNOConfig()) is mse
    assert solver.loss_fn(FNOConfig(loss="rel_l2")) is mean_rel_l2
    # the relative L2 loss against numpy: each sample's ||pred - y|| / ||y|| over all its
    # entries, averaged over the batch
    g = np.random.default_rng(3)
    pred, y = g.normal(size=(5, 4, 6, 6, 1)), g.normal(size=(5, 4, 6, 6, 1))
    want = np.mean([np.linalg.norm(pred[i] - y[i]) / np.linalg.norm(y[i]) for i in range(len(y))])
    got = mean_rel_l2(torch.as_tensor(pred), torch.as_tensor(y)).item()
    assert got == pytest.approx(want, rel=1e-13)
    with pytest.raises(ParameterError, match=r"FNOConfig.loss must be one of \['mse', 'rel_l2'\]"):
        FNOConfig(loss="l1")


# -- answering: neuraloperator's FNO evaluated lean -------------------------------------------
def _random_fno(dtype=torch.float32, **net):
    from pdekit.solvers.fno import FNONetworkConfig, NeuralopFNO

    torch.manual_seed(0)
    model = NeuralopFNO(3, 5, 2, 2, FNONetworkConfig(**net)).eval()
    cplx = torch.complex128 if dtype == torch.float64 else torch.complex64
    model._apply(lambda t: t.to(cplx) if t.is_complex() else t.to(dtype))
    with torch.no_grad():  # every weight and bias away from its initial value (zero biases)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture
def lean_calls(monkeypatch):
    """The calls of the lean evaluation (so a test knows the lean path ran, not the fallback)."""
    import pdekit.solvers.fno as fno_module

    calls = []
    lean = fno_module.lean_fno_forward
    monkeypatch.setattr(fno_module, "lean_fno_forward", lambda *a: calls.append(1) or lean(*a))
    return calls


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-6), (torch.float64, 1e-7)])
@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 32, 48), (2, 12, 12), (1, 16, 40)])
def test_lean_answer_equals_neuraloperators_forward(dtype, tol, shape, lean_calls):
    # 12 x 12 with 12 modes keeps the Nyquist column of the real FFT (weight 1 in the c2r sum).
    # float64 agrees to float32 round-off only: neuraloperator's SpectralConv writes its modes
    # into a complex64 buffer whatever the model's dtype (measured: 5e-9 here)
    model = _random_fno(dtype, modes=12, width=8, layers=3)
    x = torch.randn(shape[0], 3, *shape[1:], 2, dtype=dtype)
    with torch.no_grad():
        want, got = model(x), model.answer(x)
    assert lean_calls == [1]
    assert got.shape == want.shape
    assert float((got - want).abs().max() / want.abs().max()) < tol


@pytest.mark.parametrize("modes", [7, 5])
def test_lean_answer_equals_forward_with_odd_mode_counts(modes, lean_calls):
    # an odd count centres the kept x modes differently (k = -(m // 2) .. m - m // 2 - 1)
    model = _random_fno(modes=modes, width=8, layers=2)
    x = torch.randn(2, 3, 16, 20, 2)
    with torch.no_grad():
        want, got = model(x), model.answer(x)
    assert lean_calls == [1]
    assert float((got - want).abs().max() / want.abs().max()) < 2e-6


def test_lean_answer_falls_back_where_it_does_not_apply(lean_calls):
    from pdekit.solvers.fno import lean_supported

    model = _random_fno(modes=8, width=8, layers=2)
    x = torch.randn(2, 3, 16, 16, 2)
    assert lean_supported(model.net)
    # with a gradient asked for, answer is forward itself (bit-identical, differentiable)
    assert torch.equal(model.answer(x), model(x))
    # a layout the lean evaluation does not cover (a norm inside the blocks): forward
    model.net.fno_blocks.norm = torch.nn.ModuleList(
        [torch.nn.GroupNorm(1, 8) for _ in range(2 * 2)]
    )
    assert not lean_supported(model.net)
    with torch.no_grad():
        assert torch.equal(model.answer(x), model(x))
    # a batch of many members: lean too, equal
    model = _random_fno(modes=8, width=8, layers=2)
    xb = torch.randn(17, 3, 16, 16, 2)
    with torch.no_grad():
        want = model(xb)
        assert (model.answer(xb) - want).abs().max() < 2e-6 * want.abs().max()
    assert lean_calls == [1]
    # input and weights of different precisions: forward, which refuses them (the lean products
    # would compute in a precision nobody asked for)
    with torch.no_grad(), pytest.raises(RuntimeError):
        model.answer(xb[:2].double())
    assert lean_calls == [1]
    # grids the lean evaluation does not cover (odd, or fewer cells than modes): forward
    for cells in ((15, 16), (16, 9), (6, 16), (16, 6)):
        xs = torch.randn(1, 3, *cells, 2)
        with torch.no_grad():
            assert torch.equal(model.answer(xs), model(xs)), cells
    # new weights (an optimiser step, load_state_dict) are seen; in-place edits through .data
    # only after clear_answer_cache
    from pdekit.solvers.fno import clear_answer_cache

    with torch.no_grad():
        model.answer(x)
        state = {k: v + 0.1 for k, v in model.state_dict().items()}
        model.load_state_dict(state)
        assert (model.answer(x) - model(x)).abs().max() < 1e-5 * model(x).abs().max()
        model.net.fno_blocks.convs[0].weight.tensor.data.mul_(3.0)
        clear_answer_cache()
        assert (model.answer(x) - model(x)).abs().max() < 1e-5 * model(x).abs().max()
    # predict answers by answer, to float round-off of forward
    model = _random_fno(modes=8, width=8, layers=2)
    with torch.no_grad():
        want = model(x).double().numpy()
    assert np.abs(predict(model, x.numpy()) - want).max() < 1e-5 * np.abs(want).max()
