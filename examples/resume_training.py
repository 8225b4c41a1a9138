"""Resume training from an HDF5 checkpoint: train, stop, continue for more steps.

A checkpoint describes itself (problem, parameters, solver, config, step, network, optimiser,
learning-rate schedule, sampler and RNG states), so ``pdekit.load(path)`` needs nothing else and
``pdekit.solve(..., resume=path, steps=N)`` goes on to step N from where the run stopped; only
``train.*`` budget keys such as ``steps`` may change. On a CPU the resumed run ends
bit-identical to one that trained straight through, which this example checks. The same from
the command line: ``pdekit solve NAME --steps N --resume RUN_DIR``.

Run:  python examples/resume_training.py [OUT_DIR]    (default out/resume; ~2 min on one core)
"""

import sys
from pathlib import Path

import numpy as np

import pdekit

PROBLEM = "convection_diffusion/convection"  # u_t + beta u_x = 0, periodic; exact solution


def main(out="out/resume", steps=1000, more=1000, config=None, verbose=True):
    """Train ``steps``, resume to ``steps + more``; returns (first, resumed, straight)."""
    out = Path(out)
    # 1. train, writing checkpoints into out/checkpoints (every `checkpoint_every` steps and at
    #    the end); sol.save writes one more wherever you like
    first = pdekit.solve(
        PROBLEM, steps=steps, config=config, beta=5, checkpoint_dir=out / "checkpoints",
        verbose=verbose,
    )  # fmt: skip
    path = first.save(out / "first.h5")
    print(f"trained {first.step} steps, rel_l2 {first.errors()['rel_l2']:.3e}; saved {path}")

    # 2. a checkpoint alone restores the Solution (evaluate, export, plot it)
    loaded = pdekit.load(path)
    print(f"loaded {loaded}: {loaded.problem.params()}, solver config from the file")

    # 3. resume: the problem's parameters and the config come from the checkpoint; `steps` is
    #    the new total. A run directory works too (resume=out / "checkpoints": its newest
    #    good checkpoint).
    resumed = pdekit.solve(PROBLEM, steps=steps + more, resume=path, verbose=verbose)
    history = resumed.history["step"]
    print(f"resumed from step {first.step} to step {resumed.step}; loss recorded at steps "
          f"{history[0]}..{history[-1]}, rel_l2 {resumed.errors()['rel_l2']:.3e}")  # fmt: skip

    # 4. the same run without the stop, for comparison: identical on a CPU. (For a PDE with
    #    second derivatives, pinn's engine "auto" is compiled in runs of 2000+ steps only: pin
    #    config={"engine": "taylor"} to compare runs of different lengths bit for bit.)
    straight = pdekit.solve(PROBLEM, steps=steps + more, config=config, beta=5, verbose=verbose)
    points = resumed.problem.evaluation_grid().points()
    same = np.array_equal(resumed(points)["u"], straight(points)["u"])
    print(f"resumed run equals the uninterrupted one: {same}")
    return first, resumed, straight


if __name__ == "__main__":
    main(*sys.argv[1:2])
