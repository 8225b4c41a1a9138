"""NeuralStagger (Huang et al., ICML 2023) beside its undecomposed base solver (Wandel et al.,
ICLR 2021) and our projection solver, on the same MAC grid.

For each case and configuration (spatial pieces s_x x s_y, temporal block s_t):

* train ``neural_stagger`` for the same ``--steps`` (same batch, pool, schedule and seed; no
  solution data), recording the training wall time;
* roll the case's own scene out from rest over its horizon (batched pieces on one device) and
  score it against the problem's reference: relative L2 of u, v (and their combination) over the
  problem's evaluation grid at matched times, the divergence and the boundary residual;
  cavity: the centrelines at the final time against Ghia et al. (1982), Re = 100;
* time the rollout (``--repeats``, best) and the projection solver over the same horizon on the
  same scene (its own stable step).

Configurations: ``base`` (1, 1, 1), ``s2x2_t1``, ``s2x2_t2``, ``s4x4_t1``.
Results: ``benchmarks/results/neural_stagger.json``; models under ``runs/bench_neural_stagger``
(``--rescore`` scores and times them again without training).

    python benchmarks/neural_stagger.py                         # ~1 h on 2 CPU cores
    python benchmarks/neural_stagger.py --quick --out /tmp/ns.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pdekit
from pdekit.problems.references.projection import ProjectionSolver, stable_dt
from pdekit.solvers import neural_stagger as ns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operators import _command, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "neural_stagger.json"
MODELS = ROOT.parent / "runs" / "bench_neural_stagger"
#: configuration -> (s_x, s_y, s_t)
CONFIGS = {"base": (1, 1, 1), "s2x2_t1": (2, 2, 1), "s2x2_t2": (2, 2, 2), "s4x4_t1": (4, 4, 1)}
#: case -> (problem, parameters)
CASES = {"cavity_re100": ("navier_stokes/cavity_transient", {"re": 100.0, "t_end": 10.0})}
GHIA = ROOT.parent / "tests" / "data"


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--repeats", type=int, default=3, help="rollout timings (best is kept)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 30 steps")
    p.add_argument("--rescore", action="store_true", help="score saved models, no training")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def _ghia(problem, sol) -> dict:
    """Max deviation of the centrelines at the final time from Ghia et al. (Re = 100)."""
    t = problem.domain().time.t1
    u_tab = np.loadtxt(GHIA / "ghia1982_u_vertical_centerline_re100.csv", delimiter=",",
                       comments="#", skiprows=2)  # fmt: skip
    v_tab = np.loadtxt(GHIA / "ghia1982_v_horizontal_centerline_re100.csv", delimiter=",",
                       comments="#", skiprows=2)  # fmt: skip
    pu = np.stack([np.full(len(u_tab), 0.5), u_tab[:, 0], np.full(len(u_tab), t)], 1)
    pv = np.stack([v_tab[:, 0], np.full(len(v_tab), 0.5), np.full(len(v_tab), t)], 1)
    return {
        "ghia_u_max_dev": float(np.abs(sol(pu)["u"] - u_tab[:, 1]).max()),
        "ghia_v_max_dev": float(np.abs(sol(pv)["v"] - v_tab[:, 1]).max()),
    }


def _velocity_rel_l2(problem, sol) -> float:
    """||(u, v) - (u, v)_ref|| / ||(u, v)_ref|| over the evaluation grid (all times)."""
    pts = problem.evaluation_grid().points()
    ref, got = problem.reference()(pts), sol(pts)
    num = sum(np.sum((got[k] - ref[k]) ** 2) for k in ("u", "v"))
    den = sum(np.sum(ref[k] ** 2) for k in ("u", "v"))
    return float(np.sqrt(num / den))


def _time_projection(problem, cells: int, repeats: int) -> dict:
    scene = problem.mac_scene(cells)
    nu = 1.0 / problem.re
    dt = 0.9 * stable_dt(scene, nu, speed=1.0)
    zero = np.zeros(scene.grid.n)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        run = ProjectionSolver(scene, nu, dt).run(zero, zero, problem.domain().time.t1)
        best = min(best, time.perf_counter() - t0)
    return {"rollout_s": best, "steps": int(run.steps), "dt": dt}


def _score(case: str, problem, sol, repeats: int) -> dict:
    r = sol.rollout()
    times = []
    for _ in range(repeats):
        times.append(ns.rollout(sol.model, r.scene, sol.dt, problem.domain().time.t1).wall_s)
    errs = sol.errors()
    row = {
        "rel_l2": _velocity_rel_l2(problem, sol),
        "rel_l2_u": errs["rel_l2/u"],
        "rel_l2_v": errs["rel_l2/v"],
        "rollout_s": float(min(times)),
        "steps": int(len(r.times) - 1),
        "dt": float(sol.dt),
        "max_divergence": r.max_divergence(),
        "boundary_rms": r.boundary_rms(sol.config.loss.mirror_walls),
    }
    if case.startswith("cavity"):
        row.update(_ghia(problem, sol))
    return row


def main(argv=None) -> dict:
    a = _args(argv)
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    steps = 30 if a.quick else a.steps
    old = json.loads(a.out.read_text()) if a.out.exists() else {}
    out = {**machine(), "command": _command(a), "steps": steps, "cases": old.get("cases", {})}
    MODELS.mkdir(parents=True, exist_ok=True)
    for case in a.cases.split(","):
        name, params = CASES[case]
        problem = pdekit.problems.get(name, **params)
        rows = out["cases"].setdefault(case, {})
        for cfg in a.configs.split(","):
            sx, sy, st = CONFIGS[cfg]
            path = MODELS / f"{case}_{cfg}.h5"
            train_s = rows.get(cfg, {}).get("train_s")
            if a.rescore:
                sol = pdekit.load(path)
            else:
                over = {"stagger.spatial": (sx, sy), "stagger.temporal": st,
                        "train.steps": steps, "retrain": True}  # fmt: skip
                t0 = time.perf_counter()
                sol = pdekit.solve(name, solver="neural_stagger", overrides=over, verbose=False,
                                   **params)  # fmt: skip
                train_s = time.perf_counter() - t0
                sol.save(path)
            row = _score(case, problem, sol, a.repeats)
            row.update({"spatial": [sx, sy], "temporal": st, "train_s": train_s,
                        "final_loss": float(np.mean(sol.history["loss"][-5:]))})  # fmt: skip
            rows[cfg] = row
            print(case, cfg, json.dumps(row), flush=True)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(out, indent=2))
        cells = problem.stepper_cells
        rows["projection"] = _time_projection(problem, cells, a.repeats)
        print(case, "projection", rows["projection"], flush=True)
        base = rows.get("base")
        for cfg in CONFIGS:
            if cfg in rows and base:
                rows[cfg]["speedup_vs_base"] = base["rollout_s"] / rows[cfg]["rollout_s"]
                rows[cfg]["error_ratio_vs_base"] = rows[cfg]["rel_l2"] / base["rel_l2"]
            if cfg in rows:
                rows[cfg]["speedup_vs_projection"] = (
                    rows["projection"]["rollout_s"] / rows[cfg]["rollout_s"]
                )
        a.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
