"""Shared pieces of the robustness tests: a tiny training run of the pdekit command in a
subprocess, and readers of its checkpoints (importable through ``pythonpath`` in pyproject)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]

#: a tiny network and batch: each step takes milliseconds, so a test run takes seconds
TINY = [
    "--config", "network.width=8",
    "--config", "network.depth=2",
    "--config", "sampling.n_interior=32",
    "--config", "sampling.n_boundary=8",
    "--config", "sampling.n_initial=8",
    "--config", "train.log_every=10",
]  # fmt: skip


def subprocess_env() -> dict[str, str]:
    """One thread everywhere, so that runs in different processes are bit-comparable."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        NUMBA_NUM_THREADS="1",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
    )
    return env


def pdekit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pdekit", *args]


def run_pdekit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        pdekit_cmd(*args),
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_same_state(a, b, path: str = "") -> None:
    """Bit-for-bit equality of two state trees (tensors with torch.equal, the rest with ==)."""
    if isinstance(a, dict):
        assert list(map(str, a)) == list(map(str, b)), f"keys differ at {path or '/'}"
        for (k, x), y in zip(a.items(), b.values()):
            assert_same_state(x, y, f"{path}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"lengths differ at {path}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), f"tensor differs at {path}"
    else:
        assert a == b or (a != a and b != b), f"value differs at {path}: {a!r} != {b!r}"
