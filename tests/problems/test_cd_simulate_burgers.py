"""Burgers.simulate: Cole-Hopf from any initial data with zero ends, against independent oracles."""

import math

import numpy as np
import pytest
from scipy.integrate import cumulative_simpson, simpson

from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.references.cole_hopf import (
    burgers_dirichlet,
    burgers_sine,
    odd_extension_spline,
)

NU = 0.01 / math.pi


def smooth(x):
    """Not the sine, not odd about 0, positive mass; its odd extension about +-1 is smooth."""
    return -np.sin(math.pi * x) + 0.5 * np.cos(math.pi * x / 2)


def smooth_integral(x):
    """int_{-1}^x smooth."""
    return (np.cos(math.pi * x) + 1) / math.pi + (np.sin(math.pi * x / 2) + 1) / math.pi


def run(problem, u0, n, times):
    grid = Grid.on(problem.domain().space, n)
    return problem.simulate({"u": u0(grid.axis(0, "node"))}, grid, times)["u"]


def orders(errors):
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


@pytest.mark.parametrize(
    "u0, order_s, order_u",
    [(smooth, 4, 4), (lambda x: x * (1 - x**2), 2, 3)],
    ids=["smooth_extension", "u0pp_jumps_at_ends"],
)
def test_spline_of_the_odd_extension(u0, order_s, order_u):
    """S interpolates the data, is odd about both ends (so 4-periodic) and converges at order 4
    where the extension is smooth; 2 (S) and 3 (U = int S) where u0'' jumps across the ends."""
    y = np.linspace(-1.0, 1.0, 4001)
    es, eu = [], []
    for n in (32, 64, 128):
        x = np.linspace(-1.0, 1.0, n + 1)
        S, U = odd_extension_spline(u0(x))
        assert np.abs(S(x) - u0(x)).max() < 1e-15
        far = np.linspace(-3.0, 5.0, 801)
        assert np.abs(S(2.0 - far) + S(far)).max() < 1e-14  # odd about x = 1
        assert np.abs(S(-2.0 - far) + S(far)).max() < 1e-14  # odd about x = -1
        assert np.abs(U(far + 4.0) - U(far)).max() < 1e-14  # U periodic
        es.append(np.abs(S(y) - u0(y)).max())
        if u0 is smooth:
            eu.append(np.abs(U(y) - smooth_integral(y)).max())
    assert np.all(np.abs(orders(es) - order_s) < 0.3), es
    if eu:
        assert np.all(np.abs(orders(eu) - order_u) < 0.3), eu


def test_from_the_sine_it_agrees_with_the_exact_reference():
    """The general path on u0 = -sin(pi x) sampled at the nodes against the sine-specific
    quadrature (<= 1e-8; the two agree to 7e-11 on 513 nodes at 7 times): the difference is the
    spline's interpolation error carried by the flow, order 4. Measured over 101 times in
    [0, 1]: 2.4e-8 on 129 nodes and 1.5e-9 on 257 (order 3.99)."""
    p = get("convection_diffusion/burgers")
    times = np.linspace(0.0, 1.0, 101)
    errs = []
    for n in (128, 256):
        x = np.linspace(-1.0, 1.0, n + 1)
        u = run(p, lambda x: -np.sin(math.pi * x)[None], n, times)[0]
        exact = burgers_sine(*np.meshgrid(x, times), NU)
        errs.append(np.abs(u - exact).max())
    assert errs[0] < 5e-8 and errs[1] < 3e-9, errs
    assert abs(orders(errs)[0] - 4) < 0.3, errs


def test_batch_equals_separate_runs():
    p = get("convection_diffusion/burgers")
    x = np.linspace(-1.0, 1.0, 65)
    u0 = np.stack([-np.sin(math.pi * x), smooth(x), x * (1 - x**2)])
    times = np.array([0.0, 0.01, 0.3, 1.0])
    grid = Grid.on(p.domain().space, 64)
    batch = p.simulate({"u": u0}, grid, times)["u"]
    assert batch.shape == (3, 4, 65) and batch.dtype == np.float64
    single = np.stack([p.simulate({"u": u0[b : b + 1]}, grid, times)["u"][0] for b in range(3)])
    assert np.abs(batch - single).max() <= 1e-15  # measured 0 (one quadrature per state)
    assert np.abs(batch[:, 0] - u0).max() < 1e-15  # the initial row is the data
    assert np.abs(batch[:, :, [0, -1]]).max() < 1e-13  # u(+-1, t) = 0 (measured 7e-15)


def test_initial_states_must_vanish_at_the_ends():
    p = get("convection_diffusion/burgers")
    x = np.linspace(-1.0, 1.0, 33)
    u0 = np.stack([-np.sin(math.pi * x), np.cos(math.pi * x / 4)])
    with pytest.raises(ParameterError, match="initial state 1 .* vanish at both ends"):
        p.simulate({"u": u0}, Grid.on(p.domain().space, 32), np.array([0.0, 0.5]))


