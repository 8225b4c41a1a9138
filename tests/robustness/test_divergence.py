"""The divergence guard: a non-finite or exploding loss, or a non-finite gradient, never
reaches a checkpoint; the trainer rolls back to the last good state and lowers the learning
rate a bounded number of times, then stops with DivergenceError, the last checkpoint intact.

Faults are injected by wrapping the PINN task's loss (the trainer's code is untouched).
"""

from __future__ import annotations

import math
import signal

import pytest
import torch
from robustness_support import TINY

import pdekit
from pdekit import cli
from pdekit.checkpoints import load_checkpoint
from pdekit.errors import DivergenceError, TrainingInterrupted
from pdekit.solvers.pinn import PINNTask

PROBLEM = "porous_medium/heat"
STEPS = 40
CONFIG = {
    "network": {"width": 8, "depth": 2},
    "sampling": {"n_interior": 32, "n_boundary": 8, "n_initial": 8},
    "train": {"checkpoint_every": 10, "log_every": 10, "keep_checkpoints": 10},
}
BAD_STEP = 25  # the 25th loss evaluation: step 25 of the run


def _inject(monkeypatch, fault, when):
    """Replace the loss at the loss evaluations for which ``when(call)`` is true."""
    calls = {"n": 0}
    original = PINNTask.loss

    def loss(self):
        total, terms = original(self)
        calls["n"] += 1
        return (fault(self, total) if when(calls["n"]) else total), terms

    monkeypatch.setattr(PINNTask, "loss", loss)
    return calls


def _nan(task, total):
    return total * float("nan")


def _explode(task, total):
    return total * 1e9


def _nan_gradient(task, total):
    """Finite value (adds sqrt(0) = 0) whose gradient is NaN."""
    p = next(task.model.parameters())
    return total + torch.sqrt((p - p.detach()).abs().sum())


def _solve(tmp_path, steps_override=STEPS, **kw):
    return pdekit.solve(
        PROBLEM, steps=steps_override, config=CONFIG, device="cpu", verbose=False,
        checkpoint_dir=tmp_path, **kw,
    )  # fmt: skip


def _finite(state: dict) -> bool:
    return all(torch.isfinite(t).all() for t in state.values())


@pytest.mark.parametrize(
    "fault, reason",
    [
        (_nan, "non-finite loss (nan)"),
        (_explode, "exploding loss"),
        (_nan_gradient, "non-finite gradient"),
    ],
)
def test_one_bad_step_rolls_back_and_lowers_the_lr(monkeypatch, tmp_path, capsys, fault, reason):
    _inject(monkeypatch, fault, lambda n: n == BAD_STEP)
    sol = _solve(tmp_path)
    err = capsys.readouterr().err
    expected = (
        f"pdekit: warning: {reason}"
        if reason != "exploding loss"
        else "pdekit: warning: exploding loss ("
    )
    assert expected in err and f"at step {BAD_STEP}; rolled back to step 20" in err
    assert "scaled the learning rate by 0.5 (rollback 1/3)" in err
    assert sol.step == STEPS
    assert sol.trainer_state["rollbacks"] == 1 and sol.trainer_state["lr_scale"] == 0.5
    assert all(math.isfinite(v) for v in sol.history["loss"])
    assert sol.history["step"] == [10, 20, 30, 40]
    # the run's lr after the rollback is half the schedule's: 1e-3 * 0.9**floor(40/1000) * 0.5
    assert sol.history["lr"][-1] == pytest.approx(0.5e-3, rel=1e-12)
    for p in sorted(tmp_path.glob("checkpoint_*.h5")):
        assert _finite(load_checkpoint(p).model), p


