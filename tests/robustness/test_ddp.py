"""torchrun with two gloo processes on CPU: the result of one process with the same global batch,
exact resume, and rank 0 alone writing files.

Launch A is ``torchrun --nproc_per_node=2 -m pdekit solve ...`` (the command), 40 steps with a
checkpoint every 20. Launch B is the Python API under a process group the caller initialised:
``pdekit.solve(..., resume=<A's step-20 checkpoint>)`` to step 40.

Oracle of A: one process, no torch.distributed, minimising the mean of the two ranks' losses --
each rank's loss on the batches of its own sampler, seeded ``SeedSequence(0, spawn_key=(rank,))``
as documented in :mod:`pdekit.solvers.distributed`. With equal per-rank batch sizes that mean is
the PINN loss on the global batch (the union of the rank batches), and its gradient is what DDP's
all-reduce average gives. The one-process run goes through the same Trainer (Adam, schedule),
so A must match it to rounding: see ``RTOL``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from robustness_support import TINY, assert_same_state, subprocess_env

from pdekit import problems, solvers
from pdekit.api import make_config
from pdekit.checkpoints import load_checkpoint
from pdekit.solvers.distributed import Distributed, rank_torch_seed
from pdekit.solvers.training import Trainer, TrainingTask

WORKER = Path(__file__).with_name("ddp_worker.py")
PROBLEM = "porous_medium/heat"
STEPS, EVERY, WORLD = 40, 20, 2
#: float64 so that rounding, not precision, is the only difference from the one-process oracle
CONFIG = {
    "network.width": 8,
    "network.depth": 2,
    "sampling.n_interior": 32,
    "sampling.n_boundary": 8,
    "sampling.n_initial": 8,
    "train.log_every": 10,
    "train.dtype": "float64",
    "train.checkpoint_every": EVERY,
    "train.decay_every": 15,
}
#: DDP averages gradients as (g0 + g1) / 2 after an all-reduce; the oracle gets 0.5 g0 + 0.5 g1
#: from one backward pass through both ranks' graphs, accumulating each weight's contributions
#: in another order. In float64 that is a relative difference ~1e-16 per step, which 40 Adam
#: steps (update ~ m / sqrt(v): relative gradient errors pass through at order one) amplify by
#: far less than 1e4: a relative weight difference of 1e-10 is a real failure.
RTOL = 1e-10
#: the run on rank 0's batches alone must differ by far more (a test that can fail): the two
#: ranks' batches are different draws, so the averaged gradient is not rank 0's
DISTINCT = 1e3 * RTOL


def _torchrun(
    logdir: Path, *args: str, cwd: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    logdir.mkdir()
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD}", str(WORKER), str(logdir), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, env={**subprocess_env(), **(env or {})}, cwd=cwd, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


def _writes(logdir: Path) -> dict[int, list[list[str]]]:
    logs = [json.loads(p.read_text()) for p in sorted(logdir.glob("rank*.json"))]
    return {log["rank"]: log["writes"] for log in logs}


def _under(writes: list[list[str]], root: Path) -> list[list[str]]:
    root_s = str(root.resolve())
    return [w for w in writes if w[1] == root_s or w[1].startswith(root_s + "/")]


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    out_a, out_b = root / "a", root / "b"
    t0 = time.perf_counter()
    cli = ["solve", PROBLEM, *TINY, "--device", "cpu", "--steps", str(STEPS)]
    cli += [a for k, v in CONFIG.items() for a in ("--config", f"{k}={v}")]
    a = _torchrun(root / "log_a", "cli", *cli, "--out", str(out_a), "--quiet", cwd=root)
    assert a.returncode == 0, a.stdout + a.stderr
    api_args = {
        "name": PROBLEM,
        "solver": "pinn",
        "device": "cpu",
        "resume": str(out_a / "checkpoints" / f"checkpoint_{EVERY:08d}.h5"),
        "checkpoint_dir": str(out_b),
        "verbose": False,
    }
    b = _torchrun(root / "log_b", "api", json.dumps(api_args), cwd=root)
    assert b.returncode == 0, b.stdout + b.stderr
    print(f"two torchrun launches: {time.perf_counter() - t0:.1f} s")
    return root, out_a, out_b


class _ThreadRank:
    """A rank of a process group played by a thread: ``sum`` meets the other ranks' threads
    at a barrier and adds their values in rank order (for two ranks one addition, as gloo's)."""

    def __init__(self, rank: int, slots: list, barrier: threading.Barrier):
        self.rank, self.slots, self.barrier = rank, slots, barrier
        self.world_size = len(slots)
        self.enabled = True
        self.is_writer = rank == 0

    def sum(self, values) -> list[float]:
        self.slots[self.rank] = [float(v) for v in values]
        self.barrier.wait()
        out = [sum(column) for column in zip(*self.slots, strict=True)]
        self.barrier.wait()  # everyone has read the slots before they are reused
        return out

    def mean(self, values) -> list[float]:
        return [v / self.world_size for v in self.sum(values)]


def _one_process(
    ranks: tuple[int, ...],
    solver_name: str = "pinn",
    problem_name: str = PROBLEM,
    config: dict | None = None,
    exchange: bool = False,
    torch_streams: str = "ranks",
):
    """The oracle: one process minimising the mean of the given ranks' losses, one task per
    rank, each stepped (``after_step``) as its rank would be. With ``exchange`` the tasks'
    losses are evaluated side by side in threads whose ``dist`` exchanges numbers as the
    processes do (the causal PINN's chunk losses); otherwise one after the other, each task
    drawing (the ANP's latent noise) from its own rank's torch generator, seeded
    ``rank_torch_seed(0, rank)`` once the network is built, as the processes do. With
    ``torch_streams="alike"`` every task draws from one and the same generator state instead
    (the defect of ranks seeded alike). Returns the trained weights, the loss history and the
    tasks."""
    problem = problems.get(problem_name)
    solver = solvers.get(solver_name)
    config = dict(CONFIG, **{"train.steps": STEPS}) if config is None else config
    cfg = make_config(solver_name, None, config)
    torch.manual_seed(0)  # as every rank does before building the network
    model = solver.build_model(problem, cfg).to(dtype=torch.float64)
    streams = {}  # each task's torch generator state between its draws
    for i, r in enumerate(ranks):
        torch.manual_seed(rank_torch_seed(0, ranks[0] if torch_streams == "alike" else r))
        streams[i] = torch.get_rng_state()
    tasks = []
    slots, barrier = [None] * len(ranks), threading.Barrier(len(ranks), timeout=60)
    for i, r in enumerate(ranks):
        rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(r,)))
        task = solver.build_task(problem, cfg, model, rng, torch.device("cpu"))
        if exchange and len(ranks) > 1:
            task.dist = _ThreadRank(i, slots, barrier)
        tasks.append(task)

    class MeanTask(TrainingTask):
        """The ranks' tasks side by side; loss and terms are their means."""

        def __init__(self):
            self.model = model

        def next_batch(self, step):
            for t in tasks:
                t.next_batch(step)

        def loss(self):
            if exchange:
                with ThreadPoolExecutor(len(tasks)) as pool:
                    out = list(pool.map(lambda t: t.loss(), tasks))
            else:
                out = []
                for i, t in enumerate(tasks):
                    torch.set_rng_state(streams[i])
                    out.append(t.loss())
                    streams[i] = torch.get_rng_state()
                if torch_streams == "alike":
                    streams.update({i: streams[0] for i in streams})
            total = sum(o[0] for o in out) / len(out)
            terms = {k: sum(o[1][k] for o in out) / len(out) for k in out[0][1]}
            return total, terms

        def after_step(self, step, terms):
            stops = {bool(t.after_step(step, terms)) for t in tasks}
            assert len(stops) == 1  # the ranks' tasks decide alike
            return stops.pop()

        def new_problem(self):
            return tasks[0].new_problem()

    trainer = Trainer(MeanTask(), cfg.train, verbose=False, dist=Distributed())
    trainer.run()
    return model.state_dict(), trainer.history, tasks


