"""Run a command under ``torchrun --standalone --nproc_per_node=2`` for the two-rank gloo tests:
one thread per process, this checkout on the path; the exit status is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run(args: list[str], cwd: Path, timeout: float = 120, launch=TORCHRUN, **env_extra: str):
    """``args`` (a script and its arguments, or ``-m module ...``) after ``launch`` (default:
    torchrun on two processes) in ``cwd``, with ``env_extra`` in the environment; returns the
    finished process, asserting success."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    env.update(env_extra)
    proc = subprocess.run(
        [*launch, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
