"""Operator learning: a family of Kolmogorov flows, its dataset from the reference solver, an FNO
trained on it, and the FNO's answer for a member it never saw.

A *family* is a problem plus a distribution over its instances (here: the random initial
vorticity, one seed per member) with disjoint train/valid/test splits. ``Dataset.generate``
simulates a split with the problem's pseudo-spectral solver and caches it as HDF5 in PDEBench's
layout; the ``fno`` solver (neuraloperator's FNO) learns to map the first ``in_steps``
snapshots to the rest. Solving one instance with ``solver="fno"`` trains on the family (or uses
a stored model) and returns a Solution like any other: ``sol(points)``, ``sol.errors()``
against the instance's reference, ``sol.to_vtk``, plus ``sol.family_errors(split)``.

This family is small enough for a laptop (32 x 32 cells, t in [0, 2]); the shipped family
``kolmogorov_nu1e-3`` is the FNO paper's benchmark (``pdekit train kolmogorov_nu1e-3``).
Datasets and trained models go to ``PDEKIT_CACHE_DIR`` (default ``~/.cache/pdekit``).

Run:  python examples/operator_learning.py        (64 trajectories, 1000 steps: ~1 min on one core)
"""

import numpy as np

import pdekit
from pdekit.problems import Dataset, Family, families

FAMILY = Family(
    name="example_kolmogorov_small",
    problem="navier_stokes/kolmogorov",
    fixed={"nu": 1e-3, "t_end": 2.0},
    seed_param="seed",  # each member's seed draws its initial vorticity
    sizes={"train": 64, "valid": 8, "test": 8},
    grid=32,  # cells per axis of the dataset
    times=tuple(np.linspace(0.0, 2.0, 11)),  # the snapshots stored per trajectory
    min_solver_cells=64,  # simulated on 64 x 64, stored on 32 x 32
    description="a small Kolmogorov family for the example",
)


def main(n_train=64, steps=1000, width=16, modes=8, in_steps=2, verbose=True):
    """Generate the family's data, train the FNO, answer a held-out member; returns the
    training Dataset and the held-out member's Solution."""
    families.register(FAMILY)  # by name, like the shipped ones (again: a no-op)
    train = Dataset.generate(FAMILY, "train", n_train, progress=verbose)  # cached once made
    print(f"train: {train.trajectories.shape} (members, times, x, y, fields) in {train.path}")

    held_out = FAMILY.members("test", 1)[0]  # disjoint from train and valid by construction
    config = {
        "dataset": {"family": FAMILY.name, "n_train": n_train, "n_valid": 4,
                    "in_steps": in_steps, "start": 0, "grid": 32, "batch_size": 8,
                    "eval_every": max(steps // 5, 1)},
        "network": {"modes": modes, "width": width, "layers": 2},
        "train": {"steps": steps, "log_every": max(steps // 20, 1)},
        "retrain": True,  # train now, even if the model store holds a model of this family
    }  # fmt: skip
    sol = pdekit.solve(
        "navier_stokes/kolmogorov",
        solver="fno",
        config=config,
        params={"seed": held_out.seed},  # `seed=` would seed the training, not the instance
        verbose=verbose,
        **FAMILY.fixed,
    )
    errors = sol.errors()  # against the instance's own reference simulation
    print(f"held-out member {held_out.seed}: rel_l2 {errors['rel_l2']:.3e} "
          f"(w {errors['rel_l2/w']:.3e}) after {sol.step} steps")  # fmt: skip
    test = sol.family_errors("test")  # mean and std over the whole test split
    print(f"test split ({test['members']['count']} members): rel_l2 "
          f"{test['rel_l2']['mean']:.3e} +- {test['rel_l2']['std']:.1e}")  # fmt: skip
    return train, sol


if __name__ == "__main__":
    main()