def test_non_sine_solution_satisfies_the_equation_at_fourth_order():
    """Independent of Cole-Hopf: the Burgers residual u_t + u u_x - nu u_xx by 4th-order central
    differences of the solution (x and t steps h) converges at order 4 as h halves, 0.15 or more
    away from the steepest point of the shock (measured at h = 4e-3: 8.5e-7, 3.3e-6, 6.5e-8,
    9.3e-10 at t = 0.05, 0.2, 0.5, 0.9). Below h ~ 2e-3 the stencil's nu / h^2 amplifies the
    quadrature's ~1e-11 error to a floor of ~5e-8. With the data vanishing at the ends (checked
    in the batch test) this pins the solution down."""
    x = np.linspace(-1.0, 1.0, 257)
    u0 = smooth(x)
    d1 = np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / 12.0
    d2 = np.array([-1.0, 16.0, -30.0, 16.0, -1.0]) / 12.0
    k = np.arange(-2, 3)
    points = np.linspace(-0.95, 0.95, 77)
    for t in (0.05, 0.2, 0.5, 0.9):
        res = []
        for h in (1.6e-2, 8e-3, 4e-3):
            in_x = burgers_dirichlet(u0, points[:, None] + h * k, np.full((77, 5), t), NU)
            in_t = burgers_dirichlet(u0, np.repeat(points[:, None], 5, 1), t + h * k[None], NU)
            u, ux, uxx = in_x[:, 2], in_x @ d1 / h, in_x @ d2 / h**2
            res.append(in_t @ d1 / h + u * ux - NU * uxx)
        keep = np.abs(points - points[np.argmin(ux)]) > 0.15
        errs = [np.abs(r[keep]).max() for r in res]
        assert np.all(np.abs(orders(errs) - 4) < 0.3), (t, errs)
        assert errs[-1] < 5e-6, (t, errs)


def test_mass_changes_by_the_boundary_fluxes():
    """d/dt int u dx = nu (u_x(1) - u_x(-1)) for F = u^2/2 - nu u_x with u(+-1) = 0. At
    nu = 0.05 (smooth solution) from non-sine data of mass 2/pi: mass (Simpson on 257 nodes)
    against the time integral (Simpson) of the boundary fluxes (one-sided 4th-order differences)
    up to t = 1. Measured: the mass changes by -2.1e-2, and the two agree to 2.6e-9 here (257
    nodes, 201 times; 1.6e-10 on 513 nodes and 401 times: the differences' error)."""
    p = get("convection_diffusion/burgers", nu=0.05)
    times = np.linspace(0.0, 1.0, 201)
    u = run(p, lambda x: smooth(x)[None], 256, times)[0]
    x = np.linspace(-1.0, 1.0, 257)
    mass = simpson(u, x=x, axis=1)
    one_sided = np.array([-25.0, 48.0, -36.0, 16.0, -3.0]) / (12.0 * (x[1] - x[0]))
    flux = p.nu * (-(u[:, ::-1][:, :5] @ one_sided) - u[:, :5] @ one_sided)
    balance = cumulative_simpson(flux, x=times, initial=0.0)
    assert abs(mass[-1] - mass[0]) > 1e-2
    assert np.abs(mass - mass[0] - balance).max() < 1e-8


@pytest.mark.parametrize(
    "u0, quadrature, interpolation",
    [(smooth, 1e-10, 1.5e-9), (lambda x: x * (1 - x**2), 1e-8, 1.8e-5)],
    ids=["smooth_extension", "u0pp_jumps_at_ends"],
)
def test_quadrature_error_is_far_below_the_interpolation_error(u0, quadrature, interpolation):
    """Step 0.05 against 0.0125 in the Hermite variable, 257 nodes, t in [0, 1]: measured 2.8e-11
    for smooth data (largest in the shock, t ~ 0.5) and 2.1e-9 for x (1 - x^2), whose spline has
    large third-derivative jumps near the ends; both far below the spline's interpolation error
    on that grid (measured 1.5e-9 for the sine, 1.8e-5 for x (1 - x^2)), which limits the
    accuracy. Doubling the tail changes nothing beyond round-off."""
    x = np.linspace(-1.0, 1.0, 257)
    X, T = np.meshgrid(x, np.linspace(0.0, 1.0, 26).tolist() + [0.48], indexing="ij")
    base = burgers_dirichlet(u0(x), X, T, NU)
    assert np.abs(base - burgers_dirichlet(u0(x), X, T, NU, step=0.0125)).max() < quadrature
    assert quadrature < interpolation / 10
    assert np.abs(base - burgers_dirichlet(u0(x), X, T, NU, tail=80.0)).max() < 1e-14