def test_persistent_divergence_stops_with_a_clear_message(monkeypatch, tmp_path, capsys):
    _inject(monkeypatch, _nan, lambda n: n >= BAD_STEP)
    with pytest.raises(DivergenceError) as info:
        _solve(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert f"training diverged at step {20}" in message and "non-finite loss" in message
    assert "3 rollbacks" in message and "train.max_rollbacks" in message
    newest = tmp_path / "checkpoint_00000020.h5"
    assert f"the last good checkpoint {newest} is intact" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_00000010.h5",
        "checkpoint_00000020.h5",
    ]
    ckpt = load_checkpoint(newest)  # verifies the checksum
    assert ckpt.step == 20 and _finite(ckpt.model)
    assert capsys.readouterr().err.count("rolled back to step 20") == 3


def test_the_named_checkpoint_gave_a_good_loss(monkeypatch, tmp_path, capsys):
    """NaN from the 21st loss on: the state of step 20 (checkpointed, finite parameters) is the
    one whose loss fails, so the guard goes back to step 10, and the error names step 10's
    checkpoint as the good one, not the newer file of step 20."""
    _inject(monkeypatch, _nan, lambda n: n >= 21)
    with pytest.raises(DivergenceError) as info:
        _solve(tmp_path)
    message = str(info.value)
    assert f"the last good checkpoint {tmp_path / 'checkpoint_00000010.h5'} is intact" in message
    assert capsys.readouterr().err.count("at step 21; rolled back to step 10") == 1


def test_a_diverging_start_stops_at_once(monkeypatch, tmp_path, capsys):
    """The first loss is the initial network's, before any update: no learning rate changes
    it, so there is nothing to roll back to."""
    _inject(monkeypatch, _nan, lambda n: n == 1)
    with pytest.raises(DivergenceError, match="at step 1: non-finite loss.*initial network"):
        _solve(tmp_path)
    assert "rolled back" not in capsys.readouterr().err


def test_a_resumed_state_that_diverges_at_once_is_named(monkeypatch, tmp_path, capsys):
    """Resuming from a checkpoint whose state fails its first loss stops at once and names the
    file, rather than rolling back to that same state max_rollbacks times."""
    _solve(tmp_path, steps_override=20)
    start = tmp_path / "checkpoint_00000020.h5"
    _inject(monkeypatch, _nan, lambda n: n == 1)
    with pytest.raises(DivergenceError) as info:
        _solve(tmp_path / "again", resume=start)
    message = str(info.value)
    assert f"the state resumed from {start} (step 20) gives it at once" in message
    assert "earlier checkpoint" in message and "\n" not in message
    assert "rolled back" not in capsys.readouterr().err


def test_cli_reports_divergence_in_one_line(monkeypatch, tmp_path, capsys):
    _inject(monkeypatch, _nan, lambda n: n >= 5)
    args = ["solve", PROBLEM, *TINY, "--steps", "20", "--out", str(tmp_path), "--quiet"]
    assert cli.main(args) == 3
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if not line.startswith("pdekit: warning:")]
    assert len(errors) == 1 and errors[0].startswith("pdekit: error: training diverged")


def test_sigint_stops_at_a_step_boundary_with_a_checkpoint(monkeypatch, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def interrupt(task, total):
        signal.raise_signal(signal.SIGINT)
        return total

    _inject(monkeypatch, interrupt, lambda n: n == 13)
    with pytest.raises(TrainingInterrupted) as info:
        _solve(tmp_path)
    assert info.value.signum == signal.SIGINT and info.value.step == 13
    assert info.value.checkpoint == tmp_path / "checkpoint_00000013.h5"
    assert load_checkpoint(info.value.checkpoint).step == 13
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_same_signal_twice_stops_at_once(monkeypatch, tmp_path):
    def interrupt_twice(task, total):
        # raise_signal runs the Python handler before it returns, so the two signals reach the
        # handler one after the other (pending signals of one kind are otherwise merged)
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        return total

    _inject(monkeypatch, interrupt_twice, lambda n: n == 3)
    # Python's own Ctrl-C handler before the run, whatever was installed before this test: the
    # guard re-delivers the second signal to the handler it found. (In two CI runs of the full
    # suite this test failed as if that handler did not raise; not reproduced locally, cause
    # not found.)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _solve(tmp_path)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    assert not list(tmp_path.glob("checkpoint_*")) and not list(tmp_path.glob(".*"))
