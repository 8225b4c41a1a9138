"""Read a run directory into numpy, and evaluate its Solution at points of your own.

``pdekit solve ... --out RUN_DIR`` (and ``make run``, into ``runs/default``) writes, besides
VTK and a plot: ``fields.h5`` (every field on the evaluation grid, time first as in PDEBench:
``grid/x``, ``grid/t``, ``u``, ``u_reference``, ``u_error``), ``errors.json`` (the errors and
what ran), ``metrics.csv`` (the loss history, ``step,name,value``), ``config.json`` (the
settings, to repeat the run) and ``checkpoint.h5`` (for ``pdekit.load``). Plain h5py, json and
numpy read all but the checkpoint; nothing here needs pdekit except the last step.

Run:  pdekit solve porous_medium/heat --steps 2000 --out runs/heat
      python examples/load_results_numpy.py runs/heat      (default runs/default)
"""

import json
import sys
from pathlib import Path

import h5py
import numpy as np

import pdekit


def main(run_dir="runs/default", n_points=5, seed=0):
    """Print what the run directory holds; returns the arrays and numbers read."""
    run = Path(run_dir)
    errors = json.loads((run / "errors.json").read_text())
    with h5py.File(run / "fields.h5", "r") as f:
        names = json.loads(f.attrs["fields"])  # ["u"], or ["u", "v", "p"] for a flow
        coords = json.loads(f.attrs["coordinates"])  # ["x", "t"]: the problem's order
        axes = {c: f["grid"][c][()] for c in coords}  # 1D coordinate arrays
        fields = {k: f[k][()] for k in f if k != "grid"}  # (nt, nx[, ny]) each, time first
        print(f"{f.attrs['problem']} solved by {f.attrs['solver']}")
    for k in names:
        u = fields[k]
        print(f"  {k}: shape {u.shape}, range [{u.min():.3f}, {u.max():.3f}]")

    # errors.json's joint rel_l2 is ||prediction - reference|| / ||reference|| over all fields
    diff = np.concatenate([fields[f"{k}_error"].ravel() for k in names])
    ref = np.concatenate([fields[f"{k}_reference"].ravel() for k in names])
    rel_l2 = np.linalg.norm(diff) / np.linalg.norm(ref)
    print(f"rel_l2 from fields.h5 {rel_l2:.6e}, in errors.json {errors['rel_l2']:.6e}")
    steps, names_csv, values = np.loadtxt(run / "metrics.csv", delimiter=",", skiprows=1,
                                          dtype=str, unpack=True, ndmin=2)  # fmt: skip
    loss = values[names_csv == "loss"].astype(float)
    print(f"loss {loss[0]:.3e} -> {loss[-1]:.3e} over {errors['run']['steps']} steps")

    # the trained Solution, evaluated anywhere in the domain: columns in problem.coordinates
    sol = pdekit.load(run / "checkpoint.h5")
    lo, hi = sol.problem.domain().bounds  # per coordinate, e.g. (x, t)
    points = np.random.default_rng(seed).uniform(lo, hi, (n_points, len(lo)))
    mine, exact = sol(points), sol.problem.reference()(points)
    for p, u, ue in zip(points, mine[names[0]], exact[names[0]]):
        where = ", ".join(f"{c}={v:.3f}" for c, v in zip(sol.problem.coordinates, p))
        print(f"  {names[0]}({where}) = {u:+.5f}   reference {ue:+.5f}")
    return {"axes": axes, "fields": fields, "errors": errors, "rel_l2": rel_l2, "loss": loss,
            "solution": sol, "points": points, "values": mine}  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:2])
