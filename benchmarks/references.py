"""Speed of the reference solvers. Reports, does not gate.

Sections (run all, or pick with ``--sections``):

* ``pseudo_spectral``: one ETDRK4 step of the 2D vorticity solver
  (:mod:`pdekit.problems.references.spectral_ns`) on n x n grids, as a ratio to the time of the
  FFTs that step needs, measured in the same run: 4 stage evaluations x (one inverse real FFT
  of the stacked (u, v, w_x, w_y) + one forward real FFT of the product). A ratio near 1 means
  the step is FFT-bound; the excess is the elementwise work of the stages.
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
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pdekit._version import __version__
from pdekit.problems.references import etdrk4
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


def _spectral_step_timings(n: int, device: torch.device, budget: float, now) -> tuple[float, float]:
    """Seconds per ETDRK4 step of the vorticity solver on an n x n grid, and per set of the
    FFTs that step performs, timed alike."""
    grid = sns.SpectralGrid(n, 1.0, device=device)
    g = torch.Generator(device="cpu").manual_seed(0)
    w = torch.randn(n, n, generator=g, dtype=torch.float64).to(device)
    w_hat = sns.to_fourier(w, grid)
    forcing = sns.to_fourier(torch.sin(2 * math.pi * w), grid)
    coeffs = etdrk4.coefficients(1e-3 * grid.laplacian_symbol, 1e-3)

    def N(v, t):
        return forcing - sns.advection(v, grid)

    def step():
        return etdrk4.step(w_hat, 0.0, N, coeffs)

    spectra = grid.advection_symbols * w_hat
    product = torch.fft.irfft2(spectra, s=(n, n))[0]

    def ffts():  # the transforms of one step: 4 x (1 stacked inverse + 1 forward)
        for _ in range(4):
            torch.fft.irfft2(spectra, s=(n, n))
            torch.fft.rfft2(product)

    return _time_per_call(step, budget, now), _time_per_call(ffts, budget, now)


def bench_pseudo_spectral(args) -> dict:
    device = torch.device(args.device)
    now = _timer(device)
    out = {}
    for n in args.sizes:
        t_step, t_fft = _spectral_step_timings(n, device, args.budget, now)
        out[f"{n}x{n}"] = {
            "step_s": t_step,
            "fft_s": t_fft,
            "ratio_step_to_fft": t_step / t_fft,
            "ffts_per_step": "4 x (irfft2 of 4 stacked fields + rfft2 of 1)",
        }
        print(
            f"pseudo-spectral {n:>4}^2: step {t_step * 1e3:8.3f} ms, its FFTs "
            f"{t_fft * 1e3:8.3f} ms, ratio {t_step / t_fft:5.2f}"
        )
    return {"device": str(device), "threads": torch.get_num_threads(), "sizes": out}


def bench_finite_volume(args) -> dict:
    import numpy as np

    from pdekit.core.fv import flux_divergence_2d, flux_divergence_2d_torch
    from pdekit.problems.references.fv_gpme import Boundary, CellGrid, solve_gpme

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
        grid = CellGrid((0.0, 0.0), (1.0, 1.0), (n, n), (False, False))
        walls = {s: Boundary("flux", 0.0) for s in ("xmin", "xmax", "ymin", "ymax")}

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
    "finite_volume": bench_finite_volume,
}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS))
    # pseudo_spectral options
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="grid sizes n")
    # finite_volume options
    parser.add_argument("--fv-sizes", nargs="+", type=int, default=[256, 1024], help="FV grids n")
    # common options
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per timing")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
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
