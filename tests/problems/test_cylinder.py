"""The DFG cylinder benchmark on the MAC grid: forces, Strouhal number, scenes, reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pdekit.problems as problems
from pdekit.errors import ParameterError
from pdekit.geometries import Rectangle
from pdekit.problems import mac
from pdekit.problems.mac_forces import (
    control_volume_force,
    force_coefficients,
    obstacle_force,
    strouhal,
)
from pdekit.problems.navier_stokes import cylinder
from pdekit.problems.references.projection import ProjectionSolver, stable_dt

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def published():
    return json.loads((DATA / "dfg_2d2_schafer_turek_1996.json").read_text())


def test_published_values_and_the_problem_agree(published):
    assert "Schaefer" in published["source"] and "Turek" in published["source"]
    case = published["2D-2"]
    problem = problems.get("navier_stokes/cylinder")
    assert problem.re == case["re"] and problem.nu == pytest.approx(case["nu"])
    assert cylinder.U_MAX == case["U_m"] and cylinder.U_MEAN == pytest.approx(case["U"])
    assert cylinder.DIAMETER == published["geometry"]["cylinder_diameter"]
    assert cylinder.CENTRE == tuple(published["geometry"]["cylinder_centre"])
    # the mean of the parabolic inflow is U = 2 U_m / 3
    y = np.linspace(0, cylinder.HEIGHT, 20001)
    assert np.trapezoid(cylinder.inflow(y), y) / cylinder.HEIGHT == pytest.approx(1.0, rel=1e-8)


def test_problem_definition():
    problem = problems.get("navier_stokes/cylinder", re=50.0, t_end=2.0)
    assert problem.nu == pytest.approx(2e-3)
    dom = problem.domain()
    pts = np.array([[0.2, 0.2, 1.0], [0.2, 0.26, 1.0], [2.2, 0.41, 2.0], [0.24, 0.2, 0.0]])
    assert dom.contains(pts).tolist() == [False, True, True, False]
    tags = {bc.tag: bc for bc in problem.boundary_conditions()}
    assert set(tags) == {"inlet", "walls", "cylinder", "outlet"}
    assert set(dom.space.boundary_tags) == set(tags)  # the shipped DFG mesh's tags
    assert tags["outlet"].kind == "neumann" and tags["cylinder"].kind == "dirichlet"
    y = torch.tensor([[0.0, 0.205, 0.0]], dtype=torch.float64)
    assert float(tags["inlet"].value(y)["u"]) == pytest.approx(1.5)
    assert problem.gauge_fields == ("p",) and problem.time_dependent


def test_mac_scene_and_training_draws():
    """The problem's scene on 41 cells across: h = 0.01, layout 224 x 48 (multiples of 16),
    the cylinder 80 cells (area 1.9 % above pi D^2 / 4). Training scenes: the same layout at
    every draw, the inflow scaled within [0.5, 1.5], obstacles clear of the walls, one fluid
    region (a projection solver accepts them)."""
    problem = problems.get("navier_stokes/cylinder")
    scene = problem.mac_scene(41)
    assert scene.grid.n == (224, 48) and np.allclose(scene.grid.spacing, 0.01)
    body = problem.cylinder_cells(scene)
    assert body.sum() == 80
    assert body.sum() * 1e-4 == pytest.approx(math.pi * 0.05**2, rel=0.02)
    base = scene.wall_velocity[0, 0, 1:42]
    scales = []
    for seed in range(8):
        draw = problem.mac_scene(41, rng=np.random.default_rng(seed))
        assert draw.grid.n == scene.grid.n and torch.equal(draw.outflow, scene.outflow)
        ratio = draw.wall_velocity[0, 0, 1:42] / base
        assert torch.allclose(ratio, ratio[0]) and 0.5 <= float(ratio[0]) <= 1.5
        scales.append(float(ratio[0]))
        fluid = draw.fluid.numpy()
        assert fluid[1:-2, 1:5].all() and fluid[1:-2, 38:42].all()  # 0.04 clear of the walls
        assert ProjectionSolver(draw, problem.nu, 1e-3)._n_regions == 1
    assert np.ptp(scales) > 0.3


# -- forces ----------------------------------------------------------------------------------------
def test_force_on_channel_walls_is_pressure_drop_times_half_height():
    """Discrete Poiseuille flow (the steady state of its own inflow): the staircase force on each
    wall equals (pressure drop over the fluid u samples) x height / 2 to round-off, the exact
    momentum balance of the flow (measured 2e-11 relative, the steady tolerance)."""
    height, cells, nu = 0.5, 10, 0.05
    h = height / cells

    def profile(y):
        return 6.0 * (y * (height - y) + h**2 / 4) / height**2

    scene = mac.channel_scene(2.0, height, cells, profile, pad_to=8)
    steady = ProjectionSolver(scene, nu, 0.5 * stable_dt(scene, nu, 2.0)).run_to_steady(1e-9)
    gradient = (steady.p[3, 1] - steady.p[2, 1]) / h
    faces = int((scene.roles["u"][:, 1] == mac.FLUID).sum())
    expect = -gradient * faces * h * height / 2
    for row in (0, cells + 1):  # the floor and the top wall
        wall = np.zeros(scene.grid.n, dtype=bool)
        wall[:, row] = True
        fx, fy = obstacle_force(scene, wall, steady.u, steady.v, steady.p, nu)
        assert fx == pytest.approx(expect, rel=1e-9)
    assert expect > 0


def test_symmetric_obstacle_forces():
    """A square in the middle of a channel (cell-aligned, Re_side = 5): no lift to round-off,
    and the staircase and control-volume drags agree within 2 % (measured 1.0-1.3 % on 16
    cells across, 0.3-0.4 % on 32), batched evaluation included."""
    box = Rectangle((0.75, 0.375), (1.0, 0.625))
    scene = mac.channel_scene(3.0, 1.0, 16, lambda y: 6 * y * (1 - y), [box], pad_to=4)
    body = mac.rasterise(box, scene.grid) & scene.solid.numpy()
    nu = 0.05
    steady = ProjectionSolver(scene, nu, 0.9 * stable_dt(scene, nu, 2.0)).run_to_steady(1e-8)
    fx, fy = obstacle_force(scene, body, steady.u, steady.v, steady.p, nu)
    assert fx > 1.0 and abs(fy) < 1e-12 * fx
    for margin in (1, 2, 3):
        cx, cy = control_volume_force(scene, body, steady.u, steady.v, steady.p, nu, None, margin)
        assert cx == pytest.approx(fx, rel=0.02) and abs(cy) < 1e-12 * fx
    batch = [np.stack([a, 2 * a]) for a in (steady.u, steady.v, steady.p)]
    bx, by = obstacle_force(scene, body, *batch, nu)
    assert bx.shape == (2,) and bx[0] == pytest.approx(fx, rel=1e-14)
    with pytest.raises(ParameterError, match="ring"):
        control_volume_force(scene, body, steady.u, steady.v, steady.p, nu, None, margin=6)
    two = body.copy()
    two[11, 5] = True  # a second solid cell in the control box
    scene2 = mac.MacScene(scene.grid, scene.solid | torch.as_tensor(two), scene.wall_velocity)
    with pytest.raises(ParameterError, match="not the obstacle's"):
        control_volume_force(scene2, body, steady.u, steady.v, steady.p, nu, None, margin=3)


def test_dfg_2d1_steady_drag_and_lift(published):
    """DFG 2D-1 (steady, Re = 20, U_m = 0.3) on h = 0.01 (D = 10 cells, staircase): measured
    c_D 5.704 (control volume) and 5.800 (staircase faces) against 5.57-5.59, c_L 0.0136 and
    0.0132 against 0.0104-0.0110 (on h = 0.005: c_D 5.63 and 5.66, c_L 0.0114 and 0.0113:
    first-order convergence, the staircase). ~5 s."""
    case = published["2D-1"]
    problem = problems.get("navier_stokes/cylinder", re=20.0)
    scale = case["U_m"] / cylinder.U_MAX
    nu = case["nu"]
    scene = mac.channel_scene(
        cylinder.LENGTH,
        cylinder.HEIGHT,
        41,
        lambda y: cylinder.inflow(y, scale),
        [problem.disk()],
    )
    solver = ProjectionSolver(scene, nu, stable_dt(scene, nu, 2 * case["U_m"]))
    steady = solver.run_to_steady(tol=1e-3, max_time=100.0)
    body = problem.cylinder_cells(scene)
    cv = force_coefficients(
        *control_volume_force(scene, body, steady.u, steady.v, steady.p, nu), case["U"], 0.1
    )
    st = force_coefficients(
        *obstacle_force(scene, body, steady.u, steady.v, steady.p, nu), case["U"], 0.1
    )
    mid_d, mid_l = np.mean(case["c_d"]), np.mean(case["c_l"])
    assert abs(cv[0] - mid_d) < 0.03 * mid_d, cv  # measured +2.2 %
    assert abs(st[0] - mid_d) < 0.05 * mid_d, st  # measured +3.9 %
    assert cv[0] == pytest.approx(5.704, abs=0.005) and st[0] == pytest.approx(5.800, abs=0.005)
    assert abs(cv[1] - mid_l) < 0.004 and abs(st[1] - mid_l) < 0.004, (cv, st)


# -- Strouhal number and the benchmark's summary ---------------------------------------------------
def test_strouhal_and_periodic_summary():
    t = np.linspace(0.0, 6.0, 6001)
    f = 3.0
    lift = 0.2 + np.sin(2 * math.pi * f * t + 0.3)
    drag = 3.2 + 0.03 * np.sin(4 * math.pi * f * t)
    assert strouhal(t, lift, 0.1, 1.0) == pytest.approx(0.3, rel=1e-5)
    assert strouhal(t, lift, 0.1, 1.0, periods=4) == pytest.approx(0.3, rel=1e-5)
    summary = cylinder.periodic_summary(t, drag, lift)
    assert summary["strouhal"] == pytest.approx(0.3, rel=1e-5)
    assert summary["c_l_max"] == pytest.approx(1.2, abs=1e-5)
    assert summary["c_d_max"] == pytest.approx(3.23, abs=1e-5)
    steady = cylinder.periodic_summary(t, drag, 0.01 + 1e-12 * np.sin(50 * t))
    assert all(math.isnan(v) for v in steady.values())
    with pytest.raises(ParameterError, match="fewer than twice"):
        strouhal(t[:100], lift[:100], 0.1, 1.0)


@pytest.fixture(scope="module")
def short_problem():
    """The problem on [0, 0.25]: its reference (150 projection steps, ~1 s) and the MAC frames of
    the same run."""
    problem = problems.get("navier_stokes/cylinder", t_end=0.25)
    scene = problem.mac_scene(41)
    times = problem.reference_trajectory_quantities()["t"]  # every step of the reference run
    zero = np.zeros(scene.grid.n)
    run = ProjectionSolver(scene, problem.nu, times[0]).run(zero, zero, 0.25, times)
    assert run.steps == times.size
    return problem, scene, run


def test_quantities_of_a_run_match_the_reference_forces(short_problem):
    """:meth:`quantities` on the MAC frames of a run reproduces the forces the reference
    records at every step (the staircase exactly; the control volume up to the momentum's
    time derivative, one-sided at the ends of the series)."""
    problem, scene, run = short_problem
    ref = problem.reference_trajectory_quantities()
    np.testing.assert_allclose(ref["t"], run.t, rtol=0, atol=1e-12)
    stair = problem.trajectory_quantities(run.u, run.v, run.p, run.t, scene, method="staircase")
    np.testing.assert_allclose(stair["c_d"], ref["c_d_staircase"], rtol=1e-10)
    np.testing.assert_allclose(stair["c_l"], ref["c_l_staircase"], rtol=1e-10, atol=1e-12)
    cv = problem.trajectory_quantities(run.u, run.v, run.p, run.t, scene)
    np.testing.assert_allclose(cv["c_d"], ref["c_d"], rtol=1e-10)
    assert math.isnan(cv["strouhal"])  # no shedding yet
    late = run.t > 0.15
    assert np.allclose(cv["c_d"][late], stair["c_d"][late], rtol=0.1)
    with pytest.raises(ParameterError, match="shape"):
        problem.trajectory_quantities(run.u[:, :5], run.v, run.p, run.t, scene)


def test_reference_starts_at_rest_and_meets_the_inflow(short_problem):
    problem, _, _ = short_problem
    ref = problem.reference()
    assert ref.values["u"].shape == (221, 42, 8) and ref.axes["x"][-1] == pytest.approx(2.2)
    y = np.linspace(0.02, 0.39, 9)
    start = ref(np.stack([np.full(9, 1.0), y, np.zeros(9)], 1))
    assert np.abs(start["u"]).max() < 1e-12 and np.abs(start["v"]).max() < 1e-12
    inlet = ref(np.stack([np.zeros(9), y, np.full(9, 0.25)], 1))
    # node values at x = 0 average the inflow of two cell centres: O(h^2) below the parabola
    assert np.abs(inlet["u"] - cylinder.inflow(y)).max() < 2e-3
    assert "Chorin projection" in ref.description and "St" in ref.accuracy


# -- the shedding (slow) ---------------------------------------------------------------------------
@pytest.mark.slow  # the problem's reference: 4800 projection steps on 224 x 48 cells, ~25 s
def test_dfg_2d2_shedding_on_h_001(published):
    """DFG 2D-2 from rest to t = 8 on h = 0.01 (D = 10 cells, staircase), over the last five
    periods. Measured: St 0.2899 (-3.4 % from 0.30), c_D max 3.539 (control volume; +9.6 %
    from 3.23; the staircase faces give 3.737), c_L max 0.921 (-8.8 % from 1.00; staircase
    0.894). Published: St 0.295-0.305, c_D max 3.22-3.24, c_L max 0.99-1.01."""
    case = published["2D-2"]
    q = problems.get("navier_stokes/cylinder").reference_trajectory_quantities()
    assert abs(q["strouhal"] - 0.30) < 0.05 * 0.30, q["strouhal"]  # the project's target
    assert q["strouhal"] == pytest.approx(0.2899, abs=0.002)
    assert q["c_d_max"] == pytest.approx(3.539, abs=0.01)
    assert q["c_l_max"] == pytest.approx(0.921, abs=0.01)
    assert q["c_d_max"] > case["c_d_max"][1] and q["c_d_max"] < 1.1 * case["c_d_max"][1]
    assert 0.9 * case["c_l_max"][0] < q["c_l_max"] < case["c_l_max"][0]


@pytest.mark.slow  # 9600 projection steps on 448 x 96 cells, ~2-3 min
def test_dfg_2d2_shedding_on_h_0005(published):
    """The same on h = 0.005 (D = 20 cells), t = 8. Measured: St 0.2974 (in the published
    range), c_D max 3.361 (control volume, +4.1 %; staircase 3.455), c_L max 1.017 (+0.7 %
    above the range; staircase 1.005). From h = 0.01 the errors of c_D max and St fall by
    2.0 and 3.8 (about first order, the staircase)."""
    case = published["2D-2"]
    problem = problems.get("navier_stokes/cylinder")
    settings = dict(problem.reference_settings(), cells=82, snapshots=2)
    arrays = cylinder._compute(problem, settings)
    q = cylinder.periodic_summary(arrays["force_t"], arrays["c_d"], arrays["c_l"])
    assert case["strouhal"][0] <= q["strouhal"] <= case["strouhal"][1], q
    assert q["strouhal"] == pytest.approx(0.2974, abs=0.002)
    assert q["c_d_max"] == pytest.approx(3.361, abs=0.01)
    assert q["c_l_max"] == pytest.approx(1.017, abs=0.01)


@pytest.mark.parametrize("solver", ["pinn", "causal_pinn", "deepxde"])
def test_pointwise_solvers_run_in_time_on_the_mesh(solver):
    """A smoke test, not an accuracy check: the shedding problem on the shipped mesh (space-time
    sampling by cell area and boundary tag) trains a few steps with each pointwise solver and
    its solution is scored inside the mesh (the points in the cylinder left out)."""
    import pdekit

    config = {
        "train": {"steps": 5},
        "sampling": {"n_interior": 64, "n_boundary": 32, "n_initial": 32},
    }
    sol = pdekit.solve(
        "navier_stokes/cylinder", solver=solver, config=config, verbose=False, t_end=0.25
    )
    assert sol.step == 5
    errors = sol.errors()
    assert np.isfinite(errors["rel_l2"])


def test_fe_reference_forces_are_cached_and_validated(tmp_path, monkeypatch):
    """The finite-element run of test case 2D-2 (three BDF2 steps here): computed once, then
    read back from the checksummed cache without stepping again; the force series is the
    stepper's, in coefficients; bad settings refused by name."""
    from pdekit.problems.navier_stokes.cylinder_steady import dfg_flow_solver
    from pdekit.problems.references import fem_ns

    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path))
    problem = cylinder.Cylinder()
    first = problem.fe_reference_forces(dt=0.01, t_end=0.03, level=0)
    np.testing.assert_allclose(first["t"], [0.01, 0.02, 0.03])
    assert first["unknowns"] > 10_000 and first["seconds"] > 0
    assert math.isnan(first["strouhal"])  # no shedding in three steps
    assert len(list(tmp_path.glob("navier_stokes__cylinder-*.h5"))) == 1
    # c = 2 F / (U^2 D) = 20 F (U = 1, D = 0.1) of the stepper's force on the cylinder
    direct = dfg_flow_solver(0, 1.5, 1e-3).run_unsteady(0.01, 0.03, "cylinder")
    np.testing.assert_allclose(first["c_d"], 20 * direct["f_x"], rtol=1e-12)
    np.testing.assert_allclose(first["c_l"], 20 * direct["f_y"], rtol=1e-12, atol=1e-14)

    def forbidden(*args, **kwargs):
        raise AssertionError("stepped again instead of reading the cache")

    monkeypatch.setattr(fem_ns.TaylorHood, "run_unsteady", forbidden)
    again = problem.fe_reference_forces(dt=0.01, t_end=0.03, level=0)
    for key in ("t", "c_d", "c_l"):
        np.testing.assert_array_equal(again[key], first[key])
    assert again["seconds"] == first["seconds"]
    for kwargs, name in (
        ({"dt": 0.0}, "dt"),
        ({"dt": 0.1}, "dt"),
        ({"t_end": -1.0}, "t_end"),
        ({"t_end": "1"}, "t_end"),
        ({"level": 4}, "level"),
        ({"level": 1.0}, "level"),
    ):
        with pytest.raises(ParameterError, match=f"^{name} must"):
            problem.fe_reference_forces(**kwargs)
