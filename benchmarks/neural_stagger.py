"""NeuralStagger (Huang et al., ICML 2023) beside its undecomposed base solver (Wandel et al.,
ICLR 2021) and our projection solver, on the same MAC grid.

For each case and configuration (spatial pieces s_x x s_y, temporal block s_t):

* train ``neural_stagger`` for the same ``--steps`` (same batch, pool, schedule and seed; no
  solution data), recording the training wall time;
* roll the case's own scene out from rest over its horizon (batched pieces on one device) and
  score it against the problem's reference: relative L2 of u, v (and their combination) over the
  problem's evaluation grid at matched times, the divergence and the boundary residual;
  cavity: the centrelines at the final time against Ghia et al. (1982), Re = 100;
  cylinder (DFG 2D-2, Re = 100): drag and lift on the cylinder, Strouhal number, c_D max and
  c_L max from the rollout's MAC frames by the problem's ``trajectory_quantities`` (control
  volume), the same function scoring the projection solver's frames at the same times; the
  time-mean velocity over the second half against the reference's (phase-free), and the
  relative L2 per evaluation time;
* time the rollouts (``--repeats``, best) and the projection solver over the same horizon on
  the same scene (its own stable step; the cylinder's: the step of the problem's reference),
  after the training, in interleaved rounds (one run of each per round: a machine shared with
  other jobs slows them alike).

Configurations: ``base`` (1, 1, 1), ``s2x2_t1``, ``s2x2_t2``, ``s4x4_t1``; all U-Nets width 20,
depth 3, except the cylinder's ``s4x4_t1`` (depth 2: the channel's 224 x 48 layout splits into
4 x 4 pieces of 56 x 12 cells, which 2**3 does not divide; :data:`EXTRA`); longer temporal
blocks (:data:`MORE_CONFIGS`) when named. ``--life L`` gives every configuration the same replay
life in time steps (``scenes.mean_life = L / s_t``: an advance covers s_t steps).
Results: ``benchmarks/results/neural_stagger.json`` (per case under ``runs``: command, steps,
load averages before and after); models under ``runs/bench_neural_stagger`` (``--rescore``
scores and times them again without training, ``--retime`` times them only; ``--ship
CASE:CONFIG`` copies one into the package's model store, weights only, and rewrites its index).

    python benchmarks/neural_stagger.py --cases cavity_re100 --steps 1500     # ~15 min, 2 cores
    python benchmarks/neural_stagger.py --cases cylinder_re100 --steps 1000   # ~60 min, 2 cores
    python benchmarks/neural_stagger.py --cases cavity_re100 --steps 3000 --life 400 \
        --configs base,s2x2_t2,s2x2_t4,s2x2_t8,s2x2_t16 \
        --out benchmarks/results/neural_stagger_cavity_life.json             # ~70 min
    python benchmarks/neural_stagger.py --quick --out /tmp/ns.json
    python benchmarks/neural_stagger.py --ship cylinder_re100:s2x2_t1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pdekit
from pdekit import store
from pdekit.problems.mac_forces import upward_crossings
from pdekit.problems.navier_stokes import cylinder as cyl
from pdekit.problems.references.projection import ProjectionSolver, stable_dt
from pdekit.problems.references.projection3d import ProjectionSolver3d, stable_dt3d
from pdekit.solvers import neural_stagger as ns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operators import _command, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "neural_stagger.json"
MODELS = ROOT.parent / "runs" / "bench_neural_stagger"
#: configuration -> (s_x, s_y, s_t)
CONFIGS = {"base": (1, 1, 1), "s2x2_t1": (2, 2, 1), "s2x2_t2": (2, 2, 2), "s4x4_t1": (4, 4, 1)}
#: beyond the issue's three, run only when named (--configs): longer temporal blocks
MORE_CONFIGS = {"s2x2_t4": (2, 2, 4), "s2x2_t8": (2, 2, 8), "s2x2_t16": (2, 2, 16)}
#: case -> (problem, parameters)
CASES = {
    "cavity_re100": ("navier_stokes/cavity_transient", {"re": 100.0, "t_end": 10.0}),
    # t_end 8: the reference's lift oscillation grows from t ~ 1 and is saturated by t ~ 4;
    # trajectory_quantities takes St and the maxima over the last 5 periods of the second half
    "cylinder_re100": ("navier_stokes/cylinder", {"re": 100.0, "t_end": 8.0}),
    # 3D: the periodic duct with a sphere, driven from rest by a body force (s_z = s_y)
    "duct_sphere": ("navier_stokes/duct_sphere", {"t_end": 2.0}),
}
#: (case, configuration) -> overrides beyond the decomposition and the steps
EXTRA = {
    ("cylinder_re100", "s4x4_t1"): {"network.depth": 2},
    ("duct_sphere", "s4x4_t1"): {"network.depth": 2},  # 4 x 4 x 4 pieces of 8 x 4 x 4 cells
}
#: case -> the projection solver's step: stable_dt(speed, cfl) times factor
PROJECTION = {
    "cavity_re100": {"speed": 1.0, "cfl": 0.5, "factor": 0.9},
    "cylinder_re100": {"speed": 2.0 * cyl.U_MAX, "cfl": 0.5, "factor": 1.0},  # the reference's
    "duct_sphere": {"speed": 2.0, "cfl": 0.5, "factor": 1.0},  # max |u| 1.37 at t = 2 (measured)
}
#: a rollout "sheds" when, over the second half, its lift oscillates by at least this much
#: (peak to peak; the reference: 1.88) with upward crossings of its mean at least this regular
#: (std / mean of the last periods; the reference: < 0.01)
SHED_LIFT_PTP, SHED_PERIOD_CV = 0.1, 0.1
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
    p.add_argument(
        "--retime",
        action="store_true",
        help="time saved models and the projection again, keep the scores",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training override for every configuration (VALUE read as JSON when it parses), "
        "e.g. --set scenes.start=inflow --set loss.moving_weight=30; recorded in each row",
    )
    p.add_argument("--models", type=Path, default=MODELS, help="where trained models are kept")
    p.add_argument("--note", default="", help="recorded with the case's run (e.g. the budget)")
    p.add_argument(
        "--ranks",
        type=int,
        default=0,
        help="also time each model's rollout with its pieces spread over this many gloo "
        "processes under torchrun (one thread each; 0: skip)",
    )
    p.add_argument(
        "--life",
        type=float,
        default=0.0,
        help="the replay pool's mean life in time steps: scenes.mean_life = LIFE / s_t for "
        "each configuration (an advance covers s_t steps; 0: the configuration's default); "
        "recorded in each row's overrides",
    )
    p.add_argument("--rank-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--ship",
        default="",
        metavar="CASE:CONFIG",
        help="copy that saved model into pdekit/model_store (no training) and exit",
    )
    a = p.parse_args(argv)
    a.overrides = {}
    for item in a.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            p.error(f"--set needs KEY=VALUE; got {item!r}")
        try:
            a.overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            a.overrides[key] = value
    return a


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
    """||(u, v[, w]) - ref|| / ||ref|| over the evaluation grid (all times)."""
    pts = problem.evaluation_grid().points()
    ref, got = problem.reference()(pts), sol(pts)
    comps = [k for k in ("u", "v", "w") if k in problem.fields]
    num = sum(np.sum((got[k] - ref[k]) ** 2) for k in comps)
    den = sum(np.sum(ref[k] ** 2) for k in comps)
    return float(np.sqrt(num / den))


def _rel_l2_by_time(problem, sol) -> dict:
    """Relative L2 of (u, v) per evaluation time, and of the time-mean velocity over the second
    half of the horizon (phase-free: a shedding flow's pointwise error grows with any phase
    drift, its mean flow's does not)."""
    grid = problem.evaluation_grid()
    pts = grid.points()
    ref, got = problem.reference()(pts), sol(pts)
    shape = grid.shape  # (x, y, t)
    t = grid.axes["t"]
    num = sum((got[k] - ref[k]).reshape(shape) ** 2 for k in ("u", "v")).sum((0, 1))
    den = sum(ref[k].reshape(shape) ** 2 for k in ("u", "v")).sum((0, 1))
    late = t >= t[0] + 0.5 * (t[-1] - t[0])
    mean_num = sum(
        (got[k].reshape(shape)[..., late] - ref[k].reshape(shape)[..., late]).mean(-1) ** 2
        for k in ("u", "v")
    ).sum()
    mean_den = sum(ref[k].reshape(shape)[..., late].mean(-1) ** 2 for k in ("u", "v")).sum()
    return {
        "rel_l2_mean_flow": float(np.sqrt(mean_num / mean_den)),
        "rel_l2_by_time": {"t": t.tolist(), "rel_l2": np.sqrt(num / den).tolist()},
    }


def _none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _shedding(problem, scene, times, u, v, p) -> dict:
    """The cylinder's quantities of a MAC trajectory by ``problem.trajectory_quantities``
    (control volume): St, c_D max, c_L max over the last periods of the second half, the mean
    drag and the lift's peak to peak over the second half, the regularity of the lift's periods;
    St and the maxima are null (with ``strouhal_reason``) where the lift does not shed
    (:data:`SHED_LIFT_PTP`, :data:`SHED_PERIOD_CV`), the numbers periodic_summary found then in
    ``*_unperiodic``."""
    q = problem.trajectory_quantities(u, v, p, times, scene)
    t, c_d, c_l = q["t"], q["c_d"], q["c_l"]
    late = t >= t[0] + 0.5 * (t[-1] - t[0])
    up = upward_crossings(t[late], c_l[late]) if late.sum() > 2 else np.zeros(0)
    periods = np.diff(up[-(cyl.PERIODS + 1) :])
    cv = float(periods.std() / periods.mean()) if periods.size >= 2 else math.nan
    ptp = float(np.ptp(c_l[late]))
    out = {
        "strouhal": _none(q["strouhal"]),
        "c_d_max": _none(q["c_d_max"]),
        "c_l_max": _none(q["c_l_max"]),
        "c_d_mean": _none(float(c_d[late].mean())),
        "c_l_mean": _none(float(c_l[late].mean())),
        "c_l_ptp": _none(ptp),
        "lift_crossings": int(up.size),
        "period_cv": _none(cv),
        "series": {
            "t": t[::5].tolist(),
            "c_d": [_none(x) for x in c_d[::5]],
            "c_l": [_none(x) for x in c_l[::5]],
        },
    }
    why = []
    if not (ptp >= SHED_LIFT_PTP):
        why.append(f"lift peak to peak {ptp:.3g} < {SHED_LIFT_PTP} over t >= {t[late][0]:.2f}")
    if up.size < 3 or not (cv <= SHED_PERIOD_CV):
        why.append(
            f"{up.size} upward crossings of its mean, period std/mean {cv:.3g} "
            f"(needs >= 3 and <= {SHED_PERIOD_CV})"
        )
    if not np.isfinite(c_l).all():
        why.append("non-finite forces (the rollout blew up)")
    out["sheds"] = not why
    if why:
        for k in ("strouhal", "c_d_max", "c_l_max"):
            out[f"{k}_unperiodic"] = out[k]
            out[k] = None
        out["strouhal_reason"] = "no periodic shedding: " + "; ".join(why)
    return out


def _start_up(problem, sol, r) -> dict:
    """Why a cylinder rollout does or does not shed, measured on its start-up (t <= 1): the
    inflow face's relative residual, the flux through mid-channel over the inflow's, the physics
    loss along the rollout (every 10th step) beside the loss of the flow at rest on the same
    scene, and the training's last pool age and loss terms."""
    scene, dt = r.scene, float(sol.dt)
    n = problem.stepper_cells
    k = min(len(r.times) - 1, round(1.0 / dt))
    u_in = cyl.inflow(scene.grid.axis(1, "center")[1 : n + 1])
    mid = int(np.argmin(np.abs(scene.grid.axis(0, "node") - 0.5 * cyl.LENGTH)))
    batch = ns.SceneBatch.of([scene])
    a = torch.as_tensor(r.a, dtype=torch.float32)
    p = torch.as_tensor(r.p, dtype=torch.float32)
    w = sol.config.loss.boundary_weight

    def loss(a0, a1, p1) -> float:
        t = ns.physics_terms(problem, scene.grid, batch, a0, a1, p1, dt)
        return float(ns.stagger_loss(t, w))

    along = [
        loss(a[None, i], a[None, i + 1 : i + 2], p[None, i + 1 : i + 2]) for i in range(0, k, 10)
    ]
    rest = loss(torch.zeros_like(a[None, 0]), torch.zeros_like(a[None, None, 0]),
                torch.zeros_like(p[None, None, 0]))  # fmt: skip
    hist = sol.history
    return {
        "t": float(r.times[k]),
        "inflow_rel_residual": float(
            np.linalg.norm(r.u[k, 1, 1 : n + 1] - u_in) / np.linalg.norm(u_in)
        ),
        "flux_mid_channel_over_inflow": float(r.u[k, mid, 1 : n + 1].sum() / u_in.sum()),
        "max_fluid_speed": float(np.abs(r.u[k][scene.roles["u"].numpy() == 0]).max()),
        "loss_along_rollout": float(np.mean(along)),
        "loss_at_rest": rest,
        "pool_mean_age_end": float(hist["mean_age"][-1]) if hist.get("mean_age") else None,
        "final_nav": float(np.mean(hist["loss/nav"][-5:])) if hist.get("loss/nav") else None,
        "final_bound": float(np.mean(hist["loss/bound"][-5:])) if hist.get("loss/bound") else None,
    }


def _projection(case: str, problem, cells: int, frame_dt: float):
    """A function running the projection solver from rest over the horizon on the case's scene
    at ``cells`` (its own stable step) and returning (seconds, Snapshots, dt); the cylinder's
    frames every ``frame_dt`` (the networks' step)."""
    scene = problem.mac_scene(cells)
    nu = float(getattr(problem, "nu", None) or 1.0 / problem.re)
    how = PROJECTION[case]
    three = scene.grid.dim == 3
    limit = (stable_dt3d if three else stable_dt)(scene, nu, speed=how["speed"], cfl=how["cfl"])
    dt = how["factor"] * limit
    t_end = problem.domain().time.t1
    times = None
    if case.startswith("cylinder"):
        times = frame_dt * np.arange(round(t_end / frame_dt) + 1)
    zero = np.zeros(scene.grid.n)

    def run():
        t0 = time.perf_counter()
        if three:
            out = ProjectionSolver3d(scene, nu, dt).run((zero, zero, zero), t_end, times)
        else:
            out = ProjectionSolver(scene, nu, dt).run(zero, zero, t_end, times)
        return time.perf_counter() - t0, out, dt

    return run


def _timings(case: str, problem, models: dict, repeats: int) -> dict:
    """Rollout seconds of every configuration's network (``models``: config -> (model, dt))
    and of the projection solver, ``repeats`` rounds interleaved (one of each per round, so a
    load that comes and goes meets them alike); best and all. The projection's row also holds
    its frames' quantities (cylinder: :func:`_shedding`, the same scoring as the networks')."""
    t_end = problem.domain().time.t1
    scene = problem.mac_scene(problem.stepper_cells)
    project = _projection(case, problem, problem.stepper_cells, float(problem.stepper_dt))
    seconds: dict[str, list[float]] = {cfg: [] for cfg in [*models, "projection"]}
    for _ in range(repeats):
        for cfg, (model, dt) in models.items():
            seconds[cfg].append(float(ns.rollout(model, scene, dt, t_end).wall_s))
        wall, run, dt = project()
        seconds["projection"].append(float(wall))
    out = {cfg: {"rollout_s": min(s), "rollout_s_all": s} for cfg, s in seconds.items()}
    proj = out["projection"]
    proj.update({"steps": int(run.steps), "dt": dt})
    if case.startswith("cylinder"):
        proj.update(_shedding(problem, scene, run.t, run.u, run.v, run.p))
        ref = problem.reference_trajectory_quantities()
        proj["reference_per_step"] = {
            "strouhal": ref["strouhal"],
            "c_d_max": ref["c_d_max"],
            "c_l_max": ref["c_l_max"],
            "note": "the problem's reference run (same solver and scene, forces at every step)",
        }
    return out


def _rank_worker(a) -> None:
    """Under torchrun (``--rank-worker``): each configuration's saved model rolled out with its
    pieces spread over the processes (:func:`~pdekit.solvers.neural_stagger.rollout` with
    ``dist``), one thread each, after one warm-up; per repeat the slowest process's seconds;
    rank 0 also rolls out batched in one process (one thread) and records the largest
    difference of the final potential (the spread rollout must equal it)."""
    from pdekit.solvers import distributed

    torch.set_num_threads(1)
    case = a.cases.split(",")[0]
    name, params = CASES[case]
    problem = pdekit.problems.get(name, **params)
    scene = problem.mac_scene(problem.stepper_cells)
    t_end = problem.domain().time.t1
    out = {}
    with distributed.launched("cpu") as dist:
        for cfg in a.configs.split(","):
            sol = pdekit.load(a.models / f"{case}_{cfg}.h5")
            model, dt = sol.model, float(sol.dt)
            ns.rollout(model, scene, dt, t_end, dist=dist)  # warm-up
            seconds = []
            for _ in range(a.repeats):
                torch.distributed.barrier()
                r = ns.rollout(model, scene, dt, t_end, dist=dist)
                wall = torch.tensor([r.wall_s], dtype=torch.float64)
                torch.distributed.all_reduce(wall, op=torch.distributed.ReduceOp.MAX)
                seconds.append(float(wall))
            if dist.rank == 0:
                batched = ns.rollout(model, scene, dt, t_end)
                out[cfg] = {
                    "rollout_ranks_s": min(seconds),
                    "rollout_ranks_s_all": seconds,
                    "ranks": dist.world_size,
                    "rollout_1thread_s": float(batched.wall_s),
                    "ranks_max_abs_diff": float(np.abs(batched.a[-1] - r.a[-1]).max()),
                }
        if dist.rank == 0:
            a.worker_out.write_text(json.dumps(out))


def _rank_timings(a, case: str, configs: list[str]) -> dict:
    """:func:`_rank_worker` launched under torchrun on ``a.ranks`` processes."""
    import subprocess

    out_file = a.models / f"{case}_ranks.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={a.ranks}", str(Path(__file__).resolve()), "--rank-worker",
           "--cases", case, "--configs", ",".join(configs), "--models", str(a.models),
           "--repeats", str(a.repeats), "--worker-out", str(out_file)]  # fmt: skip
    subprocess.run(cmd, env=env, check=True)
    return json.loads(out_file.read_text())


