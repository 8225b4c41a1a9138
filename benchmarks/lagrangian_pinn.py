"""Lagrangian PINN benchmark: every (case, solver) trained for the same wall-clock budget.

Cases (issue 7): linear convection at beta = 50 and 100, the convection-diffusion Gaussian pulse
and viscous Burgers (nu = 0.01/pi, t in [0, 1]); ``lagrangian_pinn`` on all, ``causal_pinn``
and vanilla ``pinn`` on ``convection_beta50`` and ``burgers``. Issue 33 adds the Lagrangian PINN
paper's own Burgers case, ``burgers_moving_c{0,10,30}`` (u0 = sin x + c on [0, 2 pi), nu = 0.01,
the front travelling at c), with all three solvers; its error is also given relative to the
wave, ``rel_l2_wave`` = ||u - u_ref|| / ||u_ref - c|| (the released code's normaliser).
Each run stops when its budget is spent (``train.time_budget_s``; the causal PINN shares it
among its stages), and is scored by ``Solution.errors()`` on the problem's evaluation grid
against its reference. The peers run at the CPU settings of ``benchmarks/causal_pinn.py`` (the
causal PINN on the moving cases at the preset ``CAUSAL_PRESET`` names). For Burgers the error is
also split at the steep front: rel_l2 on ``|x| < 0.1`` (the shock at x = 0) and on
``|x| >= 0.1``, and per time row (the error map), and the inviscid entropy solution is scored
the same way (``"inviscid_limit"``: what a solver scores that has every characteristic right but
no viscous shock layer).

    OMP_NUM_THREADS=1 python benchmarks/lagrangian_pinn.py --budget 600 --device cpu
    python benchmarks/lagrangian_pinn.py --cases burgers --solvers lagrangian_pinn --budget 60
    python benchmarks/lagrangian_pinn.py --merge a.json,b.json --out both.json  # side-by-side runs
    OMP_NUM_THREADS=1 python benchmarks/lagrangian_pinn.py --budget 600 \
        --cases burgers_moving_c0,burgers_moving_c10,burgers_moving_c30 \
        --out benchmarks/results/lagrangian_pinn_moving.json

Writes ``benchmarks/results/lagrangian_pinn.json`` (``--out``) as
``{"device", "budget_s", "cases": {case: {solver: {"rel_l2", "wall_s", "steps", ...}}}}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pdekit
from pdekit.metrics import field_errors
from pdekit.problems.references.cole_hopf import burgers_sine_inviscid
from pdekit.solvers.causal_pinn import BENCHMARK_PRESET

sys.path.insert(0, str(Path(__file__).resolve().parent))
import causal_pinn as causal_benchmark  # noqa: E402  (the peers' CPU settings)

#: offsets c of the moving-front Burgers cases (issue 33: does the Lagrangian frame win where
#: the front moves?)
MOVING_OFFSETS = (0, 10, 30)
#: case -> (problem, parameters)
CASES = {
    "convection_beta50": ("convection_diffusion/convection", {"beta": 50.0}),
    "convection_beta100": ("convection_diffusion/convection", {"beta": 100.0}),
    "gaussian_pulse": ("convection_diffusion/gaussian_pulse", {}),
    "burgers": ("convection_diffusion/burgers", {"nu": 0.01 / math.pi}),
    # the paper's own Burgers case: u0 = sin x + c on [0, 2 pi), nu = 0.01, the front moving at c
    **{
        f"burgers_moving_c{c}": ("convection_diffusion/burgers_moving", {"c": float(c)})
        for c in MOVING_OFFSETS
    },
}
#: solvers run on each case
SOLVERS = {
    "convection_beta50": ("lagrangian_pinn", "causal_pinn", "pinn"),
    "convection_beta100": ("lagrangian_pinn",),
    "gaussian_pulse": ("lagrangian_pinn",),
    "burgers": ("lagrangian_pinn", "causal_pinn", "pinn"),
    **{f"burgers_moving_c{c}": ("lagrangian_pinn", "causal_pinn", "pinn") for c in MOVING_OFFSETS},
}
#: half-width of the band around the Burgers shock (x = 0) scored separately
FRONT = 0.1


#: per case, the Lagrangian PINN's settings away from its defaults. Burgers weights the state
#: residual by 100 instead of 1 (600 s, one thread, seed 0, rel_l2 / within |x| < 0.1):
#: weight 1 5.72e-2 / 0.151 (full run, 161e95e's host), 30 5.68e-2, 100 5.46e-2 / 0.144, 300 0.30,
#: 1000 0.58; re-measured on this session's host beside a second job: 60 5.53e-2 / 0.146, 100
#: 5.49e-2 / 0.144. A heavier state residual pulls the carried state into the viscous layer a
#: little; more than 100 and the error away from the shock grows. Residual-based adaptive
#: sampling (``sampling.adaptive.method=rad``, the paper's k = 1, c = 1, pool 16384 renewed
#: every 100 steps) was measured and is not used: it moves points into the band, whose error
#: falls (0.136-0.140 against 0.143), but the error outside grows 2-7x (0.011-0.015 against
#: 0.002-0.008), for 5.32e-2, 5.44e-2, 5.33e-2 in all (seeds 0, 1, 2) against 5.43e-2, 5.46e-2
#: (seeds 0, 1) without it: within the spread of seeds. Sharper RAD (prototype runs, seed 0:
#: c = 0 5.91e-2; k = 2, c = 0 9.1e-2) loses more outside than it gains in the band. Without
#: it for 1800 s instead of 600: 5.30e-2 / 0.140. (600 s, one thread, state weight 100,
#: 2026-11-24.)
#: The moving-front cases are the same equation and keep that weight (not tuned on them).
CASE_LAGRANGIAN = {
    "burgers": {"weights.state": 100.0},
    **{f"burgers_moving_c{c}": {"weights.state": 100.0} for c in MOVING_OFFSETS},
}
#: the causal PINN's preset on the moving-front cases (none was tuned on them): the Burgers
#: preset (one window, 128 sorted chunks). Chosen first, before any run, was the convection
#: preset (8 windows marching in time, tuned at beta = 50) wherever the front moves; it failed
#: (600 s, one thread, seed 0, side by side with a second job; rel_l2 / rel_l2 of the wave):
#: c = 10 0.880 / 12.5, c = 30 0.895 / 38.2, its error 0.9 of the field's own norm from t = 0.1
#: on (the offset c lost in the first window), though every window reached eps = 1 with
#: min_w > 0.9 (a 120 s rerun at c = 10). The Burgers preset at
#: c = 10 gave 1.07e-2 / 0.152 after 120 s, so the table runs it at every c.
CAUSAL_PRESET = {f"burgers_moving_c{c}": "convection_diffusion/burgers" for c in MOVING_OFFSETS}


def _overrides(case: str, solver: str, budget: float) -> dict:
    """The Lagrangian PINN at its defaults but for ``CASE_LAGRANGIAN``; the peers as
    ``benchmarks/causal_pinn.py`` runs them on this CPU (network and batch sized for it, the
    causal PINN's chunks), so each solver is compared at its own best-known CPU settings under
    the same clock."""
    if solver == "lagrangian_pinn":
        return {
            "train.steps": 10**9,
            "train.time_budget_s": budget,
            **CASE_LAGRANGIAN.get(case, {}),
        }
    if solver == "causal_pinn" and case in CAUSAL_PRESET:
        clock = {"train.steps": 10**9, "train.log_every": 100, "train.time_budget_s": budget}
        return {**BENCHMARK_PRESET[CAUSAL_PRESET[case]], **clock}
    return causal_benchmark.config_for(solver, budget, case)


def _front_errors(sol) -> dict:
    """rel_l2 near the Burgers front and away from it, and per time (the error map's rows)."""
    pts = sol.problem.evaluation_grid().points()
    return _split_errors(pts, sol(pts)["u"], sol.problem.reference()(pts)["u"])


def _split_errors(pts: np.ndarray, pred: np.ndarray, ref: np.ndarray) -> dict:
    near = np.abs(pts[:, 0]) < FRONT
    out = {
        "rel_l2_front": field_errors({"u": pred[near]}, {"u": ref[near]})["rel_l2"],
        "rel_l2_outside_front": field_errors({"u": pred[~near]}, {"u": ref[~near]})["rel_l2"],
        "front_halfwidth": FRONT,
    }
    times = np.unique(pts[:, 1])
    rows = {}
    for t in times[:: max(1, len(times) // 10)]:
        at = pts[:, 1] == t
        rows[f"{t:.2f}"] = {
            "front": field_errors({"u": pred[at & near]}, {"u": ref[at & near]})["rel_l2"],
            "outside": field_errors({"u": pred[at & ~near]}, {"u": ref[at & ~near]})["rel_l2"],
        }
    out["rel_l2_by_time"] = rows
    return out


def inviscid_limit_errors() -> dict:
    """The Burgers case's errors of the inviscid entropy solution (nu -> 0, Lax-Oleinik) against
    the viscous reference, split as for the solvers: what a solver scores if it learns the
    characteristics and carried states exactly but no viscous shock layer."""
    name, params = CASES["burgers"]
    problem = pdekit.problems.get(name, **params)
    pts = problem.evaluation_grid().points()
    ref = problem.reference()(pts)["u"]
    pred = burgers_sine_inviscid(pts[:, 0], pts[:, 1])
    errors = field_errors({"u": pred}, {"u": ref})
    return {"rel_l2": errors["rel_l2"], "max_abs": errors["max_abs"]} | _split_errors(
        pts, pred, ref
    )


def run_case(case: str, solver: str, budget: float, device: str, seed: int) -> dict:
    name, params = CASES[case]
    t0 = time.perf_counter()
    sol = pdekit.solve(
        name,
        solver=solver,
        device=device,
        seed=seed,
        verbose=False,
        overrides=_overrides(case, solver, budget),
        **params,
    )
    wall = time.perf_counter() - t0
    errors = sol.errors()
    result = {
        "rel_l2": errors["rel_l2"],
        "max_abs": errors["max_abs"],
        "wall_s": wall,
        "steps": int(sol.step),
    }
    if case == "burgers":
        result.update(_front_errors(sol))
    if case.startswith("burgers_moving"):
        result.update(_wave_errors(sol))
    return result


def _wave_errors(sol) -> dict:
    """The moving-front case's error relative to the wave, ||u - u_ref|| / ||u_ref - c|| (the
    released code's normaliser: the offset c dominates ||u_ref||), overall and per time row."""
    problem = sol.problem
    pts = problem.evaluation_grid().points()
    pred, ref = sol(pts)["u"], problem.reference()(pts)["u"]
    out = {"rel_l2_wave": float(np.linalg.norm(pred - ref) / problem.wave_norm(pts))}
    times = np.unique(pts[:, 1])
    rows = {}
    for t in times[:: max(1, len(times) // 10)]:
        at = pts[:, 1] == t
        rows[f"{t:.2f}"] = float(
            np.linalg.norm(pred[at] - ref[at]) / np.linalg.norm(ref[at] - problem.c)
        )
    out["rel_l2_wave_by_time"] = rows
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _names(text: str | None, valid, what: str) -> list[str]:
    if text is None:
        return list(valid)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; valid: {sorted(valid)}")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", help=f"comma-separated, of {list(CASES)} (default: all)")
    all_solvers = sorted({s for v in SOLVERS.values() for s in v})
    ap.add_argument("--solvers", help=f"comma-separated, of {all_solvers} (default: all)")
    ap.add_argument("--budget", type=float, default=600.0, help="seconds per (case, solver)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/lagrangian_pinn.json")
    ap.add_argument(
        "--merge",
        help="comma-separated result files of runs side by side (same budget and device) to "
        "combine into --out, running nothing; each run's command and load are kept",
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge([Path(p) for p in args.merge.split(",")], Path(args.out))
    cases = _names(args.cases, CASES, "case(s)")
    solvers = _names(args.solvers, all_solvers, "solver(s)")

    device = str(pdekit.solvers.training.select_device(args.device))
    started = time.perf_counter()
    results: dict = {}
    for case in cases:
        for solver in (s for s in SOLVERS[case] if s in solvers):
            load = os.getloadavg()[0]
            r = run_case(case, solver, args.budget, device, args.seed)
            # the machine's 1-minute load average before and after the run (2 cores here)
            r["load_before"], r["load_after"] = load, os.getloadavg()[0]
            results.setdefault(case, {})[solver] = r
            print(
                f"{case:20s} {solver:16s} rel_l2 {r['rel_l2']:.3e}  wall {r['wall_s']:7.1f} s  "
                f"steps {r['steps']}",
                flush=True,
            )
    out = {
        "device": device if device != "cpu" else f"cpu ({_cpu_name()})",
        "budget_s": args.budget,
        "cases": results,
        # the floor of an inviscid answer (see inviscid_limit_errors)
        "inviscid_limit": {"burgers": inviscid_limit_errors()} if "burgers" in results else {},
        "settings": {
            f"{c}/{s}": _overrides(c, s, args.budget) for c in results for s in results[c]
        },
        "meta": {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "torch_threads": torch.get_num_threads(),
            "seed": args.seed,
            "total_wall_s": time.perf_counter() - started,
        },
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({out['meta']['total_wall_s']:.0f} s in all)")
    return 0


def merge(parts: list[Path], out_path: Path) -> int:
    """Combine result files of runs side by side into one: cases in the order of ``CASES``,
    solvers in the order of ``SOLVERS``; every part must share the budget and the device."""
    data = [json.loads(p.read_text()) for p in parts]
    for key in ("budget_s", "device"):
        values = {d[key] for d in data}
        if len(values) != 1:
            raise SystemExit(f"the parts differ in {key}: {sorted(values)}")
    cases: dict = {}
    for d in data:
        for case, runs in d["cases"].items():
            cases.setdefault(case, {}).update(runs)
    ordered = {
        c: {s: cases[c][s] for s in SOLVERS[c] if s in cases[c]} for c in CASES if c in cases
    }
    out = {
        "device": data[0]["device"],
        "budget_s": data[0]["budget_s"],
        "cases": ordered,
        "inviscid_limit": {k: v for d in data for k, v in d.get("inviscid_limit", {}).items()},
        "settings": {k: v for d in data for k, v in d["settings"].items()},
        "meta": {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "parts": [{"file": str(p), **d["meta"]} for p, d in zip(parts, data)],
        },
    }
    out_path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {out_path} from {len(parts)} parts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
