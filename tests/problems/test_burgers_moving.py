"""The moving-front Burgers case (u0 = sin x + c): exact solution against an independent solver.

The exact solution is a Galilean shift of the Cole-Hopf integral (``moving_sine``); the ETDRK4
Fourier solver of ``simulate`` shares nothing with it but the equation. Their agreement, the
solver's measured order in time, its conservation of mass and the exact solution's own
consistency (initial data, periodicity, Galilean shift) are checked here; the residual of the
reference is checked with every other problem in ``test_registry_consistency.py``.
"""

import math

import numpy as np
import pytest

import pdekit
from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.convection_diffusion.burgers_moving import _integrate, moving_sine

NAME = "convection_diffusion/burgers_moving"
#: |u(x, 0) - u0| of a Lagrangian PINN solution after 3 steps: 0 measured (exact by
#: construction; at t = 0.5 the same solution is 2.0 off the reference)
TOL_T0 = 1e-12
TIMES = np.linspace(0.0, 1.0, 11)


def nodes(n):
    return 2 * math.pi * np.arange(n) / n


def simulate(problem, u0, n, times=TIMES):
    grid = Grid.on(problem.domain().space, n)
    return problem.simulate({"u": u0(nodes(n))[None]}, grid, times)["u"][0]


@pytest.mark.parametrize("c", [0.0, 30.0])
def test_etdrk4_agrees_with_the_galilean_cole_hopf_solution(c):
    """On 1024 nodes, steps of 1e-3: max |ETDRK4 - exact| over nodes and 11 times, measured
    7.9e-11 (c = 0) and 8.0e-11 (c = 10 and 30) with the front at t = 1 (on 512 nodes 3.2e-7: the
    front's spatial resolution). Bound 1e-9, the Cole-Hopf reference's own ~1e-12 below it."""
    problem = get(NAME, c=c)
    u = simulate(problem, lambda x: np.sin(x) + c, 1024)
    exact = moving_sine(nodes(1024)[None], TIMES[:, None], c, problem.nu)
    assert np.abs(u - exact).max() < 1e-9


def test_etdrk4_is_fourth_order_in_time():
    """Max error at t = 1 against the exact solution, 1024 nodes, c = 10: steps 2e-3 and 1e-3
    (measured 1.2e-9 and 8.0e-11, ratio 15.2: order 3.9; below 2.5e-4 the 6e-13 floor of
    round-off and quadrature)."""
    x = nodes(1024)
    exact = moving_sine(x, 1.0, 10.0, 0.01)
    times = np.array([0.0, 1.0])
    err = [
        np.abs(_integrate((np.sin(x) + 10.0)[None], times, 0.01, h)[0, -1] - exact).max()
        for h in (2e-3, 1e-3)
    ]
    assert math.log2(err[0] / err[1]) > 3.7


def test_simulate_conserves_mass_and_handles_a_batch():
    """A batch of two different states: each keeps its mean to round-off (the mean mode is
    never updated), and the second, a shifted copy of the first, stays shifted by the same
    number of nodes (translation invariance of the equation and of the Fourier solver)."""
    problem = get(NAME)
    n = 256
    x = nodes(n)
    base = 0.8 * np.sin(x) + 0.3 * np.cos(2 * x) + 2.0
    u0 = np.stack([base, np.roll(base, 17)])
    u = problem.simulate({"u": u0}, Grid.on(problem.domain().space, n), TIMES)["u"]
    np.testing.assert_allclose(u.mean(-1), u0.mean(-1)[:, None].repeat(len(TIMES), 1), atol=1e-13)
    np.testing.assert_allclose(np.roll(u[0], 17, axis=-1), u[1], atol=1e-12)


def test_exact_solution_initial_data_periodicity_and_shift():
    """u(x, 0) = sin x + c; u is 2 pi-periodic in x; u(x, t; c) = c + u(x - c t, t; 0) by
    definition of the Galilean shift, checked here against the offset-free solution evaluated
    at the shifted points, without the wrap into [0, 2 pi)."""
    x = np.linspace(0.0, 2 * math.pi, 257)
    c = 30.0
    np.testing.assert_allclose(moving_sine(x, 0.0, c, 0.01), np.sin(x) + c, atol=1e-12)
    t = np.full_like(x, 0.7)
    np.testing.assert_allclose(
        moving_sine(x, t, c, 0.01), moving_sine(x + 2 * math.pi, t, c, 0.01), atol=1e-12
    )
    np.testing.assert_allclose(
        moving_sine(x, t, c, 0.01), c + moving_sine(x - c * 0.7, t, 0.0, 0.01), atol=1e-11
    )


def test_front_travels_at_the_offset():
    """The steepest descent of u at t = 1 sits where the c = 0 front sits (x = pi), moved by c:
    at c = 10 within one node of pi + 10 (mod 2 pi), on 4096 nodes."""
    x = nodes(4096)
    for c in (0.0, 10.0):
        u = moving_sine(x, 1.0, c, 0.01)
        slope = np.gradient(u, x)
        steepest = x[np.argmin(slope)]
        expected = np.mod(math.pi + c, 2 * math.pi)
        gap = abs((steepest - expected + math.pi) % (2 * math.pi) - math.pi)
        assert gap <= x[1], (c, steepest, expected)


def test_mass_and_wave_norm():
    problem = get(NAME, c=10.0)
    pts = problem.evaluation_grid().points()
    assert problem.total_mass(0.5) == pytest.approx(20 * math.pi)
    ref = problem.reference()(pts)["u"]
    assert problem.wave_norm(pts) == pytest.approx(np.linalg.norm(ref - 10.0))
    # sin x has L2 norm sqrt(pi) per unit time on the period: the wave's norm is of that order,
    # the field's of c sqrt(2 pi) (the offset dominates relative errors)
    assert problem.wave_norm(pts) < 0.1 * np.linalg.norm(ref)


def test_parameters_are_checked():
    with pytest.raises(ParameterError, match="c"):
        get(NAME, c=1000.0)
    with pytest.raises(ParameterError, match="nu"):
        get(NAME, nu=0.0)


def test_lagrangian_pinn_accepts_it_and_scores_against_the_exact_solution():
    """The Lagrangian PINN checks that velocity u and diffusivity nu reproduce the problem's
    residual before it trains (``lagrangian_form_mismatch``); a few steps then give a
    Solution scored against the exact reference."""
    from pdekit.solvers.lagrangian_pinn import lagrangian_form_mismatch

    problem = get(NAME, c=10.0)
    assert lagrangian_form_mismatch(problem) is None
    sol = pdekit.solve(
        NAME,
        solver="lagrangian_pinn",
        c=10.0,
        verbose=False,
        overrides={"train.steps": 3, "train.lbfgs_steps": 0},
    )
    assert np.isfinite(sol.errors()["rel_l2"])
    # the Lagrangian PINN holds its initial data exactly by construction (X(a, 0) = a,
    # w(a, 0) = u0(a)): after 3 steps its Eulerian answer at t = 0 is still sin x + c, through
    # the inverse map and the offset, to round-off
    x = np.linspace(0.0, 2 * math.pi, 64, endpoint=False)
    at0 = sol(np.stack([x, np.zeros_like(x)], axis=1))["u"]
    np.testing.assert_allclose(at0, np.sin(x) + 10.0, atol=TOL_T0)
