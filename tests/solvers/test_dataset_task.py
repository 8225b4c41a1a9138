"""The trainer on a dataset task: exact mid-epoch resume (every optimiser, schedule and phase),
frozen parameters in a fine-tune phase, a least-squares optimum, validation with the best model
kept, the divergence guard with a CPU snapshot, and DDP over dataset shards against one process.

All runs are float64 on the CPU with tiny models on 64 samples. Run as a script under
``torchrun`` (``python -m torch.distributed.run --nproc_per_node=2 THIS ddp OUT``) it is the
worker of the DDP test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pdekit.checkpoints.tree import tree_from_bytes, tree_to_bytes
from pdekit.errors import ParameterError
from pdekit.solvers import distributed
from pdekit.solvers.dataset_task import DatasetConfig, DatasetTask, rel_l2
from pdekit.solvers.training import Phase, TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]
N, D_IN, D_OUT = 64, 3, 2


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny float64 models: one thread is several times faster on a loaded machine, and makes
    runs in different processes (the DDP test) bit-comparable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(seed: int = 0, n: int = N, noise: float = 0.1):
    """y = A x + b + noise: the least-squares problem of a linear map (float64)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D_IN, generator=g, dtype=torch.float64)
    a = torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64)
    y = x @ a.T + 0.5 + noise * torch.randn(n, D_OUT, generator=g, dtype=torch.float64)
    return x, y


class _Pairs:
    """The minimal dataset protocol: len() and [i] -> (x, y)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(D_IN, 8), torch.nn.Tanh(), torch.nn.Linear(8, D_OUT)
    ).double()


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save(path: Path, trainer: Trainer) -> Path:
    """An HDF5 checkpoint (no pickle) of the model and the trainer's complete state."""
    state = {"model": trainer.model.state_dict(), "trainer": trainer.checkpoint_state()}
    path.write_bytes(tree_to_bytes(state))
    return path


def _run(tmp: Path | None, cfg: TrainConfig, dcfg: DatasetConfig, phases=None, resume=None):
    model = _mlp()
    x, y = _data()
    task = DatasetTask(model, _Pairs(x, y), dcfg, valid=_data(seed=1, n=16))
    ckpt = None
    if tmp is not None:
        ckpt = lambda tr: _save(tmp / f"ckpt_{tr.step:04d}.h5", tr)  # noqa: E731
    trainer = Trainer(task, cfg, verbose=False, checkpoint_fn=ckpt, phases=phases)
    if resume is not None:
        state = tree_from_bytes(Path(resume).read_bytes())
        model.load_state_dict(state["model"])
        trainer.load_state_dict(state["trainer"])
    trainer.run()
    return model, trainer, task


