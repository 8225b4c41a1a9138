"""PDEBench diffusion-sorption: parameters, initial value, its Robin outflow condition, and the
finite-volume reference checked by its convergence order, by an independent method-of-lines
solution (scipy BDF), by the balance of the conserved total concentration, by its own residual,
and against the output of the solver before the boundary refactor (a regression guard)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from pdekit.core.stencil import Boundary, Side
from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.references.fv_gpme import problem_boundary, solve_gpme

NAME = "porous_medium/diffusion_sorption"
DATA = Path(__file__).resolve().parents[1] / "data"


def fv(p, cells, times, rtol):
    """The finite-volume trajectory (len(times), cells) from the problem's own initial value."""
    grid = Grid([0.0], [1.0], cells)
    return p.simulate({"u": np.full((1, cells), p.u0)}, grid, times, rtol=rtol)["u"][0]


def test_defaults_and_initial_value_are_pdebench():
    p = get(NAME)
    assert (p.D, p.porosity, p.rho_s, p.k_f, p.n_f) == (5e-4, 0.29, 2880.0, 3.5e-4, 0.874)
    for seed in (0, 1, 17):
        np.random.seed(seed)  # noqa: NPY002 -- PDEBench's generator draws u0 exactly like this
        assert get(NAME, seed=seed).u0 == np.random.uniform(0, 0.2)  # noqa: NPY002
    assert get(NAME).u0 == pytest.approx(0.1097627, abs=1e-7)
    with pytest.raises(ParameterError, match="porosity"):
        get(NAME, porosity=1.0)
    with pytest.raises(ParameterError, match="seed"):
        get(NAME, seed=-1)


def test_retardation_and_storage():
    p = get(NAME)
    u = np.linspace(1e-3, 1.0, 50)
    kappa = (1 - 0.29) / 0.29 * 2880 * 3.5e-4
    np.testing.assert_allclose(p.retardation(u), 1 + kappa * 0.874 * (u + 1e-6) ** (0.874 - 1))
    # storage is the antiderivative of R: central difference of storage equals R
    h = 1e-6
    np.testing.assert_allclose(
        (p.storage(u + h) - p.storage(u - h)) / (2 * h), p.retardation(u), rtol=1e-7
    )
    assert np.isfinite(p.retardation(np.array([0.0, -0.1]))).all()


def coarse_means(u, factor):
    return u.reshape(u.shape[0], -1, factor).mean(axis=-1)


def test_fv_converges_at_second_order():
    """Differences between successive refinements (cell means of the finer grid against the
    coarser cells) fall by 4 per halving, on average over space and time (measured ratios 4.2,
    5.0 at 256/512/1024 cells on the max; the mean falls as 4.1, 4.2)."""
    p = get(NAME)
    times = np.linspace(0.0, 500.0, 11)
    runs = {n: fv(p, n, times, 1e-8) for n in (64, 128, 256)}
    d1 = np.abs(coarse_means(runs[128], 2) - runs[64])[1:].mean()
    d2 = np.abs(coarse_means(runs[256], 2) - runs[128])[1:].mean()
    observed = np.log2(d1 / d2)
    print(f"\n[diffusion_sorption] self-convergence: {d1:.3e}, {d2:.3e}; order {observed:.2f}")
    assert 1.8 < observed < 2.3


def test_fv_matches_independent_method_of_lines_with_bdf():
    """The same finite-volume space discretisation written out by hand (ghost value 2 - u_1 at
    x = 0; the second-order one-sided Robin face value at x = 1) and integrated by scipy's BDF:
    the RKC2 solution agrees to the time tolerances."""
    p = get(NAME, seed=3)
    n, h, D = 64, 1.0 / 64, p.D
    times = np.linspace(0.0, 500.0, 6)

    def rhs(t, u):
        ub = (D * (9 * u[-1] - u[-2]) / (3 * h)) / (1.0 + 8 * D / (3 * h))  # u + D u_x = 0
        flux = np.empty(n + 1)  # F = -D u_x on the faces
        flux[1:-1] = -D * (u[1:] - u[:-1]) / h
        flux[0] = -D * (u[0] - 1.0) / (h / 2)
        flux[-1] = -D * (8 * ub - 9 * u[-1] + u[-2]) / (3 * h)
        return -(flux[1:] - flux[:-1]) / h / p.retardation(u)

    bdf = solve_ivp(rhs, (0, 500), np.full(n, p.u0), "BDF", times, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fv(p, n, times, 1e-9), bdf.y.T, rtol=0, atol=2e-7)


def test_total_concentration_balances_the_boundary_fluxes():
    """d/dt int (u + S(u)) dx = F(0) - F(1): the capacity form conserves the total concentration
    in the time-continuous limit; check it to the accuracy of the trapezoidal time integral of
    the boundary fluxes (outputs at 100 (k/2000)^2 s, dense where the inflow ~ t^(-1/2)).
    Measured budget misfit 3.3e-6, 9.0e-7, 2.7e-7 with 1000, 2000, 4000 outputs: the quadrature's
    error, so the scheme's own is smaller still."""
    p = get(NAME)
    n, h = 128, 1.0 / 128
    times = 100.0 * np.linspace(0.0, 1.0, 2001) ** 2
    u = fv(p, n, times, 1e-9)
    total = p.storage(u).sum(axis=1) * h
    ub = (p.D * (9 * u[:, -1] - u[:, -2]) / (3 * h)) / (1 + 8 * p.D / (3 * h))
    inflow = -p.D * (u[:, 0] - 1.0) / (h / 2)  # F(0) = -D u_x
    net = inflow - ub  # F(1) = -D u_x = u(1)
    steps = 0.5 * (net[1:] + net[:-1]) * np.diff(times)
    budget = total[0] + np.concatenate([[0.0], np.cumsum(steps)])
    assert np.abs(total - budget).max() < 2e-6 * total[-1]
    assert total[-1] > 1.5 * total[0]  # and something did flow in


