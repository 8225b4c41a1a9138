"""The exact flow map of the Burgers benchmark (benchmarks/burgers_label_plane.py), which the
Lagrangian PINN's notes rest on, checked against the Lagrangian form of the equation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from pdekit.problems.references.cole_hopf import burgers_sine


def _bench():
    path = Path(__file__).parents[2] / "benchmarks" / "burgers_label_plane.py"
    spec = importlib.util.spec_from_file_location("bench_burgers_label_plane", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_state_along_the_exact_characteristics_changes_by_the_diffusion_term():
    """Along X'(t) = u(X, t) the state w = u(X, t) obeys w_t = nu u_xx(X, t): its change by
    t = 0.3 (up to 0.07) equals Simpson's rule on nu u_xx over the computed characteristics
    (30 intervals; 9.5e-6 measured, asserted 2e-5; the trapezoidal rule 5.8e-4 would fail),
    and the map is monotone."""
    bench = _bench()
    a = np.linspace(0.02, 0.98, 49)
    n, end = 30, 0.3
    times = tuple(round(k * end / n, 10) for k in range(1, n + 1))
    maps = bench.flow_map(a, times, 1e-3)
    xs = [a] + [maps[t] for t in times]
    ts = (0.0,) + times
    diffusion = np.array(
        [
            bench.NU * burgers_sine(x, np.full_like(x, t), bench.NU, derivatives=True)["u_xx"]
            for x, t in zip(xs, ts, strict=True)
        ]
    )
    h = end / n
    simpson = (h / 3) * (
        diffusion[0] + diffusion[-1] + 4 * diffusion[1:-1:2].sum(0) + 2 * diffusion[2:-1:2].sum(0)
    )
    change = burgers_sine(maps[end], np.full_like(a, end), bench.NU) + np.sin(np.pi * a)
    assert np.abs(change).max() > 0.05  # the viscous change is not negligible here
    np.testing.assert_allclose(change, simpson, rtol=0, atol=2e-5)
    assert np.all(np.diff(maps[end]) > 0)  # characteristics of a smooth solution never cross
