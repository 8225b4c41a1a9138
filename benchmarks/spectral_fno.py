"""The spectral-refined FNO on the FNO benchmark: ``spectral_fno`` against the ``fno`` baseline
and our pseudo-spectral solver, in one run.

Kolmogorov flow at nu = 1e-3 (family ``kolmogorov_nu1e-3``): vorticity on 64^2, t = 1..10 in,
t = 11..50 out. Sections:

* ``train``: ``pdekit train kolmogorov_nu1e-3 --solver spectral_fno`` with the run's settings
  (a wall-clock budget; saved into the user store with this command), or ``--model PATH`` to
  evaluate a stored model (its training time is read from its history).
* ``kolmogorov_nu1e-3_64``: on the first ``--n-test`` members of the test split, the true
  relative L2 error (over space and time, per trajectory; not divided by sqrt(n_t)) of
  ``spectral_fno`` without refinement, and with refinement on the first ``--n-refine`` of them
  (both numbers on that subset too), the seconds of inference and of refinement per
  trajectory; the ``fno`` baseline's error on the same members (the shipped model, or
  ``--fno PATH``), with its training time from its own benchmark.
* ``kolmogorov_nu1e-3_256``: zero-shot at 256^2 on the first ``--n-zero`` test members (their
  256^2 trajectories simulated here by ``Kolmogorov.simulate``): both models unrefined,
  ``spectral_fno`` refined.
* ``spectral_solver``: seconds of ``Kolmogorov.simulate`` for the same 40 snapshots from the
  t = 10 state, at 64^2 (the data's own solver) and at 32^2 (restricted error).

``--ship`` writes the model's weights (no optimiser state) into ``pdekit/model_store``.
Results: ``benchmarks/results/spectral_fno.json``.

    python benchmarks/spectral_fno.py --train-only          # train (about 40 min on 2 cores)
    python benchmarks/spectral_fno.py --model PATH --ship   # evaluate and ship
    python benchmarks/spectral_fno.py --quick --out /tmp/s.json   # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
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
from pdekit.solvers.operator_solution import predict, simulate_instance
from pdekit.solvers.spectral_fno import RefineConfig, refine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operators import FAMILY, IN_STEPS, START, _command, run_header, ship  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "spectral_fno.json"
OPERATORS = Path(__file__).resolve().parent / "results" / "operators.json"


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-valid", type=int, default=100)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--n-refine", type=int, default=20, help="test members refined")
    p.add_argument("--n-zero", type=int, default=2, help="test members at 256^2")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--budget-s", type=float, default=2700.0, help="training wall-clock cap")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--modes", type=int, default=10)
    p.add_argument("--latent-steps", type=int, default=16)
    p.add_argument("--out-modes-t", type=int, default=16)
    p.add_argument("--eval-every", type=int, default=300)
    p.add_argument("--refine-steps", type=int, default=50)
    p.add_argument("--refine-lr", type=float, default=0.2, help="Adam lr of the bias (paper units)")
    p.add_argument(
        "--refine-optimizers", default="adam,lbfgs", help="refinements compared, first: headline"
    )
    p.add_argument("--model", type=Path, default=None, help="evaluate this model, no training")
    p.add_argument("--fno", type=Path, default=None, help="fno model (default: the shipped)")
    p.add_argument("--train-s", type=float, default=None, help="with --model: its training time")
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument("--ship", action="store_true", help="write the model into pdekit/model_store")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.n_train, a.n_valid, a.n_test, a.n_refine, a.n_zero = 40, 8, 8, 2, 1
        a.steps, a.eval_every, a.width, a.modes, a.refine_steps = 20, 10, 8, 6, 5
        a.latent_steps, a.out_modes_t = 10, 8
    return a


def section_train(a):
    overrides = {
        "dataset.n_train": a.n_train,
        "dataset.n_valid": a.n_valid,
        "dataset.eval_every": a.eval_every,
        "network.width": a.width,
        "network.modes": a.modes,
        "network.latent_steps": a.latent_steps,
        "network.out_modes_t": a.out_modes_t,
        "train.steps": a.steps,
        "train.time_budget_s": a.budget_s,
    }
    t0 = time.perf_counter()
    sol = train_family(
        FAMILY, overrides=overrides, verbose=True, command=_command(a), solver="spectral_fno"
    )
    out = {"train_s": round(time.perf_counter() - t0, 1), "settings": overrides}
    return out, Path(sol.extras["store_path"])


def _rel(pred: np.ndarray, ref: np.ndarray) -> list[float]:
    return [rel_l2(p, r) for p, r in zip(pred, ref, strict=True)]


def _stats(values) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}


def _refined(sol, x: np.ndarray, problem, grid, dt: float, cfg: RefineConfig):
    preds, secs, losses = [], [], []
    for xi in x:
        res = refine(sol.model, torch.as_tensor(xi[None]), problem, grid, dt, cfg)
        preds.append(res.trajectory[0].numpy())
        secs.append(res.seconds)
        losses.append((res.loss[0], res.loss[-1]))
    return np.stack(preds), secs, losses


def section_64(a, sfno, fno, test: Dataset, cfg: RefineConfig) -> dict:
    fam = families.get(FAMILY)
    problem, grid = fam.template(), fam.make_grid(None)
    traj = np.asarray(test.trajectories)
    known = START + IN_STEPS
    x, ref = traj[:, START:known], traj[:, known:].astype(np.float64)
    t0 = time.perf_counter()
    raw = predict(sfno.model, x)
    infer_s = (time.perf_counter() - t0) / len(x)
    base = predict(fno.model, x)
    k = min(a.n_refine, len(x))
    dt = float(fam.output_times()[1] - fam.output_times()[0])
    e_raw, e_fno = _rel(raw, ref), _rel(base, ref)
    variants = {}
    for opt in a.refine_optimizers.split(","):
        c = dataclasses.replace(cfg, optimizer=opt)
        refd, secs, losses = _refined(sfno, x[:k], problem, grid, dt, c)
        e_ref = _rel(refd, ref[:k])
        variants[opt] = {
            "rel_l2_refined": _stats(e_ref),
            "refined_over_unrefined": _stats(np.array(e_ref) / np.array(e_raw[:k])),
            "refine_s": _stats(secs),
            "objective_before_after": [list(map(float, p)) for p in losses],
        }
        print(f"64: refined ({opt}): {variants[opt]['rel_l2_refined']}", flush=True)
    head = variants[a.refine_optimizers.split(",")[0]]
    out = {
        "spectral_fno": {
            "rel_l2": _stats(e_raw),
            "rel_l2_subset": _stats(e_raw[:k]),
            "rel_l2_refined": head["rel_l2_refined"],
            "refine_s": head["refine_s"],
            "refinements": variants,
            "infer_s_batched_per_trajectory": infer_s,
        },
        "fno": {"rel_l2": _stats(e_fno), "rel_l2_subset": _stats(e_fno[:k])},
    }
    print(f"64: {json.dumps(out)[:600]}", flush=True)
    return out


def section_256(a, sfno, fno, test: Dataset, cfg: RefineConfig) -> dict:
    fam = families.get(FAMILY)
    grid = fam.make_grid(256)
    times = fam.output_times()
    known = START + IN_STEPS
    dt = float(times[1] - times[0])
    e_raw, e_ref, e_fno, secs, sim_s = [], [], [], [], []
    for member in test.members[: a.n_zero]:
        problem = member.problem()
        t0 = time.perf_counter()
        truth = simulate_instance(fam, problem, grid, times)
        sim_s.append(time.perf_counter() - t0)
        x, ref = truth[None, START:known], truth[known:]
        e_raw.append(rel_l2(predict(sfno.model, x, batch=1)[0], ref))
        e_fno.append(rel_l2(predict(fno.model, x, batch=1)[0], ref))
        refd, s, _ = _refined(sfno, x, problem, grid, dt, cfg)
        e_ref.append(rel_l2(refd[0], ref))
        secs.append(s[0])
    out = {
        "spectral_fno": {
            "rel_l2": _stats(e_raw),
            "rel_l2_refined": _stats(e_ref),
            "refine_s": _stats(secs),
        },  # fmt: skip
        "fno": {"rel_l2": _stats(e_fno)},
        "reference_simulation_s": _stats(sim_s),
    }
    print(f"256: {out}", flush=True)
    return out


def section_solver(test: Dataset) -> dict:
    fam = families.get(FAMILY)
    problem = fam.template()
    known = START + IN_STEPS
    times = np.asarray(fam.output_times()[known - 1 :]) - fam.output_times()[known - 1]
    traj = np.asarray(test.trajectories[:1], dtype=np.float64)
    out = {}
    for n in (64, 32):
        grid = fam.make_grid(n)
        k = 64 // n
        w = {"w": traj[:, known - 1, ::k, ::k, 0]}
        problem.simulate(w, grid, times)  # warm-up
        t0 = time.perf_counter()
        sim = problem.simulate(w, grid, times)["w"][0, 1:]
        secs = time.perf_counter() - t0
        ref = traj[0, known:, ::k, ::k, 0]
        out[f"{n}"] = {"s_per_trajectory": secs, "rel_l2_vs_data": rel_l2(sim, ref)}
    print(f"solver: {out}", flush=True)
    return out


def main(argv=None) -> dict:
    a = _args(argv)
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    load_before = list(os.getloadavg())
    results = run_header(a)
    if a.model is None:
        results["train"], path = section_train(a)
    else:
        path = a.model
    if a.train_only:
        print(f"trained: {path}")
        return results
    sfno = api.load(path)
    hist = sfno.history
    results["train"] = results.get("train") or {}
    results["train"]["model"] = path.name
    results["train"]["steps_done"] = int(sfno.step)
    results["train"]["training_command"] = sfno.extras.get("training_command", "")
    if a.train_s is not None:
        results["train"]["train_s"] = a.train_s
    results["train"]["best_valid_rel_l2"] = float(min(hist.get("valid/metric", [np.nan])))
    fno = api.load(a.fno or store.find("fno", FAMILY).path)
    opts = a.refine_optimizers.split(",")
    cfg = RefineConfig(steps=a.refine_steps, lr_bias=a.refine_lr, optimizer=opts[0])
    results["refine"] = dataclasses.asdict(cfg)
    test = Dataset.generate(FAMILY, "test", a.n_test, progress=False)
    cases = {f"{FAMILY}_64": section_64(a, sfno, fno, test, cfg)}
    if OPERATORS.exists():
        fno_run = json.loads(OPERATORS.read_text())["cases"][FAMILY]["fno"]
        cases[f"{FAMILY}_64"]["fno"]["train_s"] = fno_run.get("train_s")
    cases[f"{FAMILY}_256"] = section_256(a, sfno, fno, test, cfg)
    results["cases"] = cases
    results["spectral_solver"] = section_solver(test)
    results["load_average_before_after"] = [load_before, list(os.getloadavg())]
    if a.ship:
        results["shipped"] = ship(path).name
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {a.out}")
    return results


if __name__ == "__main__":
    main()
