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
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from robustness_support import TINY, assert_same_state, subprocess_env

from pdekit import problems, solvers
from pdekit.api import make_config
from pdekit.checkpoints import load_checkpoint
from pdekit.solvers.distributed import Distributed
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


def _torchrun(logdir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    logdir.mkdir()
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD}", str(WORKER), str(logdir), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, env=subprocess_env(), cwd=cwd, capture_output=True, text=True, timeout=240
    )


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


def _one_process(ranks: tuple[int, ...]):
    """The oracle: one process minimising the mean of the given ranks' PINN losses."""
    problem = problems.get(PROBLEM)
    solver = solvers.get("pinn")
    cfg = make_config("pinn", None, dict(CONFIG, **{"train.steps": STEPS}))
    torch.manual_seed(0)  # as every rank does before building the network
    model = solver.build_model(problem, cfg).to(dtype=torch.float64)
    tasks = [
        solver.build_task(
            problem,
            cfg,
            model,
            np.random.default_rng(np.random.SeedSequence(0, spawn_key=(r,))),
            torch.device("cpu"),
        )
        for r in ranks
    ]

    class MeanTask(TrainingTask):
        """The ranks' tasks side by side; loss and terms are their means."""

        def __init__(self):
            self.model = model

        def next_batch(self, step):
            for t in tasks:
                t.next_batch(step)

        def loss(self):
            out = [t.loss() for t in tasks]
            total = sum(o[0] for o in out) / len(out)
            terms = {k: sum(o[1][k] for o in out) / len(out) for k in out[0][1]}
            return total, terms

    trainer = Trainer(MeanTask(), cfg.train, verbose=False, dist=Distributed())
    trainer.run()
    return model.state_dict(), trainer.history


def _max_rel(a: dict, b: dict) -> float:
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    scale = max(float(a[k].abs().max()) for k in a)
    return diff / scale


def test_two_processes_match_one_process_with_the_same_global_batch(launches):
    _, out_a, _ = launches
    ddp = load_checkpoint(out_a / "checkpoint.h5")
    assert ddp.step == STEPS and ddp.trainer["world_size"] == WORLD
    weights, history = _one_process(tuple(range(WORLD)))
    err = _max_rel(weights, ddp.model)
    print(f"max relative weight difference DDP vs one process: {err:.2e} (rtol {RTOL:g})")
    assert err <= RTOL
    ddp_loss = ddp.extras["history"]["loss"]
    np.testing.assert_allclose(ddp_loss, history["loss"], rtol=RTOL)
    # the ranks drew different batches: rank 0's alone give a clearly different result
    alone, _ = _one_process((0,))
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