def _score(case: str, problem, sol) -> dict:
    r = sol.rollout()
    errs = sol.errors()
    row = {
        "rel_l2": _velocity_rel_l2(problem, sol),
        "rel_l2_u": errs["rel_l2/u"],
        "rel_l2_v": errs["rel_l2/v"],
        **({"rel_l2_w": errs["rel_l2/w"]} if "rel_l2/w" in errs else {}),
        "steps": int(len(r.times) - 1),
        "network_calls": int(len(r.times) - 1) // sol.config.stagger.temporal,
        "dt": float(sol.dt),
        "max_divergence": r.max_divergence(),
        "boundary_rms": r.boundary_rms(sol.config.loss.mirror_walls),
    }
    if case.startswith("cavity"):
        row.update(_ghia(problem, sol))
    if case.startswith("cylinder"):
        row.update(_rel_l2_by_time(problem, sol))
        row.update(_shedding(problem, r.scene, r.times, r.u, r.v, r.p))
        row["start_up"] = _start_up(problem, sol, r)
    return row


def ship(spec: str, models: Path = MODELS, results: Path = RESULTS) -> Path:
    """Copy the saved model of ``CASE:CONFIG`` into the package's model store, weights only
    (a shipped model answers, it is not resumed), named as the solver names its store models,
    with the benchmark's command; rewrite the store's index."""
    case, cfg = spec.split(":")
    path = models / f"{case}_{cfg}.h5"
    ckpt = store.load(store.describe(path))
    ckpt.trainer = None
    command = json.loads(results.read_text())["runs"][case]["command"]
    command = re.sub(r" --note .*?(?= --|$)", "", command)  # the budget note stays in the JSON
    problem_name, params = CASES[case]
    problem = pdekit.problems.get(problem_name, **params)
    config = ns.from_dict(ns.NeuralStaggerConfig, ckpt.solver_config)
    solve = (
        f"pdekit.solve({problem_name!r}, solver='neural_stagger', "
        f"overrides={ns._overrides(config)!r}, **{params!r})"
    )
    ckpt.extras = {
        **ckpt.extras,
        "training_command": f"{command}  # configuration {cfg}: {solve} (torch threads 2)",
    }
    name = ns.NeuralStaggerSolver()._store_name(problem, config)
    saved = store.save(ckpt, name, directory=store.SHIPPED_DIR)
    if saved.size > store.MAX_SHIPPED_BYTES:
        saved.path.unlink()
        raise SystemExit(f"{path} is larger than the store's {store.MAX_SHIPPED_BYTES} bytes")
    store.write_index()
    print(f"shipped {saved.line()}")
    return saved.path