def _max_rel(a: dict, b: dict) -> float:
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    scale = max(float(a[k].abs().max()) for k in a)
    return diff / scale


def test_two_processes_match_one_process_with_the_same_global_batch(launches):
    _, out_a, _ = launches
    ddp = load_checkpoint(out_a / "checkpoint.h5")
    assert ddp.step == STEPS and ddp.trainer["world_size"] == WORLD
    weights, history, _ = _one_process(tuple(range(WORLD)))
    err = _max_rel(weights, ddp.model)
    print(f"max relative weight difference DDP vs one process: {err:.2e} (rtol {RTOL:g})")
    assert err <= RTOL
    ddp_loss = ddp.extras["history"]["loss"]
    np.testing.assert_allclose(ddp_loss, history["loss"], rtol=RTOL)
    # the ranks drew different batches: rank 0's alone give a clearly different result
    alone, _, _ = _one_process((0,))
    assert _max_rel(alone, ddp.model) > DISTINCT
    # and each rank's sampler state is stored (resume restores each rank's own stream)
    rngs = [s["rng"] for s in ddp.trainer["task_ranks"]]
    assert len(rngs) == WORLD and rngs[0] != rngs[1]


def test_resume_under_torchrun_is_bit_identical(launches):
    _, out_a, out_b = launches
    uninterrupted = load_checkpoint(out_a / "checkpoints" / f"checkpoint_{STEPS:08d}.h5")
    resumed = load_checkpoint(out_b / f"checkpoint_{STEPS:08d}.h5")
    assert resumed.step == uninterrupted.step == STEPS
    assert_same_state(resumed.model, uninterrupted.model)
    for key in ("optimizer", "scheduler", "task_ranks", "history", "step"):
        assert_same_state(resumed.trainer[key], uninterrupted.trainer[key], key)


