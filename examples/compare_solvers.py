"""Compare solvers at the same wall-clock budget: the Python side of ``pdekit compare``.

Each solver trains on the problem for ``budget_s`` seconds (its ``train.time_budget_s``, steps
unbounded), one after the other, each in a fresh process so that none warms the other's caches
and the peak memory is its own. ``out`` receives ``compare.json`` (the table), ``compare.png``
(the reference, then each solver's prediction and error on one colour scale) and each run's
checkpoint, ``out/<solver>/checkpoint.h5``, which ``pdekit.load`` opens. The same from the
command line::

    pdekit compare porous_medium/heat --solvers pinn,causal_pinn --budget 60s --out out/compare

The runs' processes are started by multiprocessing's "spawn", which imports your script again:
in your own scripts keep the call under ``if __name__ == "__main__":`` (without it the runs
cannot start and ``compare`` waits for them forever).

Run:  python examples/compare_solvers.py [OUT_DIR]    (default out/compare; 2 x 60 s of training)
"""

import sys

import pdekit
from pdekit.compare import compare, format_table


def main(out="out/compare", budget_s=60, solvers=("pinn", "causal_pinn"), threads=0):
    """Train each solver for ``budget_s`` seconds on the heat equation; returns the table."""
    problem = "porous_medium/heat"  # u_t = k u_xx, periodic, exact solution exp(-k t) sin x
    table = compare(
        problem,
        list(solvers),
        budget_s,  # seconds, or a string such as "90s", "2m"
        params={"k": 0.5},  # the problem's parameters, as `pdekit compare --set k=0.5`
        seed=0,
        device="cpu",
        out=out,
        threads=threads,  # torch threads per run (0: torch's default)
    )
    print(format_table(table))  # Markdown: solver, rel. L2, max abs, steps, wall s, memory
    best = min(table["rows"], key=lambda row: row["rel_l2"])
    print(f"best: {best['solver']} (rel. L2 {best['rel_l2']:.3e} in {best['steps']} steps)")
    print(f"figure: {table['figure']}")
    sol = pdekit.load(best["checkpoint"])  # every run is kept: reload, export, resume it
    print(sol, sol.errors()["rel_l2"])
    return table


if __name__ == "__main__":
    main(*sys.argv[1:2])
