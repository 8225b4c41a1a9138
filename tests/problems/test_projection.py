"""Chorin projection reference on MAC scenes: orders, divergence, Ghia's cavity, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pdekit.errors import ConvergenceError, ParameterError
from pdekit.geometries.grid import Grid
from pdekit.problems.mac import MacScene, cavity_scene, divergence, enclosed_grid
from pdekit.problems.references import cavity
from pdekit.problems.references.grid import GridReference
from pdekit.problems.references.projection import (
    PeriodicProjectionSolver,
    ProjectionSolver,
    diffusion_limit,
    stable_dt,
)

DATA = Path(__file__).resolve().parents[1] / "data"
NU_TG = 0.1


def ghia(name):
    """(coordinate, value) columns of a Ghia et al. (1982) table in tests/data."""
    return np.loadtxt(DATA / name, delimiter=",", comments="#", skiprows=2)


def box(n: int) -> Grid:
    return Grid((0.0, 0.0), (2 * math.pi, 2 * math.pi), n, periodic=True)


def taylor_green(grid: Grid, t: float, nu: float = NU_TG):
    """u, v at their own MAC positions (face_x, face_y) and p at centres."""
    xu, yu = np.meshgrid(*grid.axes("face_x").values(), indexing="ij")
    xv, yv = np.meshgrid(*grid.axes("face_y").values(), indexing="ij")
    xc, yc = np.meshgrid(*grid.axes("center").values(), indexing="ij")
    d = math.exp(-2 * nu * t)
    p = -0.25 * (np.cos(2 * xc) + np.cos(2 * yc)) * d**2
    return np.cos(xu) * np.sin(yu) * d, -np.sin(xv) * np.cos(yv) * d, p


def fluid_divergence(scene_or_grid, u, v) -> float:
    """max |mac.divergence| over the fluid cells."""
    if isinstance(scene_or_grid, MacScene):
        grid, fluid = scene_or_grid.grid, scene_or_grid.fluid
    else:
        grid, fluid = scene_or_grid, torch.ones(scene_or_grid.n, dtype=torch.bool)
    div = divergence(torch.as_tensor(u), torch.as_tensor(v), grid)
    return float(div[fluid].abs().max())


def channel_scene(column_velocity: float | None = None, outflow: float = 1.0) -> MacScene:
    """A 2 x 1 channel, 24 x 12 cells: inflow u = 1 through the left ring, outflow through the
    right ring, a square obstacle at rest; with ``column_velocity`` a full-height solid column
    moving at that u splits the fluid into two regions."""
    grid = enclosed_grid((0.0, 0.0), (2.0, 1.0), (24, 12))
    H, W = grid.n
    solid = torch.ones(H, W, dtype=torch.bool)
    solid[1:-1, 1:-1] = False
    solid[6:9, 5:8] = True
    wall = torch.zeros(2, H, W, dtype=torch.float64)
    wall[0, 0, 1:-1] = 1.0
    wall[0, -1, 1:-1] = outflow
    if column_velocity is not None:
        solid[16:18, :] = True
        wall[0, 16:18, 1:-1] = column_velocity
    return MacScene(grid, solid, wall, name="channel")


# -- Taylor-Green: orders in space and time --------------------------------------------------------
def test_taylor_green_second_order_in_space():
    """Periodic [0, 2 pi)^2, nu = 0.1, t = 1, dt = T / ceil(2 T / AB2 limit) (dt ~ h^2, time error
    O(dt^2) ~ h^4, negligible). Measured max velocity errors 1.95e-3, 5.15e-4, 1.31e-4 on
    n = 16, 32, 64 (orders 1.92, 1.98); pressure (at t - dt/2) 7.5e-3, 2.0e-3, 5.0e-4.
    Divergence to round-off: measured 4.0e-15, 1.6e-15, 1.8e-14, asserted < 1e-13 n."""
    T = 1.0
    errs, perrs = [], []
    for n in (16, 32, 64):
        grid = box(n)
        steps = math.ceil(T / (0.5 * diffusion_limit(grid, NU_TG)))
        dt = T / steps
        u0, v0, _ = taylor_green(grid, 0.0)
        run = PeriodicProjectionSolver(grid, NU_TG, dt).run(u0, v0, T)
        assert run.steps == steps
        ue, ve, _ = taylor_green(grid, T)
        pe = taylor_green(grid, T - dt / 2)[2]  # AB2's phi approximates p at t_n + dt/2
        errs.append(max(np.abs(run.u[-1] - ue).max(), np.abs(run.v[-1] - ve).max()))
        perrs.append(np.abs(run.p[-1] - pe).max())
        assert fluid_divergence(grid, run.u[-1], run.v[-1]) < 1e-13 * n
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    porders = np.log2(np.array(perrs[:-1]) / np.array(perrs[1:]))
    msg = f"velocity max errors {errs}, orders {orders}; pressure {perrs}, orders {porders}"
    assert orders.min() >= 1.8, msg
    assert porders.min() >= 1.8, msg
    assert errs[-1] < 2e-4, msg


@pytest.mark.parametrize("scheme, order", [("ab2", 2), ("euler", 1)])
def test_time_order(scheme, order):
    """On n = 16 (space error fixed), Taylor-Green plus a shear 0.5 sin 2y (the advection term
    no longer vanishes), against dt / 64 with AB2: observed orders 2.07, 2.04, 2.03 (AB2) and
    1.15, 1.07, 1.03 (Euler) over dt, dt/2, dt/4, dt/8."""
    T, grid = 1.0, box(16)
    u0, v0, _ = taylor_green(grid, 0.0)
    u0 = u0 + 0.5 * np.sin(2 * grid.axis(1, "face_x"))[None, :]
    base = T / math.ceil(T / diffusion_limit(grid, NU_TG, scheme))
    ref = PeriodicProjectionSolver(grid, NU_TG, base / 64).run(u0, v0, T)
    errs = []
    for k in (1, 2, 4, 8):
        run = PeriodicProjectionSolver(grid, NU_TG, base / k, scheme=scheme).run(u0, v0, T)
        errs.append(max(np.abs(run.u[-1] - ref.u[-1]).max(), np.abs(run.v[-1] - ref.v[-1]).max()))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - order) < 0.2), (errs, orders)


# -- divergence, boundary values, regions ----------------------------------------------------------
def _random_state(solver, seed=0):
    rng = np.random.default_rng(seed)
    return solver.impose(rng.standard_normal(solver.shape), rng.standard_normal(solver.shape))


@pytest.mark.parametrize(
    "make", [lambda: cavity_scene(24), lambda: channel_scene(), lambda: channel_scene(1.0)]
)
def test_divergence_free_after_a_step(make):
    """From a random (divergent) state: after one step max |div| on fluid cells <= 1e-12 max|u|/h
    (direct LU solve, round-off: measured 1.3e-15, 5.1e-14, 5.8e-15 relative); boundary values
    as the scene prescribes (measured 1.1e-16)."""
    scene = make()
    solver = ProjectionSolver(scene, 0.01, 0.5 * stable_dt(scene, 0.01, 3.0))
    u, v = _random_state(solver)
    assert fluid_divergence(scene, u, v) > 1.0  # the input is far from divergence-free
    for _ in range(3):
        u, v, p = solver.step(u, v)
        assert isinstance(u, np.ndarray) and u.dtype == np.float64 and u.shape == scene.shape
        scale = max(np.abs(u).max(), np.abs(v).max()) / min(scene.grid.spacing)
        div = fluid_divergence(scene, u, v)
        assert div <= 1e-12 * scale, (div, scale)
        res = scene.conditions(torch.as_tensor(u), torch.as_tensor(v))
        assert max(float(r.abs().max()) for r in res.values()) < 1e-14
        assert np.all(p[scene.solid.numpy()] == 0)


def test_regions_each_pinned_and_balanced():
    """A moving full-height column splits the channel in two fluid regions, each balanced
    (the column carries the flux through); one pressure constant per region. Round-off:
    measured max |div| 3.5e-15 (max|u|/h = 19), region means of p 0 and 1.2e-17."""
    scene = channel_scene(column_velocity=1.0)
    solver = ProjectionSolver(scene, 0.01, 0.5 * stable_dt(scene, 0.01, 2.0))
    assert solver._n_regions == 2
    run = solver.run(np.zeros(scene.shape), np.zeros(scene.shape), 0.2)
    assert fluid_divergence(scene, run.u[-1], run.v[-1]) < 1e-12
    fluid = scene.fluid.numpy()
    left, right = fluid.copy(), fluid.copy()
    left[16:] = False
    right[:16] = False
    for region in (left, right):
        assert abs(run.p[-1][region].mean()) < 1e-14


# -- lid-driven cavity at Re = 100 -----------------------------------------------------------------
@pytest.fixture(scope="module")
def steady_cavities():
    """Steady Re = 100 cavities on 32 and 48 cells (forward Euler, the cheaper route to the same
    steady state: test_steady_state_does_not_depend_on_the_time_scheme); ~0.8 s and ~1.5 s."""
    out = {}
    for n in (32, 48):
        scene = cavity_scene(n)
        solver = ProjectionSolver(
            scene, 0.01, 0.9 * stable_dt(scene, 0.01, 1.0, scheme="euler"), scheme="euler"
        )
        out[n] = (scene, solver.run_to_steady(tol=1e-6, max_time=100.0))
    return out


def centrelines(scene: MacScene, u: np.ndarray, v: np.ndarray):
    """(y of u samples on x = 0.5, u there), (x of v samples on y = 0.5, v there), ghosts
    included (the line from a ghost to its fluid neighbour passes the wall value at the wall)."""
    g = scene.grid
    i = int(np.argmin(np.abs(g.axis(0, "face_x") - 0.5)))
    j = int(np.argmin(np.abs(g.axis(1, "face_y") - 0.5)))
    assert abs(g.axis(0, "face_x")[i] - 0.5) < 1e-12 and abs(g.axis(1, "face_y")[j] - 0.5) < 1e-12
    return (g.axis(1, "face_x"), u[i]), (g.axis(0, "face_y"), v[:, j])


def test_cavity_re100_matches_ghia(steady_cavities):
    """Centreline values linearly interpolated to Ghia's points. Measured max deviation (u, v):
    32 cells 0.0065, 0.0039; 48 cells 0.0021, 0.0063 (64 cells 0.0026, 0.0072). Ghia's 129^2
    table carries its own error: the project's converged 128-cell reference differs from it by
    up to 0.0044 (u) and 0.0084 (v), so the deviation cannot fall below ~0.008 in v; hence the
    tolerance 0.01 on both grids (the bar the project's own cavity reference meets), and the
    convergence check against the converged reference instead (next test)."""
    u_tab = ghia("ghia1982_u_vertical_centerline_re100.csv")
    v_tab = ghia("ghia1982_v_horizontal_centerline_re100.csv")
    for n, (scene, steady) in steady_cavities.items():
        (yu, uc), (xv, vc) = centrelines(scene, steady.u, steady.v)
        du = np.abs(np.interp(u_tab[:, 0], yu, uc) - u_tab[:, 1]).max()
        dv = np.abs(np.interp(v_tab[:, 0], xv, vc) - v_tab[:, 1]).max()
        assert max(du, dv) <= 0.01, (n, du, dv)
        scale = 1.0 / min(scene.grid.spacing)  # round-off: measured 3.4e-16, 1.1e-15 x scale
        assert fluid_divergence(scene, steady.u, steady.v) <= 1e-12 * scale


def test_cavity_re100_converges_to_the_project_reference(steady_cavities):
    """Against the project's Newton vorticity-streamfunction solution on 128 cells
    (references/cavity.py, cubic interpolation to the MAC samples, error ~1e-3): max centreline
    error at the fluid samples, measured u 0.0119 -> 0.0047, v 0.0086 -> 0.0033 from 32 to 48
    cells (orders 2.3, 2.4; 64 cells: 0.0023, 0.0015); asserted order >= 1.8 and < 0.006 on 48."""
    ref = cavity.solve(100.0, 128)
    interp = GridReference(
        {"x": ref.x, "y": ref.x},
        {"u": ref.u, "v": ref.v},
        (False, False),
        description="cavity Re=100, 128 cells",
        accuracy="~1e-3",
    )
    errs = {}
    for n, (scene, steady) in steady_cavities.items():
        (yu, uc), (xv, vc) = centrelines(scene, steady.u, steady.v)
        fu, fv = (yu > 0) & (yu < 1), (xv > 0) & (xv < 1)  # fluid samples only
        yu, uc, xv, vc = yu[fu], uc[fu], xv[fv], vc[fv]
        ur = interp(np.stack([np.full(yu.size, 0.5), yu], axis=1))["u"]
        vr = interp(np.stack([xv, np.full(xv.size, 0.5)], axis=1))["v"]
        errs[n] = (np.abs(uc - ur).max(), np.abs(vc - vr).max())
    orders = np.log(np.array(errs[32]) / np.array(errs[48])) / np.log(48 / 32)
    assert orders.min() >= 1.8, (errs, orders)
    assert max(errs[48]) < 0.006, errs


def test_steady_state_does_not_depend_on_the_time_scheme():
    """16 cells, tol 1e-8: AB2 and forward Euler (two dt) reach the same state to ~1e-10
    (measured 1.4e-10, asserted 1e-9): the steady state is the discrete steady Navier-Stokes
    solution."""
    scene = cavity_scene(16)
    states = []
    for scheme, fraction in (("ab2", 0.9), ("euler", 0.9), ("euler", 0.3)):
        dt = fraction * stable_dt(scene, 0.01, 1.0, scheme=scheme)
        states.append(ProjectionSolver(scene, 0.01, dt, scheme=scheme).run_to_steady(1e-8, 100))
    for other in states[1:]:
        assert np.abs(other.u - states[0].u).max() < 1e-9
        assert np.abs(other.v - states[0].v).max() < 1e-9
        assert np.abs(other.p - states[0].p).max() < 1e-9


# -- API -------------------------------------------------------------------------------------------
def test_step_continues_the_ab2_history_like_run():
    grid = box(16)
    u0, v0, _ = taylor_green(grid, 0.0)
    u0 = u0 + 0.3 * np.sin(2 * grid.axis(1, "face_x"))[None, :]
    solver = PeriodicProjectionSolver(grid, NU_TG, 0.05)
    run = solver.run(u0, v0, 0.2, times=[0.0, 0.1, 0.2])
    np.testing.assert_array_equal(run.t, [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(run.u[0], u0)
    u, v = u0, v0
    for _ in range(4):
        u, v, p = solver.step(u, v)
    np.testing.assert_allclose(u, run.u[-1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(p, run.p[-1], rtol=0, atol=1e-13)
    # a state that is not the previous output starts a new (Euler) history
    euler = PeriodicProjectionSolver(grid, NU_TG, 0.05, scheme="euler")
    np.testing.assert_allclose(solver.step(u0, v0)[0], euler.step(u0, v0)[0], rtol=0, atol=1e-15)
    assert run.p[0].shape == grid.n and abs(run.p[0].mean()) < 1e-14


def test_run_splits_intervals_into_equal_steps():
    grid = box(8)
    u0, v0, _ = taylor_green(grid, 0.0)
    solver = PeriodicProjectionSolver(grid, NU_TG, 0.3)
    run = solver.run(u0, v0, 1.0, times=[0.25, 1.0])
    assert run.steps == 1 + 3  # 0.25 in one step, 0.75 in three of 0.25
    assert run.u.shape == (2, 8, 8)


def test_stable_dt_and_limits():
    scene = cavity_scene(32)
    h = 1 / 32
    assert diffusion_limit(scene, 0.01, "euler") == pytest.approx(0.25 * h**2 / 0.01)
    assert diffusion_limit(scene, 0.01, "ab2") == pytest.approx(0.125 * h**2 / 0.01)
    assert stable_dt(scene, 0.01, 1.0, scheme="euler") == pytest.approx(0.5 * h / 1.0)
    assert stable_dt(scene, 0.1, 1.0) == pytest.approx(0.125 * h**2 / 0.1)
    assert stable_dt(scene, 0.01, 0.0) == diffusion_limit(scene, 0.01)


def test_dt_above_the_diffusion_limit_raises():
    scene = cavity_scene(16)
    limit = diffusion_limit(scene, 0.01)
    ProjectionSolver(scene, 0.01, limit)  # the limit itself is allowed
    with pytest.raises(ParameterError, match=r"dt = .* exceeds the explicit diffusion limit"):
        ProjectionSolver(scene, 0.01, 1.01 * limit)
    with pytest.raises(ParameterError, match="dt"):
        PeriodicProjectionSolver(box(16), 0.1, 1.01 * diffusion_limit(box(16), 0.1))
    ProjectionSolver(scene, 0.01, 1.5 * limit, scheme="euler")  # Euler's limit is twice AB2's


def test_unbalanced_boundary_flux_raises():
    with pytest.raises(ParameterError, match=r"net outflow -0\.5"):
        ProjectionSolver(channel_scene(outflow=0.5), 0.01, 1e-4)
    # the column at rest closes the left region, whose inflow has nowhere to go
    with pytest.raises(ParameterError, match=r"region 0 does not balance: net outflow -1"):
        ProjectionSolver(channel_scene(column_velocity=0.0), 0.01, 1e-4)


def test_other_bad_input():
    scene = cavity_scene(8)
    with pytest.raises(ParameterError, match="nu"):
        ProjectionSolver(scene, 0.0, 1e-3)
    with pytest.raises(ParameterError, match="scheme"):
        ProjectionSolver(scene, 0.01, 1e-3, scheme="rk4")
    with pytest.raises(ParameterError, match="periodic"):
        PeriodicProjectionSolver(Grid((0, 0), (1, 1), 8), 0.1, 1e-3)
    with pytest.raises(ParameterError, match="MacScene"):
        ProjectionSolver(box(8), 0.1, 1e-3)
    solver = ProjectionSolver(scene, 0.01, 1e-3)
    with pytest.raises(ParameterError, match="shape"):
        solver.step(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ParameterError, match="dt must be in"):
        solver.step(np.zeros(scene.shape), np.zeros(scene.shape), dt=2e-3)
    with pytest.raises(ConvergenceError, match="no steady state"):
        solver.run_to_steady(tol=1e-8, max_time=0.05)


def test_an_advectively_unstable_run_raises_instead_of_returning_nan():
    """dt = 0.2 on a 16-cell cavity with nu = 1e-3 is within the diffusion limit (0.49) but 6.4
    times the advective one (cfl h / speed = 0.031): the run blows up and says so."""
    scene = cavity_scene(16)
    solver = ProjectionSolver(scene, 1e-3, 0.2)
    with pytest.raises(ParameterError, match="stopped being finite"):
        solver.run_to_steady(tol=1e-6, max_time=100.0)
    with pytest.raises(ParameterError, match="stopped being finite"):
        solver.run(np.zeros(scene.shape), np.zeros(scene.shape), 100.0)


# -- outflow ---------------------------------------------------------------------------------------
def outflow_channel(cells=8, length=2.0, height=0.5, profile=None, obstacles=()):
    """mac.channel_scene: inflow at x = 0, zero-gradient outlet at the far end."""
    from pdekit.problems.mac import channel_scene

    if profile is None:

        def profile(y):
            return 6.0 * y * (height - y) / height**2

    return channel_scene(length, height, cells, profile, obstacles, pad_to=4)


def test_outflow_divergence_flux_and_conditions():
    """A channel with a disk, from a random (divergent) state: after each step max |div| on
    fluid cells <= 2e-12 max|u|/h (the last column included; measured 2.4e-13 on the first
    step, 4e-15 after), the outlet carries exactly the inflow (measured 3.1e-15 relative), and
    every condition holds to round-off (measured 0) except the outlet faces' zero gradient (off
    by the last face's pressure correction, O(dt): the outlet keeps the flux-balanced values)."""
    from pdekit.geometries.csg import Disk

    scene = outflow_channel(12, obstacles=[Disk((0.4, 0.22), 0.08)])
    solver = ProjectionSolver(scene, 0.01, 0.5 * stable_dt(scene, 0.01, 3.0))
    u, v = _random_state(solver, seed=1)
    assert fluid_divergence(scene, u, v) > 1.0
    hy = float(scene.grid.spacing[1])
    inflow = float(scene.wall_velocity[0, 0].sum()) * hy
    outlet = scene.outlet["u"].numpy()
    for _ in range(3):
        u, v, p = solver.step(u, v)
        scale = max(np.abs(u).max(), np.abs(v).max()) / min(scene.grid.spacing)
        assert fluid_divergence(scene, u, v) <= 2e-12 * scale
        assert float(u[outlet].sum()) * hy == pytest.approx(inflow, rel=1e-13, abs=1e-14)
        res = scene.conditions(torch.as_tensor(u), torch.as_tensor(v))
        assert np.abs(res["u"].numpy()[~outlet]).max() < 1e-14
        assert float(res["v"].abs().max()) < 1e-14  # v outflow: copied after the correction
        assert np.all(p[scene.solid.numpy()] == 0)


def test_flux_check_with_outflow():
    """A region with outlet faces is balanced at every step (no check); a region closed off
    from the outlet (a full-height column at rest) still needs a balanced prescribed flux."""
    scene = outflow_channel()
    solver = ProjectionSolver(scene, 0.01, 1e-3)
    assert solver._n_regions == 1 and solver._outlet_regions.all()
    solid = scene.solid.clone()
    solid[10:12, :] = True
    closed = MacScene(scene.grid, solid, scene.wall_velocity, outflow=scene.outflow)
    with pytest.raises(ParameterError, match=r"region 0 does not balance: net outflow -"):
        ProjectionSolver(closed, 0.01, 1e-3)


@pytest.mark.parametrize("cells", [8, 16])
def test_poiseuille_with_outflow(cells):
    """Channel 4 x 1, nu = 0.1, mean inflow 1. The ghost mirror is exact for linear profiles
    only, so the discrete Poiseuille profile is the parabola plus a uniform slip:
    u_j = c (y_j (H - y_j) + h^2 / 4) (second differences constant; (u_0 + ghost) / 2 = 0).

    * inflow = that profile: it is the steady state everywhere (max deviation measured
      1.2e-10, the steady tolerance), v = 0, p linear;
    * inflow = the parabola 6 y (H - y) at the cell centres: downstream the flow develops into
      the discrete profile of the same flux (1.2e-10 at the outlet), which differs from the
      parabola by O(h^2): measured 0.0149 = 0.95 h^2 (8 cells), 0.00477 = 1.22 h^2 (16 cells),
      tending to 1.5 h^2 next to the walls.

    Steady to tol 1e-9 in |du/dt|: measured on 8 and 16 cells max deviation 1.2e-10, |v|
    1.4e-11, pressure-gradient spread 2.2e-11 and its relative error 2.4e-11 (asserted 1e-9,
    1e-10, 1e-10, 1e-10)."""
    height, nu = 1.0, 0.1
    h = height / cells

    def parabola(y):
        return 6.0 * y * (height - y) / height**2

    y = (np.arange(cells) + 0.5) * h
    flux_mean = parabola(y).mean()
    shape = y * (height - y) + h**2 / 4
    discrete = shape * flux_mean / shape.mean()

    def developed(yy):
        return (yy * (height - yy) + h**2 / 4) * flux_mean / shape.mean()

    for profile, expect in ((developed, "everywhere"), (parabola, "outlet")):
        scene = outflow_channel(cells, 4.0, height, profile)
        solver = ProjectionSolver(scene, nu, 0.9 * stable_dt(scene, nu, 2.0))
        steady = solver.run_to_steady(tol=1e-9, max_time=50.0)
        u = steady.u[:, 1 : cells + 1]
        fluid_cols = slice(1, scene.grid.n[0] - 1)  # inlet faces to outlet faces
        dev = np.abs(u[fluid_cols] - discrete[None]).max(axis=1)
        if expect == "everywhere":
            assert dev.max() < 1e-9, dev.max()
            assert np.abs(steady.v).max() < 1e-10
            p = steady.p[1:-2, 1 : cells + 1]
            dp = np.diff(p, axis=0)
            assert np.abs(dp - dp.mean()).max() < 1e-10
            assert dp.mean() / h == pytest.approx(-nu * 2 * flux_mean / shape.mean(), rel=1e-10)
        else:
            assert dev[-1] < 1e-9 and dev[0] > 1e-3, dev
            err = np.abs(u[-2] - parabola(y)).max()  # the outlet faces
            assert 0.5 * h**2 < err < 1.5 * h**2, err  # 1.5 h^2 + O(h^3) at the walls
