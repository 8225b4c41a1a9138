"""Exact resume after SIGKILL and SIGTERM: a killed and resumed run ends bit-identical to an
uninterrupted one (model, optimiser, scheduler, sampler and RNG state, history).

Oracle: the uninterrupted run of the same command, in a separate process with the same single
thread. CPU, float32, fixed seed: equality is exact, no tolerance.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from robustness_support import ROOT, TINY, assert_same_state, pdekit_cmd, run_pdekit, subprocess_env

from pdekit.checkpoints import load_checkpoint

STEPS = 120
EVERY = 10
PROBLEM = "porous_medium/heat"


def _args(out: Path, *extra: str) -> list[str]:
    return [
        "solve", PROBLEM, *TINY,
        "--config", f"train.checkpoint_every={EVERY}",
        "--config", "train.decay_every=25",
        "--steps", str(STEPS), "--out", str(out), "--quiet", "--no-export", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's final checkpoint."""
    out = tmp_path_factory.mktemp("reference")
    proc = run_pdekit(*_args(out))
    assert proc.returncode == 0, proc.stderr
    return load_checkpoint(out / "checkpoint.h5")


def _rng() -> random.Random:
    seed = int(os.environ.get("PDEKIT_TEST_SEED", time.time_ns() % 2**32))
    print(f"PDEKIT_TEST_SEED={seed}")
    return random.Random(seed)


def _kill_after_checkpoint(out: Path, sig: int, rng: random.Random) -> tuple[int, str]:
    """Start the run, wait for a random checkpoint, wait a random moment, send ``sig``."""
    target = rng.randrange(2, STEPS // EVERY // 2)  # a checkpoint in the first half of the run
    delay = rng.uniform(0.0, 0.05)
    print(f"signal {signal.Signals(sig).name} after checkpoint {target * EVERY} + {delay:.3f} s")
    proc = subprocess.Popen(
        pdekit_cmd(*_args(out)),
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    marker = out / "checkpoints" / f"checkpoint_{target * EVERY:08d}.h5"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _resume_and_compare(out: Path, reference) -> None:
    proc = run_pdekit("solve", PROBLEM, "--resume", str(out), "--no-export")
    assert proc.returncode == 0, proc.stderr
    assert "resuming from" in proc.stderr
    final = load_checkpoint(out / "checkpoint.h5")
    assert final.step == reference.step == STEPS
    assert_same_state(final.model, reference.model)
    for key in ("optimizer", "scheduler", "task", "torch_rng", "history", "step", "best_loss"):
        assert_same_state(final.trainer[key], reference.trainer[key], key)


def test_sigkill_then_resume_is_bit_identical(tmp_path, reference):
    out = tmp_path / "run"
    code, err = _kill_after_checkpoint(out, signal.SIGKILL, _rng())
    assert code == -signal.SIGKILL, f"the run was not killed (status {code}): {err}"
    assert not (out / "checkpoint.h5").exists()
    _resume_and_compare(out, reference)


def test_sigterm_writes_a_checkpoint_and_resume_is_bit_identical(tmp_path, reference):
    out = tmp_path / "run"
    code, err = _kill_after_checkpoint(out, signal.SIGTERM, _rng())
    assert code == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0], err
    written = Path(lines[0].split("checkpoint written: ")[1].split(" (")[0])
    stopped_at = int(lines[0].split(" at step ")[1].split(";")[0])
    ckpt = load_checkpoint(written)
    assert ckpt.step == stopped_at and written.name == f"checkpoint_{stopped_at:08d}.h5"
    assert not list(out.rglob(".*tmp-*")), "a temporary file was left behind"
    _resume_and_compare(out, reference)
