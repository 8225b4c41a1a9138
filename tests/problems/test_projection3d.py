"""Chorin projection reference on 3D MAC scenes (:mod:`pdekit.problems.references.projection3d`):
Poiseuille flow in a square duct against its Fourier series (second order), an exact 3D
Navier-Stokes solution on a fully periodic box (the ABC Beltrami flow, second order), the
discrete divergence after a step (round-off), the x-momentum balance at steady state in a duct
with a sphere (body force = viscous boundary flux + pressure on the sphere), the AB2 history of
``step`` against ``run``, the diffusion limit (hand formula) and refused input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.geometries.csg import Ball
from pdekit.geometries.grid import Grid
from pdekit.problems import mac3d
from pdekit.problems.mac import FLUID, WALL, cavity_scene, rasterise
from pdekit.problems.references.projection3d import (
    ProjectionSolver3d,
    diffusion_limit3d,
    duct_poiseuille,
    stable_dt3d,
)

SPHERE = Ball((0.5, 0.5, 0.5), 0.25)


def zeros(scene):
    return tuple(np.zeros(scene.shape) for _ in range(3))


def fluid_divergence(scene, vel) -> float:
    """max |mac3d.divergence| over the fluid cells."""
    div = mac3d.divergence(*(torch.as_tensor(f) for f in vel), scene.grid)
    return float(div[scene.fluid].abs().max())


def wall_flux(scene, u: np.ndarray, nu: float, where=None) -> float:
    """The viscous x-force of the fluid on the boundary: nu (u_f - u_b) / h x h^2 summed over
    every pair of a FLUID u sample and a non-FLUID neighbour u_b (one of its 6 stencil
    neighbours: a ghost mirrored through a wall h/2 away, so (u_f - u_b) / h is the one-sided
    wall shear, or a wall face of an obstacle); ``where``: only neighbours in these cells' u
    samples (bool (X, Y, Z))."""
    h = float(scene.grid.spacing[0])
    fluid = (scene.roles["u"] == FLUID).numpy()
    total = 0.0
    for axis in range(3):
        for k in (1, -1):
            edge = fluid & ~np.roll(fluid, k, axis)
            if where is not None:
                edge &= np.roll(where, k, axis)
            total += float((nu * (u - np.roll(u, k, axis)) * h)[edge].sum())
    return total


# -- Poiseuille flow in a square duct ------------------------------------------------------------
def test_duct_poiseuille_second_order():
    """Unit square duct, f = 1, nu = 1, 2 cells along x (the flow is uniform along it), from
    rest to t = 0.75 (15 e-folds of the slowest mode, rate 2 pi^2 nu: the transient left,
    measured by the change over the last 10 % of the run, is ~1e-7, 4000 times below the
    errors) with forward Euler at its diffusion limit (the steady state does not depend on the
    scheme). Max error at the FLUID u samples against the series: measured 1.72e-3 and 4.61e-4
    on 8 and 16 cells across (order 1.90; 2.3 % and 0.63 % of the centre value 0.07367; the
    mirrored ghosts' slip, ~f h^2 / (8 nu) as in the 2D channel); v, w stay exactly 0. The
    x-momentum balance: f x (FLUID u samples) h^3 = the viscous wall shear, nu (u_first -
    ghost) / h over the wall faces (measured 2.1e-7 and 2.3e-7 relative: the transient)."""
    side, force, nu, t_end = 1.0, 1.0, 1.0, 0.75
    # the series' centre value, the classical 0.07367 f side^2 / nu (mean / max = 0.477)
    centre = float(duct_poiseuille(0.5, 0.5, side, force, nu))
    assert centre == pytest.approx(0.07367 * force * side**2 / nu, rel=1e-3)
    errs = []
    for n in (8, 16):
        h = side / n
        scene = mac3d.duct_scene(2 * h, side, n, force)
        solver = ProjectionSolver3d(
            scene, nu, diffusion_limit3d(scene, nu, "euler"), scheme="euler"
        )
        run = solver.run(zeros(scene), t_end, times=[0.9 * t_end, t_end])
        u = run.u[-1]
        _, yu, zu = np.meshgrid(*scene.grid.axes("face_x").values(), indexing="ij")
        fluid = (scene.roles["u"] == FLUID).numpy()
        exact = duct_poiseuille(yu[fluid], zu[fluid], side, force, nu)
        errs.append(float(np.abs(u[fluid] - exact).max()))
        assert np.abs(run.u[-1] - run.u[-2]).max() < 1e-7  # steady
        assert np.abs(run.v).max() == 0.0 and np.abs(run.w).max() == 0.0
        assert np.all(u[:1] == u[1:])  # uniform along x
        body = force * fluid.sum() * h**3
        assert wall_flux(scene, u, nu) == pytest.approx(body, rel=1e-6)
    order = math.log2(errs[0] / errs[1])
    assert order > 1.8, (errs, order)
    assert errs[1] < 0.01 * centre, errs


# -- an exact 3D solution on a periodic box --------------------------------------------------------
ABC = (1.0, 0.7, 0.5)


def abc_flow(grid: Grid, t: float, nu: float):
    """The Arnold-Beltrami-Childress flow u = (A sin z + C cos y, B sin x + A cos z,
    C sin y + B cos x) e^(-nu t): curl u = u, so (u . grad) u = grad |u|^2 / 2 and it solves
    Navier-Stokes with p = -|u|^2 / 2: a decaying 3D vortex flow, exact and with non-zero
    advection (the classical 3D Taylor-Green vortex sin x cos y cos z ... is not an exact
    solution, only an initial state); velocity at the MAC faces, p at the centres."""
    A, B, C = ABC
    d = math.exp(-nu * t)

    def at(loc):
        return np.meshgrid(*grid.axes(loc).values(), indexing="ij")

    def vel(x, y, z):
        return (
            A * np.sin(z) + C * np.cos(y),
            B * np.sin(x) + A * np.cos(z),
            C * np.sin(y) + B * np.cos(x),
        )

    u = vel(*at("face_x"))[0] * d
    v = vel(*at("face_y"))[1] * d
    w = vel(*at("face_z"))[2] * d
    p = -0.5 * sum(c**2 for c in vel(*at("center"))) * d**2
    return u, v, w, p - p.mean()


def test_abc_flow_on_a_periodic_box_second_order_in_space():
    """Fully periodic [0, 2 pi)^3 (no solid cell, periodic=(True, True, True)), nu = 0.1, to
    t = 0.5 with AB2 at a fifth of its diffusion limit (time error negligible). Max velocity
    error: measured 3.75e-3 and 1.01e-3 on 8^3 and 16^3 cells (order 1.89); the pressure
    (phi ~ p at t - dt/2) 0.107 and 0.0286 (order 1.90) against |p| <= 2.2. Divergence to
    round-off (measured <= 7e-15 relative to max|u| / h)."""
    nu, t_end = 0.1, 0.5
    errs, perrs = [], []
    for n in (8, 16):
        grid = Grid((0.0, 0.0, 0.0), (2 * math.pi,) * 3, n, periodic=True)
        empty = torch.zeros(grid.n, dtype=torch.bool)
        scene = mac3d.MacScene3d(grid, empty, torch.zeros(3, *grid.n), (True, True, True))
        assert all(bool((r == FLUID).all()) for r in scene.roles.values())
        scene.check_curl_layout()
        steps = math.ceil(t_end / (0.2 * diffusion_limit3d(scene, nu)))
        dt = t_end / steps
        solver = ProjectionSolver3d(scene, nu, dt)
        assert solver._n_regions == 1
        u0, v0, w0, _ = abc_flow(grid, 0.0, nu)
        run = solver.run((u0, v0, w0), t_end)
        assert run.steps == steps
        exact = abc_flow(grid, t_end, nu)
        got = (run.u[-1], run.v[-1], run.w[-1])
        errs.append(max(float(np.abs(a - b).max()) for a, b in zip(got, exact)))
        p_half = abc_flow(grid, t_end - dt / 2, nu)[3]
        perrs.append(float(np.abs(run.p[-1] - p_half).max()))
        scale = max(np.abs(f).max() for f in got) / float(grid.spacing[0])
        assert fluid_divergence(scene, got) < 1e-12 * scale
    orders = (math.log2(errs[0] / errs[1]), math.log2(perrs[0] / perrs[1]))
    assert min(orders) > 1.8, (errs, perrs, orders)
    assert errs[1] < 2e-3, errs


# -- divergence and force balance with a sphere ----------------------------------------------------
def sphere_duct(cells: int = 8, force: float = 1.0):
    """A unit duct (length 1) with a sphere of radius 1/4 at its centre."""
    return mac3d.duct_scene(1.0, 1.0, cells, force, [SPHERE])


def test_divergence_free_after_a_step_with_a_sphere():
    """From a random (divergent) state: after each of three steps max |div| over the fluid
    cells <= 1e-10 max|u| / h (measured 1.2e-14, 2.7e-16, 1.7e-15 relative: direct LU solve),
    every boundary condition holds to round-off (measured <= 6e-17) and the pressure is 0
    inside solids, of mean 0 over the fluid."""
    scene = sphere_duct()
    solver = ProjectionSolver3d(scene, 0.1, 0.5 * stable_dt3d(scene, 0.1, 3.0))
    rng = np.random.default_rng(0)
    vel = tuple(rng.standard_normal(scene.shape) for _ in range(3))
    assert fluid_divergence(scene, vel) > 10.0  # far from divergence-free
    solid = scene.solid.numpy()
    for _ in range(3):
        vel, p = solver.step(vel)
        assert all(f.dtype == np.float64 and f.shape == scene.shape for f in vel)
        scale = max(np.abs(f).max() for f in vel) / float(scene.grid.spacing[0])
        assert fluid_divergence(scene, vel) <= 1e-10 * scale
        assert np.abs(solver.divergence(vel)[~solid]).max() <= 1e-10 * scale
        res = scene.conditions(tuple(torch.as_tensor(f) for f in vel))
        assert max(float(r.abs().max()) for r in res.values()) < 1e-13
        assert np.all(p[solid] == 0) and abs(p[~solid].mean()) < 1e-12


def test_force_balance_at_steady_state_with_a_sphere():
    """Unit duct with a sphere of radius 1/4, 8 cells across, f = 1, nu = 0.1 (max speed 0.23,
    sphere Reynolds number ~1), run from rest to t = 8 with forward Euler (308 steps; steady:
    the last 5 % of the run changes the velocity by 9e-17). Summing the discrete x-momentum
    equation over the FLUID u samples, the interior viscous fluxes and pressure differences
    cancel in pairs, so at a steady state

        f (FLUID u samples) h^3 = viscous boundary flux (duct walls + sphere)
                                  + pressure drag (sum of p h^2 on the sphere's upstream
                                    faces minus its downstream faces) + A,

    with A the sum of the advective term, which vanishes for the continuous equations (u . grad
    u = div(u u), u . n = 0 on the walls) but not exactly for the advective MAC form (an O(h^2)
    non-conservation). The viscous flux (one-sided differences to the wall through the
    mirrored ghosts) and the pressure drag are computed here from the state alone. Measured:
    body force 0.9141 = viscous 0.8186 (duct walls 0.6332, sphere 0.1854) + pressure 0.0955
    (12 upstream and downstream faces), balanced to 2.7e-5 relative (A; 2.7e-9 at nu = 1,
    where the flow is 10 times slower: A ~ u^2 h^2). The sphere takes 31 % of the force."""
    nu = 0.1
    scene = sphere_duct()
    h = float(scene.grid.spacing[0])
    solver = ProjectionSolver3d(scene, nu, diffusion_limit3d(scene, nu, "euler"), scheme="euler")
    run = solver.run(zeros(scene), 8.0, times=[7.6, 8.0])
    u, p = run.u[-1], run.p[-1]
    assert max(np.abs(getattr(run, c)[-1] - getattr(run, c)[-2]).max() for c in "uvw") < 1e-12
    assert 0.1 < u.max() < 0.4
    fluid_u = (scene.roles["u"] == FLUID).numpy()
    body = scene.body_force[0] * fluid_u.sum() * h**3
    ball = rasterise(SPHERE, scene.grid)
    viscous = wall_flux(scene, u, nu)
    on_sphere = wall_flux(scene, u, nu, where=ball | np.roll(ball, 1, 0))
    solid = scene.solid.numpy()
    wall = (scene.roles["u"] == WALL).numpy()
    front = wall & solid & ~np.roll(solid, 1, 0)  # fluid cell i - 1, sphere cell i
    back = wall & ~solid & np.roll(solid, 1, 0)  # sphere cell i - 1, fluid cell i
    assert front.sum() == back.sum() > 0
    pressure = (np.roll(p, 1, 0)[front].sum() - p[back].sum()) * h**2
    assert pressure > 0 and on_sphere > 0 and viscous - on_sphere > 0.5 * body
    assert viscous + pressure == pytest.approx(body, rel=1e-4), (body, viscous, pressure)


# -- API -------------------------------------------------------------------------------------------
def test_step_continues_the_ab2_history_like_run():
    """Four AB2 steps of 0.01 from a random imposed state match run(t_end = 0.04, outputs at 0,
    0.02, 0.04) to round-off; differing from four forward Euler steps by O(dt^2) shows the
    history is used. A state other than the previous output starts a new (Euler) history."""
    scene = sphere_duct(6)
    solver = ProjectionSolver3d(scene, 0.1, 0.01)
    rng = np.random.default_rng(1)
    raw = tuple(torch.as_tensor(rng.standard_normal((2, *scene.shape))) for _ in range(3))
    vel0 = tuple(f.numpy() for f in scene.impose(tuple(r[0] for r in raw)))
    run = solver.run(vel0, 0.04, times=[0.0, 0.02, 0.04])
    np.testing.assert_array_equal(run.t, [0.0, 0.02, 0.04])
    assert run.steps == 4 and run.u.shape == (3, *scene.shape)
    np.testing.assert_allclose(run.u[0], vel0[0], rtol=0, atol=1e-15)  # re-imposed
    euler = ProjectionSolver3d(scene, 0.1, 0.01, scheme="euler")
    vel, e_vel = vel0, vel0
    for _ in range(4):
        vel, p = solver.step(vel)
        e_vel, _ = euler.step(e_vel)
    for c, f in zip(("u", "v", "w"), vel):
        np.testing.assert_allclose(f, getattr(run, c)[-1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(p, run.p[-1], rtol=0, atol=1e-12)
    assert np.abs(vel[0] - e_vel[0]).max() > 1e-4
    # not the previous output: forward Euler, as the Euler solver's first step
    other = tuple(f.numpy() for f in scene.impose(tuple(r[1] for r in raw)))
    fresh = ProjectionSolver3d(scene, 0.1, 0.01, scheme="euler").step(other)[0]
    for a, b in zip(solver.step(other)[0], fresh):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    # the pressure at t = 0 is that of a forward Euler step from the initial state
    first = ProjectionSolver3d(scene, 0.1, 0.01, scheme="euler").step(vel0)[1]
    np.testing.assert_allclose(run.p[0], first, rtol=0, atol=1e-12)


def test_diffusion_limit_and_stable_dt():
    """Cubes of side h: dt <= h^2 / (6 nu) for forward Euler (1 / (2 nu sum 1/h_k^2)), half of
    it for AB2; stable_dt3d adds cfl h / speed. The limit itself is allowed, 1 % more is not."""
    scene = sphere_duct(8)
    h = 1 / 8
    assert diffusion_limit3d(scene, 0.1, "euler") == pytest.approx(h**2 / (6 * 0.1), rel=1e-12)
    assert diffusion_limit3d(scene, 0.1) == pytest.approx(h**2 / (12 * 0.1), rel=1e-12)
    assert stable_dt3d(scene, 0.01, 1.0) == pytest.approx(0.5 * h, rel=1e-12)
    assert stable_dt3d(scene, 0.1, 1.0) == diffusion_limit3d(scene, 0.1)
    assert stable_dt3d(scene, 0.1, 0.0) == diffusion_limit3d(scene, 0.1)
    limit = diffusion_limit3d(scene, 0.1)
    ProjectionSolver3d(scene, 0.1, limit)
    with pytest.raises(ParameterError, match=r"dt = .* exceeds the explicit diffusion limit"):
        ProjectionSolver3d(scene, 0.1, 1.01 * limit)
    ProjectionSolver3d(scene, 0.1, 1.9 * limit, scheme="euler")  # Euler's limit is twice AB2's
    with pytest.raises(ParameterError, match="speed"):
        stable_dt3d(scene, 0.1, -1.0)
    with pytest.raises(ParameterError, match="cfl"):
        stable_dt3d(scene, 0.1, 1.0, cfl=1.5)


def test_bad_input_is_refused():
    scene = sphere_duct(4)
    with pytest.raises(ParameterError, match="MacScene3d"):
        ProjectionSolver3d(cavity_scene(8), 0.1, 1e-3)
    with pytest.raises(ParameterError, match="nu"):
        ProjectionSolver3d(scene, 0.0, 1e-3)
    with pytest.raises(ParameterError, match="dt"):
        ProjectionSolver3d(scene, 0.1, math.nan)
    with pytest.raises(ParameterError, match="scheme"):
        ProjectionSolver3d(scene, 0.1, 1e-3, scheme="rk4")
    solver = ProjectionSolver3d(scene, 0.1, 1e-3)
    good = zeros(scene)
    with pytest.raises(ParameterError, match=r"v needs shape \(4, 7, 7\)"):
        solver.step((good[0], np.zeros((4, 7)), good[2]))
    bad = good[2].copy()
    bad[2, 3, 3] = math.nan
    with pytest.raises(ParameterError, match="w has non-finite"):
        solver.step((good[0], good[1], bad))
    with pytest.raises(ParameterError, match="u has non-finite"):
        solver.run((np.full(scene.shape, math.inf), good[1], good[2]), 0.01)
    with pytest.raises(ParameterError, match="dt must be in"):
        solver.step(good, dt=2e-3)
    with pytest.raises(ParameterError, match="t_end"):
        solver.run(good, -1.0)
    with pytest.raises(ParameterError, match="times"):
        solver.run(good, 0.01, times=[0.005, 0.002])
    with pytest.raises(ParameterError, match="times"):
        solver.run(good, 0.01, times=[0.02])


def test_walls_carrying_a_net_flux_are_refused():
    """A floor blowing fluid in at v = 1 (the duct's solid cells below y = 0) with nowhere to go:
    the incompressible region cannot balance it."""
    scene = mac3d.duct_scene(0.5, 1.0, 4, 1.0)
    wall = torch.zeros(3, *scene.grid.n, dtype=torch.float64)
    wall[1, :, 0, :] = 1.0
    blowing = mac3d.MacScene3d(scene.grid, scene.solid, wall, scene.periodic, scene.body_force)
    with pytest.raises(ParameterError, match="net flux"):
        ProjectionSolver3d(blowing, 0.1, 1e-3)


def test_an_advectively_unstable_run_raises_instead_of_returning_nan():
    """dt = 2.6 within the diffusion limit but ~300 times the advective one (h / max|u| =
    0.25 / 31): the run blows up (after 7 steps) and says so instead of returning non-finite
    values."""
    scene = sphere_duct(4)
    nu = 1e-3
    dt = 0.5 * diffusion_limit3d(scene, nu)
    rng = np.random.default_rng(2)
    vel = tuple(10.0 * rng.standard_normal(scene.shape) for _ in range(3))
    assert dt > 100 * 0.25 / max(np.abs(f).max() for f in vel)
    with pytest.raises(ParameterError, match="stopped being finite"):
        ProjectionSolver3d(scene, nu, dt).run(vel, 1e4 * dt)
