"""Soak run: one long training run with a checkpoint every minute; memory and checkpoint timing.

A run that trains for hours must not leak: its resident memory (RSS) should be flat once the
run has warmed up (imports, first checkpoint, allocator pools), and writing a checkpoint should
take a steady, small time. This script trains one problem for ``--minutes`` wall-clock minutes
with ``train.checkpoint_minutes`` set to ``--checkpoint-minutes`` and samples the process's RSS
(``VmRSS`` of ``/proc/self/status``; Linux only, no psutil) every ``--sample-seconds`` from a
background thread. The run is ended the way a batch scheduler ends one: SIGTERM at the time
limit, after which the trainer finishes its step, writes a final checkpoint and raises
:class:`~pdekit.errors.TrainingInterrupted` -- so the soak also exercises the signal path.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/soak.py            # 20 minutes (the issue's)
    python benchmarks/soak.py --minutes 2 --checkpoint-minutes 0.25 --out /tmp/soak.json

Writes ``benchmarks/results/soak.json``: the RSS series ``[[seconds, MiB], ...]``, the growth
after warm-up in percent (mean of the last minute vs the mean of the first minute after
warm-up, and the maximum after warm-up vs that baseline), a least-squares RSS slope (MiB/hour),
checkpoint write times (each, and min/median/mean/max) and sizes, steps done and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from pdekit import api, problems, solvers
from pdekit._version import __version__
from pdekit.errors import TrainingInterrupted
from pdekit.solvers.base import RunOptions

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "soak.json"


def rss_mib() -> float:
    """Resident set size of this process in MiB, from ``VmRSS`` in ``/proc/self/status``."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                value, unit = line.split()[1:3]
                if unit != "kB":
                    raise RuntimeError(f"unexpected VmRSS unit {unit!r}")
                return int(value) / 1024.0
    raise RuntimeError("no VmRSS line in /proc/self/status (not Linux?)")


def open_fds() -> int:
    """Open file descriptors of this process (entries of ``/proc/self/fd``)."""
    return len(os.listdir("/proc/self/fd"))


class RssSampler(threading.Thread):
    """Samples :func:`rss_mib` (and :func:`open_fds`) every ``period`` seconds until
    :meth:`stop`."""

    def __init__(self, period: float):
        super().__init__(daemon=True)
        self.period = period
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, float]] = []
        self.fds: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self.t0, rss_mib()))
            self.fds.append((time.monotonic() - self.t0, open_fds()))
            if self._stop_event.wait(self.period):
                break

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.samples.append((time.monotonic() - self.t0, rss_mib()))


def growth(samples: list[tuple[float, float]], warmup_s: float, window_s: float = 60.0) -> dict:
    """RSS growth after warm-up.

    ``baseline`` is the mean RSS over the first ``window_s`` after ``warmup_s``; ``growth_pct``
    compares the mean over the last ``window_s`` with it, ``max_growth_pct`` the largest sample
    after warm-up; ``slope_mib_per_h`` is the least-squares slope of RSS against time after
    warm-up.
    """
    after = [(t, r) for t, r in samples if t >= warmup_s]
    if len(after) < 3:
        raise ValueError(f"too few samples after the {warmup_s:g} s warm-up ({len(after)})")
    t_end = after[-1][0]
    first = [r for t, r in after if t < warmup_s + window_s]
    last = [r for t, r in after if t > t_end - window_s]
    base = statistics.fmean(first)
    t, r = np.array(after).T
    slope = float(np.polyfit(t, r, 1)[0]) * 3600.0
    return {
        "warmup_s": warmup_s,
        "window_s": window_s,
        "baseline_mib": base,
        "last_window_mib": statistics.fmean(last),
        "max_after_warmup_mib": float(r.max()),
        "growth_pct": 100.0 * (statistics.fmean(last) - base) / base,
        "max_growth_pct": 100.0 * (float(r.max()) - base) / base,
        "slope_mib_per_h": slope,
    }


