"""Physics-constrained FNOs without solution data (Chalapathi, Du & Krishnapriyan, ICLR 2024):
``fno_soft`` (PI-SC), ``moe_hard`` with one expert (PI-HC) and with four (PI-HC-MoE), in one run
(and the MoE with the PDE left out of the first two snapshots, our knob, beside the paper's
setting).

Diffusion-sorption (family ``diffusion_sorption``: PDEBench's initial values, our finite-volume
reference), on ``--grid`` cells and the family's 101 times (0..500 s). Sections:

* ``cases.diffusion_sorption``: each variant trained for the same ``--steps`` (same batch,
  schedule and seed; the training split's initial states only), then scored on the first
  ``--n-test`` members of the test split: the true relative L2 error over space and time of the
  predicted snapshots (t > 0), mean and standard deviation over members; the training wall time;
  seconds of inference per trajectory; for the hard models the LM iterations and the members
  whose fit did not converge (counted, used as they stand).
* ``scaling``: seconds per training step (forward, LM, implicit backward, Adam) and per
  inference of an untrained PI-HC and MoE (4 experts) on the paper's grid (1024 cells x 101
  times, batch ``--scaling-batch``) against the number of sampled PDE points, the same total for
  both (MoE: a quarter per expert). Plot: ``benchmarks/results/moe_hard.png``.

``--ship`` writes the MoE model's weights into ``pdekit/model_store``.
Results: ``benchmarks/results/moe_hard.json``.

``--case navier_stokes``: the paper's Navier-Stokes case (family ``decaying_turbulence``: nu =
1e-4, T = 5, Gaussian random initial vorticity, no forcing), CPU-sized: ``--ns-grid`` cells per
axis and the family's 11 times, N = 64 basis functions, the paper's built-in initial condition
(u = w0 + (t/T) (b - <b>) . omega; for PI-SC w0 + (t/T) (v - <v>), v the network's output), LM
from omega = 0 with tolerance 1e-7 (the paper's NS); PI-SC, PI-HC (one expert) and
PI-HC-MoE (2 x 2 in space), each trained for the same wall-clock budget ``--ns-minutes`` (the
steps reached are recorded), scored on the first ``--ns-n-test`` test members as above, beside
persistence (w(t) = w0) for scale. Merged into the results file as ``cases.navier_stokes``
(the diffusion-sorption rows are kept); ``--ns-scaling`` adds seconds per training step and
inference against the sampled points (``navier_stokes_scaling``); ``--ns-scaling-only`` runs
just those (on the same untrained models as ``--ns-scaling``; each row records the LM
iterations the timed steps took) and keeps the rest of the file (plot
``benchmarks/results/moe_hard_ns.png``).

    python benchmarks/moe_hard.py --case navier_stokes --ns-minutes 10 --ns-scaling

    python benchmarks/moe_hard.py                      # train all three, score, time (~1.5 h)
    python benchmarks/moe_hard.py --quick --out /tmp/m.json   # a smoke run
    python benchmarks/moe_hard.py --rescore            # score the saved models again
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

from pdekit import api, store
from pdekit.metrics import rel_l2
from pdekit.problems.datasets import Dataset
from pdekit.problems.family import families
from pdekit.solvers.fno import train_family
from pdekit.solvers.moe_hard import (
    BasisNetworkConfig,
    ConstraintConfig,
    PhysicsConfig,
    PhysicsFNO,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operators import _command, machine, ship  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "moe_hard.json"
FAMILY = "diffusion_sorption"
#: variant -> (solver, experts per axis (t, x) or None, other settings); "moe_pde_from_2" is
#: the MoE with the PDE left out of the first two snapshots (physics.pde_start = 2, our knob;
#: the default is the paper's 0)
VARIANTS = {"fno_soft": ("fno_soft", None, {}), "pi_hc": ("moe_hard", (1, 1), {}),
            "moe": ("moe_hard", (1, 4), {}),
            "moe_pde_from_2": ("moe_hard", (1, 4), {"physics.pde_start": 2})}  # fmt: skip
#: the paper's numbers (Table 1, DS: rel. L2 on the test split, mean +- std)
PAPER = {"fno_soft": [0.8593, 0.0507], "pi_hc": [0.0755, 0.0810], "moe": [0.0360, 0.0293],
         "moe_pde_from_2": [0.0360, 0.0293]}  # fmt: skip


NS_FAMILY = "decaying_turbulence"
#: NS variants: solver, experts per axis (t, x, y) or None
NS_VARIANTS = {"fno_soft": ("fno_soft", None), "pi_hc": ("moe_hard", (1, 1, 1)),
               "moe": ("moe_hard", (1, 2, 2))}  # fmt: skip
#: the paper's NS numbers (Sec. 4: rel. L2 on the 256^2 x 64 test set, mean +- std)
NS_PAPER = {"fno_soft": [0.18081, 0.03740], "pi_hc": [0.11754, 0.02951],
            "moe": [0.08298, 0.02345]}  # fmt: skip


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=("diffusion_sorption", "navier_stokes"),
                   default="diffusion_sorption")  # fmt: skip
    p.add_argument("--ns-grid", type=int, default=32)
    p.add_argument("--ns-minutes", type=float, default=10.0, help="training budget per variant")
    p.add_argument("--ns-points", type=int, default=500, help="PDE points per expert (NS)")
    p.add_argument("--ns-batch", type=int, default=2)
    p.add_argument("--ns-n-train", type=int, default=500)
    p.add_argument("--ns-n-valid", type=int, default=8)
    p.add_argument("--ns-n-test", type=int, default=50)
    p.add_argument("--ns-eval-every", type=int, default=50)
    p.add_argument("--ns-width", type=int, default=16)
    p.add_argument("--ns-modes", type=int, default=6)
    p.add_argument("--ns-scaling", action="store_true")
    p.add_argument(
        "--ns-scaling-only",
        action="store_true",
        help="with --case navier_stokes: only the scaling rows (untrained models), merged into "
        "--out beside the rows already there",
    )
    p.add_argument("--ns-scaling-points", default="250,1000,4000")
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--n-train", type=int, default=900)
    p.add_argument("--n-valid", type=int, default=50)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--points", type=int, default=4000, help="PDE points per expert")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--scaling-points", default="100,1000,10000,100000")
    p.add_argument("--scaling-batch", type=int, default=2)
    p.add_argument("--scaling-grid", type=int, default=1024)
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument(
        "--rescore",
        action="store_true",
        help="score the models a previous run saved (named in --out's JSON) again, keeping "
        "its training times and scaling rows; no training",
    )
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny budget")
    p.add_argument("--ship", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.n_train, a.n_valid, a.n_test = 20, 24, 6, 6
        a.scaling_points, a.scaling_grid = "100,1000", 64
        a.ns_minutes, a.ns_n_train, a.ns_n_valid, a.ns_n_test = 0.5, 8, 2, 4
        a.ns_grid, a.ns_scaling_points = 16, "100,400"
    return a


def _overrides(a, experts) -> dict:
    out = {
        "dataset.grid": a.grid,
        "dataset.n_train": a.n_train,
        "dataset.n_valid": a.n_valid,
        "dataset.eval_every": max(1, min(200, a.steps // 10)),
        "train.steps": a.steps,
    }
    if experts is not None:
        out.update({"constraint.experts": list(experts), "constraint.points": a.points})
    return out


def _stats(values) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def evaluate(model: PhysicsFNO, test: Dataset, n: int, from_t10: bool = True) -> dict:
    """Scores of ``model`` on the first ``n`` test members (module docstring)."""
    data = test.trajectories[:n]
    x = torch.as_tensor(data[:, :1])
    model.eval()
    model.lenient = True  # count unconverged fits instead of refusing them
    param = next(model.parameters())
    errors, iters, unconverged, seconds, preds = [], [], 0, 0.0, []
    with torch.no_grad():
        for i in range(n):
            t0 = time.perf_counter()
            pred = model(x[i : i + 1].to(param.dtype)).double().numpy()[0]
            seconds += time.perf_counter() - t0
            preds.append(pred)
            errors.append(rel_l2(pred, data[i, 1:].astype(np.float64)))
            if model.last_solve:
                iters.extend(model.last_solve["iterations"].reshape(-1).tolist())
                unconverged += int((~model.last_solve["converged"]).any())
    out = {"rel_l2": _stats(errors), "infer_s": seconds / n, "members": n}
    # where the error lives: per predicted snapshot (over the members), and over the snapshots
    # from t = 10 s on (after the initial jump; where pde_start = 2 imposes the PDE)
    pred_all = np.concatenate([p[None] for p in preds])
    ref_all = data[:, 1:].astype(np.float64)
    rest = tuple(i for i in range(ref_all.ndim) if i != 1)  # all but time
    per_t = np.sqrt(((pred_all - ref_all) ** 2).sum(axis=rest) / (ref_all**2).sum(axis=rest))
    out["rel_l2_by_time"] = {f"{t:g}": float(e) for t, e in zip(test.times[1:], per_t)}
    if from_t10:  # diffusion-sorption's snapshots after the first (t >= 10 s)
        out["rel_l2_from_t10"] = _stats([rel_l2(p[1:], r[1:]) for p, r in zip(preds, ref_all)])
    if iters:
        out.update({"lm_iterations": _stats(iters), "unconverged_members": unconverged})
    model.lenient = False
    return out


def section_cases(a) -> dict:
    test = Dataset.generate(FAMILY, "test", a.n_test, grid=a.grid, progress=False)
    out = {}
    for name in a.variants.split(","):
        solver, experts, extra = VARIANTS[name]
        t0 = time.perf_counter()
        sol = train_family(
            FAMILY, None, {**_overrides(a, experts), **extra}, solver=solver, verbose=True,
            command=_command(a) + f"  # variant {name}",
        )  # fmt: skip
        train_s = time.perf_counter() - t0
        saved = store.save(sol, f"{solver}_{FAMILY}_{a.grid}_{name}", command=_command(a))
        row = evaluate(sol.model, test, a.n_test)
        row.update({"train_s": train_s, "steps": a.steps, "model": saved.path.name})
        row["paper_rel_l2"] = PAPER[name]
        out[name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)
    return out


def _step_seconds(model: PhysicsFNO, x: torch.Tensor, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of a training step and of an inference of ``model`` on ``x``."""
    from pdekit.solvers.moe_hard import physics_loss

    opt = torch.optim.Adam(model.parameters(), 1e-3)
    steps, infers = [], []
    for r in range(repeats + 1):
        model.train()
        t0 = time.perf_counter()
        u = model.full(x)
        loss = sum(physics_loss(model, u, x[:, 0, ..., 0]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        model.eval()
        model.lenient = True
        with torch.no_grad():
            model(x)
        t2 = time.perf_counter()
        if r:  # the first is a warm-up
            steps.append(t1 - t0)
            infers.append(t2 - t1)
    return float(np.median(steps)), float(np.median(infers))


def section_scaling(a) -> list[dict]:
    fam = families.get(FAMILY)
    grid = fam.make_grid(a.scaling_grid)
    times = np.asarray(fam.times)
    problem = fam.template()
    gen = torch.Generator().manual_seed(0)
    x = 0.2 * torch.rand(a.scaling_batch, 1, a.scaling_grid, 1, generator=gen)
    rows = []
    for points in (int(p) for p in a.scaling_points.split(",")):
        row = {"case": FAMILY, "points": points, "grid": [len(times), a.scaling_grid]}
        for name, experts in (("pi_hc", (1, 1)), ("moe", (1, 4))):
            k = int(np.prod(experts))
            torch.manual_seed(0)
            cons = ConstraintConfig(experts=experts, points=max(1, points // k))
            model = PhysicsFNO(problem, grid, times, BasisNetworkConfig(), cons)
            row[f"{name}_step_s"], row[f"{name}_infer_s"] = _step_seconds(model, x)
            row[f"{name}_lm_iterations"] = float(model.last_solve["iterations"].double().mean())
        row["step_speedup"] = row["pi_hc_step_s"] / row["moe_step_s"]
        row["infer_speedup"] = row["pi_hc_infer_s"] / row["moe_infer_s"]
        rows.append(row)
        print(f"scaling: {json.dumps(row)}", flush=True)
    return rows


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r["points"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    for j, kind in enumerate(("step", "infer")):
        for name, label in (("pi_hc", "PI-HC (1 expert)"), ("moe", "PI-HC-MoE (4 experts)")):
            ax[j].loglog(pts, [r[f"{name}_{kind}_s"] for r in rows], "o-", label=label)
        ax[j].set_xlabel("sampled PDE points (total)")
        ax[j].set_ylabel(f"seconds per {'training step' if kind == 'step' else 'inference'}")
        ax[j].grid(True, which="both", alpha=0.3)
    ax[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def rescore(a) -> dict:
    """Score the models of a previous run again (``--rescore``): its cases' rows are rebuilt
    from the stored models (user store), its training times and scaling rows kept."""
    results = json.loads(a.out.read_text())
    test = Dataset.generate(FAMILY, "test", a.n_test, grid=a.grid, progress=False)
    for name, row in results["cases"][FAMILY].items():
        sol = api.load(store.user_dir() / row["model"])
        new = evaluate(sol.model, test, a.n_test)
        results["cases"][FAMILY][name] = {**row, **new}
        print(f"{name}: {json.dumps(new)[:300]}", flush=True)
    results["rescored"] = _command(a)
    a.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {a.out}", flush=True)
    return results


# -- Navier-Stokes ---------------------------------------------------------------------------------
def _ns_overrides(a, experts) -> dict:
    out = {
        "dataset.grid": a.ns_grid,
        "dataset.n_train": a.ns_n_train,
        "dataset.n_valid": a.ns_n_valid,
        "dataset.batch_size": a.ns_batch,
        "dataset.eval_every": a.ns_eval_every,
        "network.basis": 64,
        "network.width": a.ns_width,
        "network.modes": a.ns_modes,
        "network.projection": 64,
        "train.steps": 100_000,  # the wall-clock budget ends training
        "train.time_budget_s": 60.0 * a.ns_minutes,
        "physics.initial": "built_in",
    }
    if experts is not None:
        out.update({"constraint.experts": list(experts), "constraint.points": a.ns_points,
                    "constraint.tol": 1e-7, "constraint.omega0": 0.0,
                    "constraint.unconverged": "warn"})  # fmt: skip
    return out


def _ns_model(experts, grid, times, problem, points: int, a) -> PhysicsFNO:
    net = BasisNetworkConfig(basis=64, width=a.ns_width, modes=a.ns_modes, projection=64)
    cons = ConstraintConfig(experts=experts, points=points, tol=1e-7, omega0=0.0)
    physics = PhysicsConfig(initial="built_in")
    return PhysicsFNO(problem, grid, times, net, cons, physics)


def section_navier_stokes(a) -> dict:
    test = Dataset.generate(NS_FAMILY, "test", a.ns_n_test, grid=a.ns_grid, progress=False)
    data = test.trajectories[: a.ns_n_test].astype(np.float64)
    still = [rel_l2(np.broadcast_to(d[:1], d[1:].shape), d[1:]) for d in data]
    out: dict = {"baselines": {"persistence": {"rel_l2": _stats(still), "members": len(data)}}}
    rows = {}
    for name, (solver, experts) in NS_VARIANTS.items():
        t0 = time.perf_counter()
        sol = train_family(
            NS_FAMILY, None, _ns_overrides(a, experts), solver=solver, verbose=True,
            command=_command(a) + f"  # variant {name}",
        )  # fmt: skip
        train_s = time.perf_counter() - t0
        saved = store.save(sol, f"{solver}_{NS_FAMILY}_{a.ns_grid}_{name}", command=_command(a))
        row = evaluate(sol.model, test, a.ns_n_test, from_t10=False)
        row.update({"train_s": train_s, "steps": int(sol.step), "model": saved.path.name,
                    "paper_rel_l2": NS_PAPER[name]})  # fmt: skip
        rows[name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)
    out["rows"] = rows
    return out


def section_ns_scaling(a) -> list[dict]:
    fam = families.get(NS_FAMILY)
    grid = fam.make_grid(a.ns_grid)
    times = np.asarray(fam.times)
    problem = fam.template()
    states = [m.problem().initial_state(grid)["w"] for m in fam.members("test", a.ns_batch)]
    x = torch.as_tensor(np.stack(states))[:, None, ..., None].float()
    rows = []
    for points in (int(p) for p in a.ns_scaling_points.split(",")):
        row = {"case": "navier_stokes", "points": points, "grid": [len(times), *grid.n]}
        for name, experts in (("pi_hc", (1, 1, 1)), ("moe", (1, 2, 2))):
            k = int(np.prod(experts))
            torch.manual_seed(0)
            model = _ns_model(experts, grid, times, problem, max(1, points // k), a)
            row[f"{name}_step_s"], row[f"{name}_infer_s"] = _step_seconds(model, x, repeats=2)
            row[f"{name}_lm_iterations"] = float(model.last_solve["iterations"].double().mean())
        row["step_speedup"] = row["pi_hc_step_s"] / row["moe_step_s"]
        row["infer_speedup"] = row["pi_hc_infer_s"] / row["moe_infer_s"]
        rows.append(row)
        print(f"scaling: {json.dumps(row)}", flush=True)
    return rows


def main_navier_stokes(a) -> dict:
    """``--case navier_stokes``: train and score the NS variants, merge them into ``--out``."""
    load_before = list(os.getloadavg())
    results = json.loads(a.out.read_text()) if a.out.exists() else {"cases": {}}
    if a.ns_scaling_only:
        rows = section_ns_scaling(a)
        results["navier_stokes_scaling"] = rows
        results["navier_stokes_scaling_command"] = _command(a)
        results["navier_stokes_scaling_device"] = machine()["device"]
        results["navier_stokes_scaling_load_average_before_after"] = [
            load_before,
            list(os.getloadavg()),
        ]
        plot(rows, a.out.with_name(a.out.stem + "_ns.png"), f"Navier-Stokes, {a.ns_grid}^2, CPU")
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {a.out}", flush=True)
        return results
    ns = section_navier_stokes(a)
    results.setdefault("cases", {})["navier_stokes"] = ns["rows"]
    results["navier_stokes_baselines"] = ns["baselines"]
    results["navier_stokes_command"] = _command(a)
    results["navier_stokes_device"] = machine()["device"]
    results["navier_stokes_setting"] = (
        f"decaying turbulence (nu = 1e-4, T = 5; family {NS_FAMILY}), {a.ns_grid}^2 x 11 times "
        f"(every 0.5); initial vorticity in, every later snapshot out; N = 64, FNO width "
        f"{a.ns_width}, {a.ns_modes} modes, 4 layers; each variant trained for "
        f"{a.ns_minutes:g} min of wall clock (Adam, batch {a.ns_batch}, {a.ns_n_train} "
        f"training initial states, no solution data); the initial condition built in (all "
        f"three); hard models: LM from omega = 0, tol 1e-7, {a.ns_points} PDE points per "
        "expert"
    )
    if a.ns_scaling:
        results["navier_stokes_scaling"] = section_ns_scaling(a)
    results["navier_stokes_load_average_before_after"] = [load_before, list(os.getloadavg())]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {a.out}", flush=True)
    return results


def main(argv=None) -> dict:
    a = _args(argv)
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    if a.case == "navier_stokes":
        return main_navier_stokes(a)
    if a.rescore:
        return rescore(a)
    load_before = list(os.getloadavg())
    results = {
        **machine(),
        "command": _command(a),
        "family": FAMILY,
        "setting": f"{a.grid} cells x 101 times (0..500 s); initial state in, every later "
        f"snapshot out; {a.steps} Adam steps of batch 6 per variant, no solution data; "
        f"scaling on {a.scaling_grid} cells x 101 times, batch {a.scaling_batch}",
        "quick": a.quick,
        "cases": {FAMILY: section_cases(a)},
    }
    if not a.skip_scaling:
        results["scaling"] = section_scaling(a)
        grid = f"{a.scaling_grid} cells x 101 times, batch {a.scaling_batch}"
        plot(results["scaling"], a.out.with_suffix(".png"), f"diffusion-sorption, {grid}, CPU")
    results["load_average_before_after"] = [load_before, list(os.getloadavg())]
    if a.out.exists():  # keep the Navier-Stokes rows of an earlier --case navier_stokes run
        before = json.loads(a.out.read_text())
        if "navier_stokes" in before.get("cases", {}):
            results["cases"]["navier_stokes"] = before["cases"]["navier_stokes"]
        results.update({k: v for k, v in before.items() if k.startswith("navier_stokes")})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {a.out}", flush=True)
    if a.ship:
        moe = results["cases"][FAMILY]["moe"]["model"]
        path = ship(store.user_dir() / moe)
        print(f"shipped {path}", flush=True)
    return results


if __name__ == "__main__":
    main()