# (optimizer, schedule, extra TrainConfig fields, phases): each resumes exactly from step K,
# mid-epoch (64 samples, batch 12: 5 batches per epoch, 4 dropped; K = 13 is batch 3 of epoch 2)
STEPS, K = 31, 13
PHASES = (Phase("pretrain", 20), Phase("finetune", 11, lr=3e-3, train="2."))
RESUME_CASES = {
    "adam-step": ("adam", "step", {"decay_every": 7, "lr_decay": 0.5}, None),
    "adamw-cosine": ("adamw", "cosine", {"weight_decay": 0.1, "lr_min": 1e-4}, None),
    "adamw-onecycle": ("adamw", "onecycle", {"weight_decay": 0.05, "pct_start": 0.25}, None),
    "phases-cosine": ("adamw", "cosine", {"weight_decay": 0.1}, PHASES),
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_mid_epoch_resume_is_bit_identical(tmp_path, case):
    opt, sched, extra, phases = RESUME_CASES[case]
    cfg = TrainConfig(
        steps=STEPS, lr=1e-2, optimizer=opt, schedule=sched, log_every=1,
        checkpoint_every=K, dtype="float64", **extra,
    )  # fmt: skip
    dcfg = DatasetConfig(batch_size=12, seed=5, eval_every=4)
    straight, tr_a, task_a = _run(tmp_path, cfg, dcfg, phases)
    for at in (K, 2 * K):  # mid-epoch both; with phases, in the first and the second phase
        ckpt = tmp_path / f"ckpt_{at:04d}.h5"
        assert ckpt.exists() and at % 5 != 0
        resumed, tr_b, task_b = _run(None, cfg, dcfg, phases, resume=ckpt)
        assert tr_b.step == tr_a.step == STEPS and tr_b.phase == tr_a.phase
        for k, v in _params(straight).items():
            assert torch.equal(v, _params(resumed)[k]), k
        assert tr_a.history == tr_b.history  # losses, lr, steps: every float equal
        assert task_a.valid_history == task_b.valid_history
    assert len(tr_a.history["loss"]) == STEPS
    assert task_a.epoch == (STEPS - 1) // 5  # 5 batches per epoch: the remainder is dropped


def test_schedules_follow_their_formulas():
    """Learning rate actually used at each step against the closed forms."""
    steps, lr, lo = 40, 1e-2, 1e-4
    got = {}
    for sched in ("cosine", "onecycle"):
        cfg = TrainConfig(
            steps=steps, lr=lr, schedule=sched, lr_min=lo, pct_start=0.25, log_every=1
        )
        model = _mlp()
        task = DatasetTask(model, _data(), DatasetConfig(batch_size=16, eval_every=0))
        trainer = Trainer(task, cfg, verbose=False)
        trainer.run()
        got[sched] = np.array(trainer.history["lr"])  # lr after step t (t = 1..steps)
    t = np.arange(1, steps + 1)
    cos = lo + (lr - lo) * 0.5 * (1 + np.cos(np.pi * t / steps))
    np.testing.assert_allclose(got["cosine"], cos, rtol=1e-12)
    warm = 10
    up = lr / 25 + (lr - lr / 25) * 0.5 * (1 + np.cos(np.pi * (warm - t) / warm))
    down = lo + (lr - lo) * 0.5 * (1 + np.cos(np.pi * (t - warm) / (steps - warm)))
    np.testing.assert_allclose(got["onecycle"], np.where(t < warm, up, down), rtol=1e-12)
    assert got["onecycle"].max() == pytest.approx(lr) and got["cosine"][-1] == pytest.approx(lo)


def test_finetune_phase_freezes_the_rest_to_the_bit(tmp_path):
    cfg = TrainConfig(
        steps=1, lr=1e-2, optimizer="adamw", weight_decay=0.5, checkpoint_every=10,
        dtype="float64",
    )  # fmt: skip
    phases = [
        Phase("pretrain", 10),
        Phase("finetune", 15, lr=1e-2, train=lambda n: n == "2.weight"),
    ]
    model, trainer, _ = _run(tmp_path, cfg, DatasetConfig(batch_size=16, eval_every=0), phases)
    assert trainer.step == 25 and trainer.phase == 1
    before = tree_from_bytes((tmp_path / "ckpt_0010.h5").read_bytes())["model"]
    after = _params(model)
    for name in ("0.weight", "0.bias", "2.bias"):  # frozen, despite weight decay
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["2.weight"], after["2.weight"])
    # the frozen parameters changed in the pretrain phase (the test can fail)
    assert not torch.equal(_params(_mlp())["0.weight"], after["0.weight"])
    with pytest.raises(ParameterError, match="trains no parameter"):
        Trainer(DatasetTask(_mlp(), _data()), cfg, phases=[Phase("x", 5, train="head.")])


def test_linear_least_squares_optimum():
    """A linear map trained by Adam (full batch, cosine schedule) reaches the least-squares
    solution of the noisy data: measured 4e-12 from numpy's lstsq after 600 float64 steps;
    1e-9 leaves room for other BLAS rounding, and a run 3x shorter misses it (measured 3e-6
    after 300 steps at lr 0.1 ... 3e-10 at lr 0.05, 600 steps)."""
    x, y = _data(noise=0.3)
    torch.manual_seed(0)
    model = torch.nn.Linear(D_IN, D_OUT).double()
    cfg = TrainConfig(steps=600, lr=0.1, schedule="cosine", lr_min=1e-4, dtype="float64")
    task = DatasetTask(model, (x, y), DatasetConfig(batch_size=N, eval_every=0))
    Trainer(task, cfg, verbose=False).run()
    design = np.hstack([x.numpy(), np.ones((N, 1))])
    sol = np.linalg.lstsq(design, y.numpy(), rcond=None)[0]
    trained = np.hstack([model.weight.detach().numpy(), model.bias.detach().numpy()[:, None]])
    np.testing.assert_allclose(trained, sol.T, rtol=0, atol=1e-9)