def test_only_rank_zero_writes_files(launches):
    root, out_a, out_b = launches
    writes = {
        name: _writes(root / f"log_{name}") for name in ("a", "b")
    }  # {launch: {rank: [[event, path], ...]}}
    for name, ranks in writes.items():
        assert sorted(ranks) == list(range(WORLD)), f"launch {name}: missing rank logs"
        others = {r: _under(w, root) for r, w in ranks.items() if r != 0}
        assert others == {r: [] for r in others}, f"launch {name}: ranks > 0 wrote {others}"
    # rank 0 did write the run's files (the audit sees writes at all)
    renamed = {Path(p).name for e, p in _under(writes["a"][0], out_a) if e == "os.rename"}
    assert {"checkpoint_00000020.h5", "checkpoint_00000040.h5", "checkpoint.h5"} <= renamed
    assert {p.name for p in out_b.iterdir()} == {"checkpoint_00000040.h5"}
    # no temporaries left behind
    assert not [p for p in root.rglob(".*tmp-*")]


#: the Lagrangian PINN calls its two branches directly, so the Trainer averages their gradients
#: itself (no DDP wrapper); Burgers exercises the state residual's second derivatives and the
#: boundary loss, and the run ends with L-BFGS, whose line search must agree on every rank
LAGRANGIAN = "convection_diffusion/burgers"
LAGRANGIAN_CONFIG = {
    "characteristic.width": 8,
    "state.width": 8,
    "state.depth": 2,
    "sampling.n_interior": 32,
    "sampling.n_boundary": 8,
    "sampling.n_initial": 8,
    "train.log_every": 5,
    "train.dtype": "float64",
    "train.steps": 20,
    "train.decay_every": 15,
    "train.lbfgs_steps": 5,
}