def _fd_range(fds: list[tuple[float, int]], warmup_s: float) -> dict:
    """First, last, min and max open file descriptors after warm-up (a leak grows them)."""
    after = [n for t, n in fds if t >= warmup_s] or [n for _, n in fds]
    return {"first": after[0], "last": after[-1], "min": min(after), "max": max(after)}


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "max": max(values),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock length of the run")
    p.add_argument("--checkpoint-minutes", type=float, default=1.0)
    p.add_argument("--warmup-minutes", type=float, default=2.0, help="excluded from growth")
    p.add_argument("--sample-seconds", type=float, default=5.0, help="RSS sampling period")
    p.add_argument("--problem", default="porous_medium/heat")
    p.add_argument("--solver", default="pinn")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="solver config override (repeatable), e.g. --config network.width=64",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--run-dir", default=None, help="checkpoint directory (default: a temp dir)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.checkpoint_minutes <= 0 or args.sample_seconds <= 0:
        p.error("--minutes, --checkpoint-minutes and --sample-seconds must be > 0")
    if args.warmup_minutes + 1.0 >= args.minutes:
        p.error("--minutes must exceed --warmup-minutes by more than one minute")
    torch.set_num_threads(args.threads)

    overrides = {k: json.loads(v) for k, _, v in (c.partition("=") for c in args.config)}
    overrides.update(
        {
            "train.steps": 10**9,  # ended by SIGTERM at the time limit
            "train.checkpoint_minutes": args.checkpoint_minutes,
            "train.keep_checkpoints": 3,
        }
    )
    problem = problems.get(args.problem)
    api.check_pair(problem, args.solver)
    cfg = api.make_config(args.solver, None, overrides)

    tmp = None
    if args.run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pdekit-soak-")
        run_dir = Path(tmp.name)
    else:
        run_dir = Path(args.run_dir)
    run = RunOptions(device="cpu", seed=0, verbose=False, checkpoint_dir=run_dir)

    sampler = RssSampler(args.sample_seconds)
    sampler.start()
    timer = threading.Timer(args.minutes * 60.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    t0 = time.perf_counter()
    timer.start()
    stopped_by = "end of steps"
    step = None
    try:
        sol = solvers.get(args.solver).fit(problem, cfg, run)
        step = sol.step
    except TrainingInterrupted as exc:
        stopped_by = f"{signal.Signals(exc.signum).name} at the time limit"
        step = exc.step
    finally:
        timer.cancel()
        sampler.stop()
    wall = time.perf_counter() - t0
    sizes = [f.stat().st_size for f in sorted(run_dir.glob("*.h5"))]
    writes = [float(s) for s in run.stats.get("checkpoint_write_s", [])]
    if tmp is not None:
        tmp.cleanup()

    g = growth(sampler.samples, 60.0 * args.warmup_minutes)
    result = {
        "meta": {
            "command": shlex.join([sys.executable, *sys.argv]),
            "pdekit": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "threads": torch.get_num_threads(),
            "problem": args.problem,
            "solver": args.solver,
            "config_overrides": {k: v for k, v in overrides.items()},
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
        "wall_s": wall,
        "steps": step,
        "steps_per_s": (step / run.stats["wall_s"]) if step and run.stats.get("wall_s") else None,
        "stopped_by": stopped_by,
        "rss_mib": [[round(t, 2), round(r, 3)] for t, r in sampler.samples],
        "rss_growth": g,
        "flat": g["max_growth_pct"] <= 5.0,
        "open_fds": [[round(t, 2), n] for t, n in sampler.fds],
        "open_fds_after_warmup": _fd_range(sampler.fds, 60.0 * args.warmup_minutes),
        "checkpoint_write_s": writes,
        "checkpoint_write_stats_s": stats(writes),
        "checkpoint_bytes_kept": sizes,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    w = result["checkpoint_write_stats_s"]
    print(
        f"soak {args.problem} [{args.solver}]: {wall / 60:.1f} min, {step} steps, stopped by "
        f"{stopped_by}; RSS baseline {g['baseline_mib']:.1f} MiB, growth {g['growth_pct']:+.2f}% "
        f"(max {g['max_growth_pct']:+.2f}%, slope {g['slope_mib_per_h']:+.2f} MiB/h); "
        f"{w['n']} checkpoints, write median {w.get('median', float('nan')) * 1e3:.1f} ms, "
        f"max {w.get('max', float('nan')) * 1e3:.1f} ms -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
