"""Speed of the reference solvers. Reports, does not gate.

Sections (run all, or pick with ``--sections``):

* ``pseudo_spectral``: one ETDRK4 step of the 2D vorticity solver
  (:mod:`pdekit.problems.references.spectral_ns`) on n x n grids, as a ratio to the time of the
  FFTs that step needs, measured in the same run: 4 stage evaluations x (one inverse real FFT
  of the stacked (u, v) + one forward real FFT of the stacked (uv, v^2 - u^2)). A ratio near 1
  means the step is FFT-bound; the excess is the elementwise work of the stages.
* ``batched_ns``: the same step on a batch of B = 1, 8, 32, 128 trajectories at 64^2 (the
  Kolmogorov flow of the FNO benchmark, nu = 1e-3): time per trajectory-step, the time of the
  step's FFTs alone (the same calls on the same chunks of the batch), their ratio, and the
  throughput against looping over B = 1; a sweep of the trajectories per FFT call at B = 32;
  and the time to generate the FNO's nu = 1e-3 training set (T = 50, 64^2) for a batch of
  trajectories through ``Kolmogorov.simulate``, extrapolated to the FNO's 1000.
  Step and FFT timings alternate, sample by sample, so load on a shared machine hits both
  alike; the JSON holds the minimum (least disturbed) and median of the samples and the load
  average before and after.
* ``finite_volume``: cells per second of the finite-volume machinery
  (:mod:`pdekit.problems.references.fv_gpme`): the numba flux-divergence kernel of
  :mod:`pdekit.core.fv` on an n x n grid with variable face diffusivities (one evaluation
  updates n^2 cells), beside its torch twin on the same data, and a whole RKC2 solve of the
  porous-medium equation u_t = div(u grad u) on n x n cells (cell-updates per second =
  cells x right-hand-side evaluations / wall time).

Each section is a function ``(args) -> dict`` in ``SECTIONS``; results are merged into
``benchmarks/results/references.json`` (sections not run keep their previous entry).

    python benchmarks/references.py                          # full: 256^2 and 512^2
    python benchmarks/references.py --sizes 32 64 --budget 1  # quick check
    python benchmarks/references.py --sections batched_ns --train-batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pdekit._version import __version__
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.navier_stokes import kolmogorov as kol
from pdekit.problems.references import spectral_ns as sns

RESULTS = Path(__file__).resolve().parent / "results" / "references.json"


def _timer(device: torch.device) -> Callable[[], float]:
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def _time_per_call(fn: Callable[[], object], budget: float, now, min_repeats: int = 3) -> float:
    """Median seconds per call of ``fn`` over repeats filling about ``budget`` seconds."""
    fn()  # warm-up: plans, caches, allocations
    samples, start = [], now()
    while len(samples) < min_repeats or now() - start < budget:
        t0 = now()
        fn()
        samples.append(now() - t0)
    samples.sort()
    return samples[len(samples) // 2]


class _SpectralStep:
    """One ETDRK4 step of the vorticity solver on a batch at n x n (the Kolmogorov flow), and
    the FFT calls that step makes, with the same shapes, on the same chunks of the batch."""

    def __init__(self, n: int, batch: int, device: torch.device, chunk: int | None = None):
        grid = Grid((0.0, 0.0), (1.0, 1.0), n, periodic=True)
        x = grid.axis(0, "node")
        f = torch.as_tensor(kol.forcing(x[:, None], x[None, :]), device=device)
        w0 = np.stack([kol.initial_vorticity(seed, n) for seed in range(batch)])
        self.step = sns.stepper(grid, 1e-3, batch, f, device=device, chunk=chunk)
        self.parts = self.step.split(sns.to_fourier(torch.as_tensor(w0, device=device), grid))
        self.dt = kol.CFL_DT / n
        self.chunk = self.step.chunk
        m = n // 2 + 1
        sizes = [len(range(batch)[part]) for part, _ in self.step.parts]
        self._spectra = [
            torch.randn(c, 2, n, m, dtype=torch.complex128, device=device) for c in sizes
        ]
        self._products = [
            torch.randn(c, 2, n, n, dtype=torch.float64, device=device) for c in sizes
        ]
        self.n = n

    def advance(self) -> None:
        with torch.no_grad():
            self.parts = self.step(self.parts, 0.0, self.dt)

    def ffts(self) -> None:
        """4 stages x per chunk: irfft2 of the stacked (u, v), rfft2 of the stacked products."""
        for _ in range(4):
            for spectra, products in zip(self._spectra, self._products):
                torch.fft.irfft2(spectra, s=(self.n, self.n))
                torch.fft.rfft2(products)


def _interleaved(fns: dict[str, Callable[[], object]], budget: float, now) -> dict[str, dict]:
    """Seconds per call of each function: samples of several calls each, taken in turn (so a
    change of load hits all alike) until ``budget`` seconds; min and median per call."""
    for fn in fns.values():
        fn()  # warm-up: plans, caches, allocations
    repeats = {}
    for name, fn in fns.items():  # calls per sample: about 0.05 s
        t0 = now()
        fn()
        repeats[name] = max(1, int(0.05 / max(now() - t0, 1e-9)))
    samples = {name: [] for name in fns}
    start = now()
    while min(len(v) for v in samples.values()) < 5 or now() - start < budget:
        for name, fn in fns.items():
            t0 = now()
            for _ in range(repeats[name]):
                fn()
            samples[name].append((now() - t0) / repeats[name])
    return {
        name: {"min": min(v), "median": statistics.median(v), "samples": len(v)}
        for name, v in samples.items()
    }


def bench_pseudo_spectral(args) -> dict:
    device = torch.device(args.device)
    now = _timer(device)
    out = {}
    for n in args.sizes:
        case = _SpectralStep(n, 1, device)
        t = _interleaved({"step": case.advance, "fft": case.ffts}, args.budget, now)
        t_step, t_fft = t["step"]["median"], t["fft"]["median"]
        out[f"{n}x{n}"] = {
            "step_s": t_step,
            "fft_s": t_fft,
            "ratio_step_to_fft": t_step / t_fft,
            "ffts_per_step": "4 x (irfft2 of 2 stacked fields + rfft2 of 2 stacked fields)",
        }
        print(
            f"pseudo-spectral {n:>4}^2: step {t_step * 1e3:8.3f} ms, its FFTs "
            f"{t_fft * 1e3:8.3f} ms, ratio {t_step / t_fft:5.2f}"
        )
    return {"device": str(device), "threads": torch.get_num_threads(), "sizes": out}


def bench_batched_ns(args) -> dict:
    device = torch.device(args.device)
    now = _timer(device)
    n = args.batch_grid
    load_before = os.getloadavg()
    rows, base = {}, None
    for batch in args.batches:
        case = _SpectralStep(n, batch, device)
        t = _interleaved({"step": case.advance, "fft": case.ffts}, args.budget, now)
        row = {"chunk": case.chunk}
        for stat in ("min", "median"):
            step, fft = t["step"][stat], t["fft"][stat]
            row[stat] = {
                "step_s": step,
                "fft_s": fft,
                "per_trajectory_step_s": step / batch,
                "ratio_step_to_fft": step / fft,
            }
        row["samples"] = t["step"]["samples"]
        if batch == 1:
            base = row
        if base is not None:
            for stat in ("min", "median"):
                single = base[stat]["step_s"]
                row[stat]["throughput_vs_looping_b1"] = single / row[stat]["per_trajectory_step_s"]
        rows[f"B={batch}"] = row
        r = row["min"]
        print(
            f"batched NS {n}^2 B={batch:>4} (chunk {case.chunk}): "
            f"{r['per_trajectory_step_s'] * 1e6:7.1f} us per trajectory-step, step/FFTs "
            f"{r['ratio_step_to_fft']:4.2f}, throughput "
            f"x{r.get('throughput_vs_looping_b1', 1):4.2f} vs looping B=1 (min of samples)"
        )
    sweep = {}
    for chunk in args.chunks:
        case = _SpectralStep(n, args.sweep_batch, device, chunk=chunk)
        t = _interleaved({"step": case.advance}, args.budget / 2, now)["step"]
        sweep[f"chunk={chunk}"] = {
            "per_trajectory_step_s_min": t["min"] / args.sweep_batch,
            "per_trajectory_step_s_median": t["median"] / args.sweep_batch,
        }
        print(
            f"batched NS {n}^2 B={args.sweep_batch} chunk {chunk:>3}: "
            f"{t['min'] / args.sweep_batch * 1e6:7.1f} us per trajectory-step (min)"
        )
    out = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "grid": f"{n}x{n}",
        "step": "ETDRK4, Kolmogorov forcing, nu = 1e-3, dt = 2.56 / n; state advanced each call",
        "ffts_per_step": "4 stages x per chunk: irfft2 (c, 2, n, n/2+1), rfft2 (c, 2, n, n)",
        "targets": "B = 32: step <= 1.5 x its FFTs; batching >= 4 x the throughput of looping B=1",
        "batches": rows,
        "chunk_sweep": {"batch": args.sweep_batch, **sweep},
    }
    if args.train_batch:
        out["kolmogorov_training_set"] = _training_set(args)
    out["load_average_before_after"] = [load_before, os.getloadavg()]
    return out


def _training_set(args) -> dict:
    """Wall time of Kolmogorov.simulate for the FNO's nu = 1e-3 data: T = 50, snapshots at
    t = 0, 1, ..., 50 on 64^2, two ways of meeting the initial field's modes |m| <= 32."""
    p = get("navier_stokes/kolmogorov", nu=1e-3, t_end=50.0)
    times = np.arange(51.0)
    seeds = range(args.train_batch)
    out = {
        "trajectories_timed": args.train_batch,
        "trajectories_fno": 1000,
        "times": "0, 1, ..., 50",
        "note": "1000-trajectory times are the timed batch's wall time x 1000 / batch, i.e. "
        "extrapolated, not measured",
    }
    data = {}
    for name, n_run in (("128_subsampled_to_64", 128), ("64_truncated", 64)):
        grid = p.grid(n_run)
        w0 = np.stack([kol.initial_vorticity(seed, n_run) for seed in seeds])
        load = os.getloadavg()
        t0 = time.perf_counter()
        w = p.simulate({"w": w0}, grid, times)["w"]
        wall = time.perf_counter() - t0
        data[name] = w[:, :, :: n_run // 64, :: n_run // 64]
        steps = int(sns.steps_per_interval(times, kol.CFL_DT / n_run).sum())
        out[name] = {
            "grid": f"{n_run}x{n_run}",
            "steps": steps,
            "chunk": sns.default_chunk(n_run, n_run),
            "wall_s": wall,
            "wall_per_trajectory_s": wall / args.train_batch,
            "extrapolated_1000_trajectories_s": wall * 1000 / args.train_batch,
            "load_average_before": load,
        }
        print(
            f"Kolmogorov training set on {n_run}^2: {args.train_batch} trajectories to T = 50 in "
            f"{wall:.1f} s; 1000 would take ~{wall * 1000 / args.train_batch / 60:.1f} min"
        )
    fine, coarse = data["128_subsampled_to_64"], data["64_truncated"]
    err = np.linalg.norm(coarse - fine, axis=(-2, -1)) / np.linalg.norm(fine, axis=(-2, -1))
    out["64_truncated_vs_128"] = {
        "relative_l2_t0_max": float(err[:, 0].max()),
        "relative_l2_t50_median": float(np.median(err[:, -1])),
        "relative_l2_t50_max": float(err[:, -1].max()),
        "note": "64^2 keeps |m| < 64/3 of the initial field (the 2/3 rule drops the rest) and "
        "resolves less; 128^2 keeps every |m| <= 32 mode (the reference grid at nu = 1e-3)",
    }
    return out


def bench_finite_volume(args) -> dict:
    import numpy as np

    from pdekit.core.fv import flux_divergence_2d, flux_divergence_2d_torch
    from pdekit.core.stencil import Boundary
    from pdekit.geometries import Grid
    from pdekit.problems.references.fv_gpme import solve_gpme

    now = _timer(torch.device("cpu"))
    rng = np.random.default_rng(0)
    out = {}
    for n in args.fv_sizes:
        h = (1.0 / n, 1.0 / n)
        phi = rng.random((n, n))
        dx, dy = rng.random((n + 1, n)), rng.random((n, n + 1))
        zero_x, zero_y = np.zeros((n + 1, n)), np.zeros((n, n + 1))
        res = np.empty((n, n))

        def numba_eval(phi=phi, dx=dx, dy=dy, zx=zero_x, zy=zero_y, h=h, res=res):
            flux_divergence_2d(phi, phi, (dx, dy), (zx, zy), h, out=res)

        t_numba = _time_per_call(numba_eval, args.budget, now)
        tp = [torch.from_numpy(x) for x in (phi, dx, dy, zero_x, zero_y)]

        def torch_eval(tp=tp, h=h):
            flux_divergence_2d_torch(tp[0], tp[0], (tp[1], tp[2]), (tp[3], tp[4]), h)

        t_torch = _time_per_call(torch_eval, args.budget, now)
        grid = Grid([0.0, 0.0], [1.0, 1.0], n)
        walls = [Boundary.neumann(0.0, 0.0)] * 2  # no flux

        def bump(x, y):
            return np.exp(-50 * ((x - 0.5) ** 2 + (y - 0.5) ** 2))

        t0 = time.perf_counter()
        r = solve_gpme(grid, lambda u: u, bump, [0.0, 1e-3], walls, kirchhoff=lambda u: u * u / 2)
        t_solve = time.perf_counter() - t0
        out[f"{n}x{n}"] = {
            "kernel_s": t_numba,
            "kernel_cells_per_s": n * n / t_numba,
            "torch_twin_s": t_torch,
            "kernel_speedup_vs_torch_twin": t_torch / t_numba,
            "solve_s": t_solve,
            "solve_rhs_evaluations": r.evaluations,
            "solve_cell_updates_per_s": n * n * r.evaluations / t_solve,
        }
        print(
            f"finite volume {n:>4}^2: kernel {n * n / t_numba / 1e6:7.1f} Mcell/s "
            f"({t_torch / t_numba:4.1f}x its torch twin), RKC2 solve "
            f"{n * n * r.evaluations / t_solve / 1e6:6.1f} Mcell-updates/s"
        )
    return {"device": "cpu", "numba_threads": _numba_threads(), "sizes": out}


def _numba_threads() -> int:
    import numba

    return numba.get_num_threads()


#: benchmark sections: name -> function(args) -> JSON-serialisable dict
SECTIONS: dict[str, Callable] = {
    "pseudo_spectral": bench_pseudo_spectral,
    "batched_ns": bench_batched_ns,
    "finite_volume": bench_finite_volume,
}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS))
    # pseudo_spectral options
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="grid sizes n")
    # batched_ns options
    parser.add_argument("--batch-grid", type=int, default=64, help="grid n of batched_ns")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32, 128])
    parser.add_argument("--sweep-batch", type=int, default=32, help="batch of the chunk sweep")
    parser.add_argument("--chunks", nargs="*", type=int, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument(
        "--train-batch",
        type=int,
        default=32,
        help="trajectories timed for the training set (0: skip)",
    )
    # finite_volume options
    parser.add_argument("--fv-sizes", nargs="+", type=int, default=[256, 1024], help="FV grids n")
    # common options
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per timing")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.sections:
        results[name] = SECTIONS[name](args)
        results[name]["meta"] = {
            "pdekit": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "budget_s": args.budget,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