def _launch(tmp_path: Path, solver: str, problem: str, config: dict, resume: Path | None = None):
    """torchrun with the Python API under the caller's process group: ``solver`` on
    ``problem`` with the dotted ``config`` (resuming from ``resume``); returns its newest
    checkpoint."""
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / "out"
    api_args = {
        "name": problem,
        "solver": solver,
        "device": "cpu",
        "overrides": config,
        "checkpoint_dir": str(out),
        "verbose": False,
    }
    if resume is not None:
        api_args["resume"] = str(resume)
    run = _torchrun(tmp_path / "log", "api", json.dumps(api_args), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    ckpt = load_checkpoint(sorted(out.glob("checkpoint_*.h5"))[-1])
    assert ckpt.trainer["world_size"] == WORLD
    return ckpt


def _assert_matches_one_process(ddp, label: str, rtol: float = RTOL, **oracle) -> list:
    """The two-process checkpoint ``ddp`` against the one-process oracle on both ranks' batches
    (weights and loss history to ``rtol``), and clearly apart from rank 0's batches alone.
    Returns the oracle's tasks."""
    weights, history, tasks = _one_process(tuple(range(WORLD)), **oracle)
    err = _max_rel(weights, ddp.model)
    print(f"{label}: max relative weight difference DDP vs one process: {err:.2e} (rtol {rtol:g})")
    assert err <= rtol
    np.testing.assert_allclose(ddp.extras["history"]["loss"], history["loss"], rtol=rtol)
    alone, _, _ = _one_process((0,), **oracle)
    assert _max_rel(alone, ddp.model) > 1e3 * rtol
    return tasks


def test_lagrangian_pinn_two_processes_match_one_process(tmp_path):
    """Launched as the pdekit command (the pinn test above covers the API launch too)."""
    out = tmp_path / "out"
    cli = ["solve", LAGRANGIAN, "--solver", "lagrangian_pinn", "--device", "cpu", "--quiet"]
    cli += [a for k, v in LAGRANGIAN_CONFIG.items() for a in ("--config", f"{k}={v}")]
    run = _torchrun(tmp_path / "log", "cli", *cli, "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    ddp = load_checkpoint(out / "checkpoint.h5")
    assert ddp.step == 25 and ddp.trainer["world_size"] == WORLD
    _assert_matches_one_process(
        ddp,
        "lagrangian_pinn",
        solver_name="lagrangian_pinn",
        problem_name=LAGRANGIAN,
        config=LAGRANGIAN_CONFIG,
    )


def test_average_gradients_counts_a_missing_gradient_as_zero(monkeypatch):
    """The bookkeeping of the Trainer's own all-reduce, with the other rank's contribution
    simulated: gradients are averaged, a gradient only the other rank has arrives halved (DDP's
    treatment of an unused parameter), one no rank has stays None."""
    a, b, c = (torch.nn.Parameter(torch.zeros(n, dtype=torch.float64)) for n in (3, 2, 4))
    a.grad = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    other = {"a": [3.0, 2.0, 1.0], "b": [4.0, -4.0]}  # rank 1's gradients; c unused everywhere
    contribution = torch.tensor([*other["a"], *other["b"], 0, 0, 0, 0, 1, 1, 0], dtype=a.dtype)
    calls = []

    def all_reduce(t, op):
        calls.append(t.numel())
        t.add_(contribution)

    monkeypatch.setattr("pdekit.solvers.distributed.tdist.all_reduce", all_reduce)
    Distributed(0, 2, 0, "gloo").average_gradients([a, b, c])
    assert calls == [3 + 2 + 4 + 3]  # one all-reduce: the gradients and the mask
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, -2.0])
    assert c.grad is None


#: ProbConserv trains its ANP through the DDP wrapper on family batches drawn per rank; the
#: latent noise comes from torch's generator, seeded per rank once the network is built
PROBCONSERV_CONFIG = {
    "retrain": True,
    "z_samples": 4,
    "anp.hidden": 16,
    "anp.heads": 2,
    "anp.latent": 8,
    "anp.decoder_width": 16,
    "anp.decoder_layers": 2,
    "anp.self_attention_blocks": 1,
    "anp.cross_attention_blocks": 1,
    "family.param": "k",
    "family.low": 1.0,
    "family.high": 5.0,
    "family.batch": 2,
    "train.steps": 10,
    "train.dtype": "float64",
    "train.log_every": 5,
}


