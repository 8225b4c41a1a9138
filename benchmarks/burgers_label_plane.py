"""What the Lagrangian PINN has to represent for viscous Burgers: the exact flow map.

Integrates the characteristics of the benchmark's Burgers problem (u0 = -sin(pi x), nu = 0.01/pi)
through the exact Cole-Hopf solution, dX/dt = u(X, t), X(a, 0) = a, by the classical fourth-order
Runge-Kutta method, and describes the exact Lagrangian unknowns X(a, t) and w(a, t) = u(X, t)
that ``lagrangian_pinn`` learns. By symmetry only labels a in (0, 1) are followed. Per time:

* ``collapsed_below``: the largest label whose characteristic is within ``1e-6`` of the shock
  at x = 0: every label in (-a, a) has been absorbed into the viscous layer and squeezed there;
* ``first_column_labels``: the labels that end in (1e-6, dx] with dx = 2/255, between the
  shock and the second column of the benchmark's 256-point grid, i.e. around its first column
  x = 1/255 = 0.0039, where nine-tenths of the inviscid answer's squared error sits;
* ``front``: the labels over which w/u0(a) rises from 0.1 to 0.9, and the front's width: in
  the label plane the Eulerian shock, which stands still at x = 0, becomes a front that moves
  outwards at ``front_speed`` (labels per unit time, the second-order finite difference of the
  front's inner edge over the reported times) with the absorbed labels.

    python benchmarks/burgers_label_plane.py [--dt 1e-3] [--out FILE]

Writes ``benchmarks/results/burgers_label_plane.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from pdekit.problems.references.cole_hopf import burgers_sine

NU = 0.01 / math.pi
#: reported times (after the shock forms at t = 1/pi)
TIMES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: the benchmark grid's spacing in x (256 points on [-1, 1])
DX = 2.0 / 255
COLLAPSED = 1e-6


def labels() -> np.ndarray:
    """Labels in (0, 1): every 1e-3 where the front passes after t = 0.3, coarser elsewhere."""
    return np.concatenate(
        [
            np.linspace(0.01, 0.2, 19, endpoint=False),
            np.linspace(0.2, 0.8, 600, endpoint=False),
            np.linspace(0.8, 0.99, 20),
        ]
    )


def flow_map(a: np.ndarray, times, dt: float) -> dict[float, np.ndarray]:
    """X(a, t) at each of ``times`` (multiples of ``dt``) by RK4 through the exact solution."""

    def u(x, t):
        return burgers_sine(x, np.full_like(x, t), NU)

    wanted = {round(tt / dt): tt for tt in times}
    if len(wanted) != len(times) or any(abs(k * dt - tt) > 1e-9 for k, tt in wanted.items()):
        raise ValueError(f"every time must be a distinct whole number of steps dt = {dt}: {times}")
    x = a.astype(float).copy()
    out, t, n = {}, 0.0, max(wanted)
    for k in range(1, n + 1):
        k1 = u(x, t)
        k2 = u(x + 0.5 * dt * k1, t + 0.5 * dt)
        k3 = u(x + 0.5 * dt * k2, t + 0.5 * dt)
        k4 = u(x + dt * k3, t + dt)
        x = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        t = k * dt
        if k in wanted:
            out[wanted[k]] = x.copy()
    return out


def describe(a: np.ndarray, x: np.ndarray, t: float) -> dict:
    w = burgers_sine(x, np.full_like(x, t), NU)
    u0 = -np.sin(math.pi * a)
    ratio = w / u0  # 1 on a label that still carries its initial value, 0 once absorbed
    collapsed = a[np.abs(x) < COLLAPSED]
    edge = collapsed.max() if collapsed.size else 0.0
    first = a[(x > COLLAPSED) & (x <= DX)]
    beyond = a > edge  # outside the collapsed labels, where u0 is away from zero
    lo = a[beyond & (ratio > 0.1)].min()
    hi = a[beyond & (ratio > 0.9)].min()
    return {
        "t": t,
        "collapsed_below": float(edge),
        "first_column_labels": [float(first.min()), float(first.max())] if first.size else None,
        "front": [float(lo), float(hi)],
        "front_width": float(hi - lo),
        "min_dX_da": float(np.min(np.diff(x) / np.diff(a))),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dt", type=float, default=1e-3, help="RK4 time step (a divisor of 0.1)")
    ap.add_argument("--out", default="benchmarks/results/burgers_label_plane.json")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    a = labels()
    maps = flow_map(a, TIMES, args.dt)
    rows = [describe(a, maps[t], t) for t in TIMES]
    speeds = np.gradient([r["front"][0] for r in rows], TIMES, edge_order=2)
    for r, v in zip(rows, speeds, strict=True):
        r["front_speed"] = float(v)
    out = {
        "problem": "convection_diffusion/burgers",
        "nu": NU,
        "dt": args.dt,
        "labels": int(a.size),
        "wall_s": time.perf_counter() - start,
        "times": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(
        f"{'t':>4s} {'collapsed |a| <':>16s} {'first column labels':>22s} "
        f"{'front (w/u0 0.1..0.9)':>24s}"
        f" {'width':>7s} {'speed':>6s}"
    )
    for r in rows:
        fc = r["first_column_labels"]
        fcs = f"{fc[0]:.4f}-{fc[1]:.4f}" if fc else "-"
        print(
            f"{r['t']:4.1f} {r['collapsed_below']:16.4f} {fcs:>22s} "
            f"{r['front'][0]:11.4f}-{r['front'][1]:.4f} {r['front_width']:7.4f} "
            f"{r['front_speed']:6.2f}"
        )
    print(f"wrote {args.out} ({out['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