def test_validation_keeps_the_best_model(tmp_path):
    """lr 0.3 overshoots: the validation metric is not monotone, and keep_best must put the
    parameters of its minimum back; the checkpoint holds them too."""
    valid = _data(seed=1, n=16)
    cfg = TrainConfig(steps=60, lr=0.3, lr_decay=1.0, checkpoint_every=60, dtype="float64")
    dcfg = DatasetConfig(batch_size=8, eval_every=3, keep_best=True)
    model, trainer, task = _run(tmp_path, cfg, dcfg)
    metric = task.valid_history["metric"]
    assert task.valid_history["step"] == list(range(3, 61, 3))
    best = int(np.argmin(metric))
    assert best != len(metric) - 1, "the last evaluation is the best: the test cannot fail"
    assert task.best_step == task.valid_history["step"][best]
    assert task.evaluate() == task.best_metric == min(metric)  # the best parameters are back
    saved = tree_from_bytes((tmp_path / "ckpt_0060.h5").read_bytes())
    last = saved["trainer"]["task"]
    for k, v in _params(model).items():
        assert torch.equal(last["best"][k], v), k
    assert not torch.equal(saved["model"]["0.weight"], model.state_dict()["0.weight"])
    # an independent metric computation agrees with the recorded one
    with torch.no_grad():
        pred = model(valid[0])
    assert float(rel_l2(pred, valid[1]).mean()) == pytest.approx(min(metric), rel=1e-12)


#: phases of a run whose step 12 fails: none, or a fine-tune phase from step 10 (the rollback
#: to step 8 then also goes back to the pretrain phase and its optimiser over every parameter)
GUARD_CASES = {
    "one phase": None,
    "across phases": (Phase("pretrain", 10), Phase("finetune", 10, train="2.")),
}