def test_reference_grid_values():
    p = get(NAME)
    ref = p.reference()
    grid = p.evaluation_grid()
    u = ref(grid.points())["u"].reshape(grid.shape)
    assert grid.shape == (1024, 101)
    assert ((u > 0) & (u <= 1 + 1e-12)).all()  # maximum principle
    np.testing.assert_allclose(u[1:-1, 0], p.u0, rtol=0, atol=1e-14)  # initial condition
    np.testing.assert_allclose(u[0, 1:], 1.0, rtol=0, atol=1e-14)  # u(0, t) = 1
    assert np.all(np.diff(u[0:, -1]) < 0)  # at t = 500 the profile decreases from x = 0
    # the Robin face value u(1) = -D u_x(1): one-sided slope of the reference at x = 1
    h = 2 * (ref.axes["x"][-1] - ref.axes["x"][-2])  # the last cell centre is h/2 inside
    ux = (8 * ref.values["u"][-1] - 9 * ref.values["u"][-2] + ref.values["u"][-3]) / (3 * h)
    np.testing.assert_allclose(ref.values["u"][-1, 1:], -p.D * ux[1:], rtol=1e-10)


def test_reference_satisfies_the_pde_away_from_the_initial_jump():
    """The residual u_t - D/R u_xx of the cached reference data (centred differences on its own
    cell-centre nodes and 1 s output times), relative to |u_t| + D/R |u_xx|, for t >= 50 s."""
    p = get(NAME)
    ref = p.reference()
    x, t, u = ref.axes["x"][1:-1], ref.axes["t"], ref.values["u"][1:-1]
    keep = np.flatnonzero(t >= 50.0)[:-1]
    h, dt = x[1] - x[0], t[keep[0] + 1] - t[keep[0]]
    ut = (u[1:-1, keep + 1] - u[1:-1, keep - 1]) / (2 * dt)
    uxx = (u[2:, keep] - 2 * u[1:-1, keep] + u[:-2, keep]) / h**2
    diff = p.D / p.retardation(u[1:-1, keep]) * uxx
    rel = np.abs(ut - diff).sum() / (np.abs(ut) + np.abs(diff)).sum()
    print(f"\n[diffusion_sorption] relative residual of the reference, t >= 50 s: {rel:.2e}")
    assert rel < 1e-3  # O(dt^2 + h^2) differences of a smooth solution


def test_outflow_condition_is_one_robin_bc():
    """x = 1: u + D du/dn = 0 (n = +x), declared once as a BC, read by the solver as a Robin side
    with a = 1, b = D and value 0; x = 0: Dirichlet 1."""
    p = get(NAME, D=2e-3)
    left, right = p.boundary_conditions()
    assert (left.kind, left.tag, right.kind, right.tag) == ("dirichlet", "xmin", "robin", "xmax")
    pts = torch.tensor([[1.0, 0.0], [1.0, 250.0]], dtype=torch.float64)
    a, b = right.coefficients(pts)
    assert a.tolist() == [1.0, 1.0] and b.tolist() == [2e-3, 2e-3]
    assert right.value(pts)["u"].tolist() == [0.0, 0.0]
    (axis,) = problem_boundary(p, Grid([0.0], [1.0], 8))
    assert (axis.lo.kind, axis.hi.kind, axis.hi.a, axis.hi.b) == ("dirichlet", "robin", 1.0, 2e-3)
    assert axis.lo.value(3.0).tolist() == [1.0] and axis.hi.value(3.0).tolist() == [0.0]
    assert not hasattr(p, "robin_conditions") and not hasattr(p, "solve_fv")


def test_bc_read_from_the_problem_equals_the_explicit_construction():
    """simulate (BCs read from the problem) against solve_gpme with the boundary written out as
    the code before the refactor built it (Dirichlet 1 at x = 0; Robin a = 1, b = D, g = 0 at
    x = 1), and against that code's own output.

    The regression guard ``tests/data/regression_guard_fv_diffusion_sorption_64.npz`` (u at
    t = 0, 1, 5, 20, 100, 500 s, 64 cells, rtol 1e-7, default parameters) was made by running
    ``DiffusionSorption().solve_fv(64, times, rtol=1e-7)`` of commit 5aa3963 (its
    ``pdekit/`` exported by ``git archive`` and run alone). Measured: both differences are 0.0
    (bit-identical); the bound allows round-off only."""
    p = get(NAME)
    guard = np.load(DATA / "regression_guard_fv_diffusion_sorption_64.npz")
    times = guard["times"]
    u = fv(p, 64, times, 1e-7)
    grid = Grid([0.0], [1.0], 64)
    explicit = Boundary(Side("dirichlet", 1.0), Side("robin", 0.0, a=1.0, b=p.D))
    by_hand = solve_gpme(
        grid,
        lambda v: np.full_like(v, p.D),
        p.u0,
        times,
        [explicit],
        kirchhoff=lambda v: p.D * v,
        capacity=p.retardation,
        rtol=1e-7,
        atol=1e-9,
    ).u
    assert u.shape == guard["u"].shape == (6, 64)
    assert np.abs(u - by_hand).max() <= 1e-14
    assert np.abs(u - guard["u"]).max() <= 1e-14