def test_probconserv_two_processes_match_one_process(tmp_path):
    """Each rank draws its own latent noise: the run matches the oracle whose tasks draw from
    their ranks' generators, clearly differs from one whose ranks draw alike (the defect this
    replaced), and a resume from the middle restores every rank's generator (bit for bit)."""
    config = dict(PROBCONSERV_CONFIG, **{"train.checkpoint_every": 5})
    ddp = _launch(tmp_path / "a", "probconserv", PROBLEM, config)
    assert ddp.step == 10
    oracle = dict(solver_name="probconserv", config=config)
    _assert_matches_one_process(ddp, "probconserv", **oracle)
    alike, _, _ = _one_process(tuple(range(WORLD)), torch_streams="alike", **oracle)
    assert _max_rel(alike, ddp.model) > 1e3 * RTOL
    rngs = ddp.trainer["torch_rng_ranks"]
    assert len(rngs) == WORLD and not torch.equal(rngs[0], rngs[1])

    middle = tmp_path / "a" / "out" / "checkpoint_00000005.h5"
    resumed = _launch(tmp_path / "b", "probconserv", PROBLEM, config, resume=middle)
    assert resumed.step == 10
    assert_same_state(resumed.model, ddp.model)
    for key in ("optimizer", "task_ranks", "torch_rng_ranks", "history"):
        assert_same_state(resumed.trainer[key], ddp.trainer[key], key)


#: the causal PINN: two windows (a window switch), two eps stages per window ended by step
#: budgets, chunks of the rank batches; with and without gradient-norm balancing (a collective
#: inside the loss)
CAUSAL = "porous_medium/heat"
CAUSAL_CONFIG = {
    "network.width": 8,
    "network.depth": 2,
    "sampling.n_interior": 32,
    "sampling.n_boundary": 8,
    "sampling.n_initial": 8,
    "causal.chunks": 4,
    "causal.windows": 2,
    "causal.warm_start": True,
    "causal.eps": [0.01, 1.0],
    "causal.stage_steps": 6,
    "train.steps": 24,
    "train.log_every": 4,
    "train.dtype": "float64",
    "train.decay_every": 15,
}
#: gradient-norm balancing divides gradient norms of the terms, which amplifies the rounding
#: difference between DDP's (g0 + g1) / 2 and the oracle's 0.5 g0 + 0.5 g1: measured 1.3e-10
#: with it against 9.6e-17 without (24 steps). A real defect, causal weights from each
#: process's own chunk losses instead of the global ones, gives 1.3e-8 without balancing and
#: 1.1e-2 with it (measured with the oracle's exchange turned off): both caught.
CAUSAL_RTOL = {0: RTOL, 5: 1e-7}


@pytest.mark.parametrize("grad_norm_every", sorted(CAUSAL_RTOL))
def test_causal_pinn_two_processes_match_one_process(tmp_path, grad_norm_every):
    config = dict(CAUSAL_CONFIG, **{"causal.grad_norm_every": grad_norm_every})
    rtol = CAUSAL_RTOL[grad_norm_every]
    ddp = _launch(tmp_path, "causal_pinn", CAUSAL, config)
    assert ddp.step == config["train.steps"]
    # every process weighted, balanced and scheduled alike: the same numbers, bit for bit
    ranks = ddp.trainer["task_ranks"]
    for key in ("weights", "lambdas", "schedule"):
        assert_same_state(ranks[1][key], ranks[0][key], key)
    assert ranks[0]["schedule"]["window"] == 1  # the run did switch windows
    oracle = dict(solver_name="causal_pinn", problem_name=CAUSAL, config=config, exchange=True)
    label = f"causal_pinn (grad_norm_every {grad_norm_every})"
    task = _assert_matches_one_process(ddp, label, rtol, **oracle)[0]
    # weights in [0, 1], compared absolutely: a tiny weight exp(-eps S) carries eps times the
    # absolute error of S as its relative error
    np.testing.assert_allclose(ranks[0]["weights"].numpy(), task.weights.numpy(), atol=rtol)
    if grad_norm_every:
        # a balanced weight is a ratio of gradient norms, here up to 2.7e7 (a term whose
        # gradient nearly vanishes), and amplifies the parameters' 1e-10 to 1.6e-7 (measured)
        for key, value in task.lambdas.items():
            assert ranks[0]["lambdas"][key] == pytest.approx(value, rel=1e-5)