@pytest.mark.parametrize("case", GUARD_CASES)
def test_divergence_guard_rolls_back_exactly_from_a_cpu_snapshot(case):
    """A non-finite loss at step 12: the trainer rolls back to its snapshot of step 8 (the last
    logged step; kept on the CPU), restores the parameters to the bit and the phase with its
    optimiser, halves the learning rate and finishes."""
    phases = GUARD_CASES[case]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _mlp().to(device)
    seen: dict = {"calls": 0}

    def loss_fn(pred, target):
        seen["calls"] += 1
        if seen["calls"] == 12:
            good = trainer._good
            seen["devices"] = {t.device.type for t in good["model"].values()}
            seen["devices"] |= {
                t.device.type
                for s in good["optimizer"]["state"].values()
                for t in s.values()
                if isinstance(t, torch.Tensor)
            }
            seen["snapshot"] = {k: v.clone() for k, v in good["model"].items()}
            seen["snap_step"] = good["step"]
            return torch.tensor(math.nan, dtype=pred.dtype, device=pred.device) * pred.sum()
        if seen["calls"] == 13:  # the first loss after the rollback
            seen["restored"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            seen["phase"] = trainer.phase
            seen["trained"] = sum(len(g["params"]) for g in trainer.optimizer.param_groups)
        return torch.mean((pred - target) ** 2)

    cfg = TrainConfig(steps=20, lr=1e-2, log_every=4, dtype="float64")
    task = DatasetTask(model, _data(), DatasetConfig(batch_size=16, eval_every=0), loss_fn=loss_fn)
    trainer = Trainer(task, cfg, verbose=False, phases=phases)
    trainer.run()
    assert seen["devices"] == {"cpu"}
    assert seen["snap_step"] == 8
    for k, v in seen["snapshot"].items():
        assert torch.equal(v, seen["restored"][k]), k
    assert seen["phase"] == 0 and seen["trained"] == 4  # every parameter trains again
    assert trainer.rollbacks == 1 and trainer.lr_scale == 0.5 and trainer.step == 20
    assert trainer.phase == (0 if phases is None else 1)
    assert all(math.isfinite(v) for v in trainer.history["loss"])


def test_bad_input_names_what_is_wrong():
    with pytest.raises(ParameterError, match="exceeds the 64 training samples"):
        DatasetTask(_mlp(), _data(), DatasetConfig(batch_size=65))
    with pytest.raises(ParameterError, match="multiple of the 2 processes"):
        DatasetTask(
            _mlp(), _data(), DatasetConfig(batch_size=7), dist=distributed.Distributed(0, 2)
        )
    with pytest.raises(ParameterError, match="same number of samples"):
        DatasetTask(_mlp(), (torch.zeros(4, 3), torch.zeros(5, 2)))
    with pytest.raises(ParameterError, match="TrainConfig.schedule"):
        TrainConfig(schedule="linear")


# -- DDP: two gloo processes over dataset shards against one process with the global batch ------
DDP_STEPS, DDP_BATCH = 12, 16
#: DDP averages (g0 + g1) / 2 after the all-reduce, one process takes the mean over the global
#: batch in one reduction: rounding differences ~1e-16 per step, which 12 Adam steps amplify by
#: far less than 1e4 (relative gradient errors pass through Adam's m / sqrt(v) at order one)
DDP_RTOL = 1e-11


def _ddp_run(out: Path | None) -> tuple[torch.nn.Module, Trainer]:
    cfg = TrainConfig(steps=DDP_STEPS, lr=1e-2, log_every=1, dtype="float64", optimizer="adamw")
    model = _mlp()
    task = DatasetTask(model, _data(), DatasetConfig(batch_size=DDP_BATCH, seed=3, eval_every=0))
    trainer = Trainer(task, cfg, verbose=False)
    trainer.run()
    return model, trainer


def _ddp_worker(out: Path) -> None:
    with distributed.launched(device="cpu") as dist:
        model, trainer = _ddp_run(out)
        if dist.is_writer:
            state = {"model": model.state_dict(), "history": trainer.history}
            (out / "ddp.h5").write_bytes(tree_to_bytes(state))


def test_ddp_shards_equal_one_process_with_the_global_batch(tmp_path):
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        __file__, "ddp", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    two = tree_from_bytes((tmp_path / "ddp.h5").read_bytes())
    one, trainer = _ddp_run(None)
    for k, v in one.state_dict().items():
        torch.testing.assert_close(two["model"][k], v, rtol=DDP_RTOL, atol=0)
    np.testing.assert_allclose(two["history"]["loss"], trainer.history["loss"], rtol=DDP_RTOL)
    # the shards matter: rank 0's half-batches alone give another run (the test can fail)
    half = _mlp()
    cfg = TrainConfig(steps=DDP_STEPS, lr=1e-2, dtype="float64", optimizer="adamw")
    task = DatasetTask(half, _data(), DatasetConfig(batch_size=DDP_BATCH, seed=3, eval_every=0),
                       dist=distributed.Distributed(0, 2))  # fmt: skip
    Trainer(task, cfg, verbose=False, dist=distributed.Distributed()).run()
    diff = max(float((half.state_dict()[k] - v).abs().max()) for k, v in one.state_dict().items())
    assert diff > 1e3 * DDP_RTOL


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "ddp":
    torch.set_num_threads(1)
    _ddp_worker(Path(sys.argv[2]))
    print(json.dumps({"rank": int(os.environ.get("RANK", 0)), "ok": True}), flush=True)
    # Its work done and written, leave without interpreter finalisation: a rank of this launch
    # once aborted there in CI (SIGABRT in gloo/DDP teardown, torch 2.13; 2 of 20 launches
    # here). distributed.launched now collects and barriers before destroying the group (0 of
    # 48 after); the command-line launches in tests/robustness/test_ddp.py exit normally and
    # keep exercising that path.
    sys.stderr.flush()
    os._exit(0)
