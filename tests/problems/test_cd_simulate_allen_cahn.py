"""AllenCahn.simulate: the batched ETDRK4 path behind the reference, against exact oracles."""

import math

import numpy as np
import pytest

from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems import get


def grid_of(problem, n):
    return Grid.on(problem.domain().space, n)


def test_batch_equals_separate_runs():
    p = get("convection_diffusion/allen_cahn")
    grid = grid_of(p, 256)
    x = grid.axis(0, "node")
    u0 = np.stack(
        [x**2 * np.cos(math.pi * x), 0.5 * np.sin(math.pi * x), 0.3 * np.cos(3 * math.pi * x)]
    )
    times = np.array([0.0, 0.013, 0.1, 0.25, 0.6, 1.0])  # non-uniform on purpose
    batch = p.simulate({"u": u0}, grid, times)["u"]
    assert batch.shape == (3, 6, 256) and batch.dtype == np.float64
    single = np.stack([p.simulate({"u": u0[b : b + 1]}, grid, times)["u"][0] for b in range(3)])
    # round-off: measured 0 here; batched and single FFTs may round differently elsewhere
    # (1e-14 measured through etdrk4.integrate with states of shape (3, 1, n))
    assert np.abs(batch - single).max() <= 1e-12
    assert np.array_equal(batch[:, 0], u0)


def test_lands_on_non_uniform_times_with_the_exact_spatially_constant_solution():
    """A constant u0 follows u' = r (u - u^3): u(t) = u0 e^{rt} / sqrt(1 - u0^2 + u0^2 e^{2rt}).
    Output times with intervals shorter than, and not multiples of, the reference step 5e-4:
    measured error 3.2e-13 (ETDRK4 at that step; each interval takes its own equal steps)."""
    p = get("convection_diffusion/allen_cahn")
    times = np.array([0.0, 0.0003, 0.05, 0.3007, 0.31, 1.0])
    u = p.simulate({"u": np.full((2, 16), 0.2)}, grid_of(p, 16), times)["u"]
    r = p.r
    exact = 0.2 * np.exp(r * times) / np.sqrt(1 - 0.04 + 0.04 * np.exp(2 * r * times))
    assert np.abs(u - exact[None, :, None]).max() < 2e-12


def test_reference_is_simulate_from_the_problems_own_initial_condition():
    """reference() stores simulate's trajectory on the reference grid and snapshot times."""
    p = get("convection_diffusion/allen_cahn")
    ref = p.reference()
    x, t = ref.axes["x"], ref.axes["t"]
    grid = grid_of(p, x.size)
    np.testing.assert_array_equal(grid.axis(0, "node"), x)
    u = p.simulate({"u": (x**2 * np.cos(math.pi * x))[None]}, grid, t)["u"][0]
    np.testing.assert_array_equal(u, ref.values["u"].T)


def test_blow_up_is_reported():
    p = get("convection_diffusion/allen_cahn")
    with pytest.raises(ParameterError, match="blew up"):
        p.simulate({"u": np.full((1, 16), 100.0)}, grid_of(p, 16), np.array([0.0, 1.0]))


def test_needs_the_periodic_grid():
    p = get("convection_diffusion/allen_cahn")
    bounded = Grid([-1.0], [1.0], 16)
    with pytest.raises(ParameterError, match="periodic"):
        p.simulate({"u": np.zeros((1, 17))}, bounded, np.array([0.0, 1.0]))
