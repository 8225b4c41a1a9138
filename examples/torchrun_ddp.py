"""Train on several processes with ``torchrun``: one process per GPU (or CPU processes over
gloo), DistributedDataParallel, every rank drawing its own collocation points.

Every rank runs this same program. ``launched`` initialises the process group from torchrun's
environment (nccl on CUDA, gloo on CPU; nothing at all in a plain ``python`` run) and tears it
down at the end; ``pdekit.solve`` called with the same arguments on every rank trains one model
whose gradients are averaged over the ranks. Each rank draws its own batch, so the global batch
is the per-rank batch times the number of processes: this script divides the points per step
by the world size to keep the single-process batch. Rank 0 alone writes checkpoints; your own
outputs are yours to guard with ``dist.is_writer``. Resume with the same number of processes.

Run:  torchrun --standalone --nproc_per_node=2 examples/torchrun_ddp.py [OUT_DIR] [STEPS]
      OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 examples/torchrun_ddp.py  # CPU
      python examples/torchrun_ddp.py        (the same program in one process)
(default out/ddp, 2000 steps). The ``pdekit`` command does the same without a script:
``torchrun --standalone --nproc_per_node=2 -m pdekit solve porous_medium/heat --steps 2000``.
"""

import sys
from pathlib import Path

import pdekit
from pdekit.solvers.distributed import launched


def main(out="out/ddp", steps=2000, device="auto"):
    """Train ``porous_medium/heat`` on every rank; returns (Solution, world size)."""
    out = Path(out)
    with launched(device) as dist:  # this process's rank, world size and backend
        n = dist.world_size
        sampling = {"n_interior": 2048 // n, "n_boundary": 256 // n, "n_initial": 256 // n}
        sol = pdekit.solve(
            "porous_medium/heat",
            steps=int(steps),
            device=device,  # "auto": rank r uses cuda:LOCAL_RANK when there are GPUs
            seed=0,  # the same on every rank: the same network, each rank its own points
            config={"sampling": sampling},
            checkpoint_dir=out / "checkpoints",  # written by rank 0 only
            verbose=dist.is_writer,
        )
        if dist.is_writer:  # every rank holds the same trained Solution; one writes it
            sol.save(out / "checkpoint.h5")
            sol.to_vtk(out / "solution.pvd")
            print(f"{n} process(es), {dist.backend or 'no process group'}: {sol.step} steps, "
                  f"rel_l2 {sol.errors()['rel_l2']:.3e}; wrote {out}")  # fmt: skip
    return sol, n


if __name__ == "__main__":
    main(*sys.argv[1:3])