def main(argv=None) -> dict:
    a = _args(argv)
    if a.rank_worker:
        _rank_worker(a)
        return {}
    if a.ship:
        ship(a.ship, a.models, a.out)
        return {}
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    steps = 30 if a.quick else a.steps
    old = json.loads(a.out.read_text()) if a.out.exists() else {}
    runs = old.get("runs", {})
    if "runs" not in old:  # a file from before per-case runs: its head describes all its cases
        for case in old.get("cases", {}):
            runs[case] = {k: old[k] for k in ("command", "steps", "device") if k in old}
    again = a.rescore or a.retime
    out = {**machine(), "command": _command(a), "steps": None if again else steps,
           "cases": old.get("cases", {}),
           "runs": runs}  # fmt: skip
    a.models.mkdir(parents=True, exist_ok=True)
    for case in a.cases.split(","):
        name, params = CASES[case]
        problem = pdekit.problems.get(name, **params)
        rows = out["cases"].setdefault(case, {})
        run = out["runs"].setdefault(case, {})
        if again:  # the run's record stays that of its training
            log = run.setdefault("retime" if a.retime else "rescore", {})
            log.update(command=_command(a), device=out["device"])
        else:
            log = run
            run.update(command=_command(a), steps=steps, device=out["device"])
            if a.note:
                run["note"] = a.note
        log["load_before"] = list(os.getloadavg())
        models = {}
        for cfg in a.configs.split(","):
            sx, sy, st = {**CONFIGS, **MORE_CONFIGS}[cfg]
            path = a.models / f"{case}_{cfg}.h5"
            train_s = rows.get(cfg, {}).get("train_s")
            train_cpu_s = rows.get(cfg, {}).get("train_cpu_s")
            extra = {**EXTRA.get((case, cfg), {}), **a.overrides}
            if a.life:
                extra["scenes.mean_life"] = a.life / st
            if again and "overrides" in rows.get(cfg, {}):  # the training's, not this run's
                extra = rows[cfg]["overrides"]
            load_before = list(os.getloadavg())
            if a.retime:
                sol = pdekit.load(path)
                models[cfg] = (sol.model, float(sol.dt))
                continue
            if a.rescore:
                sol = pdekit.load(path)
            else:
                over = {"stagger.spatial": (sx, sy), "stagger.temporal": st,
                        "train.steps": steps, "retrain": True, **extra}  # fmt: skip
                t0, c0 = time.perf_counter(), time.process_time()
                sol = pdekit.solve(name, solver="neural_stagger", overrides=over, verbose=False,
                                   **params)  # fmt: skip
                train_s = time.perf_counter() - t0
                train_cpu_s = time.process_time() - c0  # this process, all threads
                sol.save(path)
            row = _score(case, problem, sol)
            models[cfg] = (sol.model, float(sol.dt))
            factors = sol.config.stagger.factors(problem.domain().space.dim)
            row.update({"spatial": list(factors), "temporal": st, "train_s": train_s,
                        "train_cpu_s": train_cpu_s,
                        "train_steps": int(sol.step), "overrides": extra,
                        "load_before": load_before, "load_after": list(os.getloadavg()),
                        "final_loss": float(np.mean(sol.history["loss"][-5:]))})  # fmt: skip
            for k in ("rollout_s", "rollout_s_all"):  # until the timings below
                if k in rows.get(cfg, {}):
                    row[k] = rows[cfg][k]
            rows[cfg] = row
            print(case, cfg, json.dumps(row), flush=True)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(out, indent=2))
        log["timing_load_before"] = list(os.getloadavg())
        timed = _timings(case, problem, models, a.repeats)
        log["timing_load_after"] = list(os.getloadavg())
        rows["projection"] = timed.pop("projection")
        for cfg, t in timed.items():
            rows[cfg].update(t)
            print(case, cfg, "rollout", json.dumps(t), flush=True)
        if a.ranks > 1:
            log["ranks_load_before"] = list(os.getloadavg())
            for cfg, t in _rank_timings(a, case, list(timed)).items():
                rows[cfg].update(t)
                print(case, cfg, "ranks", json.dumps(t), flush=True)
        print(case, "projection", json.dumps(rows["projection"]), flush=True)
        base = rows.get("base")
        for cfg in {**CONFIGS, **MORE_CONFIGS}:
            if cfg in rows and base:
                rows[cfg]["speedup_vs_base"] = base["rollout_s"] / rows[cfg]["rollout_s"]
                rows[cfg]["error_ratio_vs_base"] = rows[cfg]["rel_l2"] / base["rel_l2"]
            if cfg in rows:
                rows[cfg]["speedup_vs_projection"] = (
                    rows["projection"]["rollout_s"] / rows[cfg]["rollout_s"]
                )
        log["load_after"] = list(os.getloadavg())
        run["train_s_total"] = sum(
            rows[c].get("train_s") or 0.0 for c in {**CONFIGS, **MORE_CONFIGS} if c in rows
        )
        a.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