def test_causal_pinn_under_a_time_budget_switches_windows_in_step(tmp_path):
    """With ``train.time_budget_s`` the annealing schedule runs on seconds: every process must
    take rank 0's clock, or they would end stages and windows at different steps (and the
    collectives of the next step would pair different work). The run ends on its budget with
    the ranks' schedules identical and both windows trained."""
    config = dict(CAUSAL_CONFIG, **{"train.steps": 10**6, "train.time_budget_s": 4.0})
    config["causal.stage_steps"] = 0  # stages share the seconds
    ranks = _launch(tmp_path, "causal_pinn", CAUSAL, config).trainer["task_ranks"]
    for key in ("schedule", "records", "weights"):
        assert_same_state(ranks[1][key], ranks[0][key], key)
    assert ranks[0]["schedule"]["window"] == 1
    assert 4.0 <= ranks[0]["last"]["train_s"] < 60.0


# -- fno: dataset shards under torchrun ---------------------------------------------------------
#: the FNO benchmark's family, tiny: 8 training trajectories on 16^2 (simulated on 64^2), the
#: first snapshot in, the other 50 out, batches of 4 (2 per rank), a 1-layer FNO of width 4
FNO_ARGS = ["kolmogorov_nu1e-3"]
FNO_CONFIG = {
    "dataset.n_train": 8,
    "dataset.n_valid": 2,
    "dataset.grid": 16,
    "dataset.in_steps": 1,
    "dataset.start": 0,
    "dataset.batch_size": 4,
    "dataset.eval_every": 0,
    "network.width": 4,
    "network.modes": 4,
    "network.layers": 1,
    "train.steps": 6,
    "train.log_every": 1,
    "train.dtype": "float64",
}


def _fno_model(cache: Path) -> dict:
    (path,) = sorted((cache / "models").glob("fno_*.h5"))
    return load_checkpoint(path).model


def test_fno_trains_on_dataset_shards_as_one_process_on_the_global_batch(tmp_path):
    """``torchrun -m pdekit train ... --solver fno``: each rank trains on its half of every
    batch (DatasetTask's shards), DDP averages the gradients; the model equals one process's
    on the global batch to rounding (MSE over equal halves: the mean of the halves' means),
    and only rank 0 writes the model into the store."""
    cli = ["train", *FNO_ARGS, "--solver", "fno", "--device", "cpu", "--quiet"]
    cli += [a for k, v in FNO_CONFIG.items() for a in ("--config", f"{k}={v}")]
    cache = tmp_path / "cache"
    run = _torchrun(
        tmp_path / "log", "cli", *cli, cwd=tmp_path, env={"PDEKIT_CACHE_DIR": str(cache)}
    )
    assert run.returncode == 0, run.stdout + run.stderr
    writes = _writes(tmp_path / "log")
    # rank 1 generated no dataset (it read rank 0's) and saved no model
    assert not [w for w in writes[1] if str(cache) in w[1]], writes[1]
    (path,) = sorted((cache / "models").glob("fno_*.h5"))
    assert load_checkpoint(path).trainer["world_size"] == WORLD  # one group, not two runs
    two = _fno_model(cache)
    one = subprocess.run(  # the same command in one process, on the same (cached) datasets
        [sys.executable, "-m", "pdekit", *cli],
        env={**subprocess_env(), "PDEKIT_CACHE_DIR": str(cache)},
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert one.returncode == 0, one.stdout + one.stderr
    single = _fno_model(cache)  # the store's entry of that name, replaced
    err = _max_rel(two, single)
    print(f"fno: max relative weight difference DDP vs one process: {err:.2e}")
    assert err <= RTOL
