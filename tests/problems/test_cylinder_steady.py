"""The DFG benchmark 2D-1 on its mesh: the Taylor-Hood reference against published values, its
convergence under refinement, the force integrals against closed forms, and quantities of any
solution."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pdekit.problems.navier_stokes.cylinder_steady import CENTRE, DIAMETER, CylinderSteady
from pdekit.problems.references import fem_ns

DATA = Path(__file__).resolve().parents[1] / "data"
PUBLISHED = json.loads((DATA / "dfg_2d1_john_matthies_2001.json").read_text())


@pytest.fixture(scope="module")
def problem():
    return CylinderSteady()


@pytest.fixture(scope="module")
def levels(problem):
    """The quantities of the Taylor-Hood flow on the shipped mesh (level 0) and refined once
    (level 1, the reference)."""
    return {level: problem.reference_quantities(level) for level in (0, 1)}


def _rel(a, b):
    return abs(a - b) / abs(b)


def test_reference_meets_the_published_values(levels):
    """The reference's stated accuracy (its docstring): c_D and dp within 1e-4, c_L within
    0.5 % of John & Matthies (measured: 1.0e-5, 8e-7, 0.23 %); the issue's targets are 0.1 %
    and 1 %."""
    q = levels[1]
    assert _rel(q["c_d"], PUBLISHED["c_d"]) < 1e-4, q
    assert _rel(q["dp"], PUBLISHED["delta_p"]) < 1e-4, q
    assert _rel(q["c_l"], PUBLISHED["c_l"]) < 5e-3, q


def test_reference_converges_under_refinement(levels):
    """Refining the mesh once moves every quantity toward the published value (measured
    errors, level 0 -> 1: c_D 1.4e-4 -> 1.0e-5, c_L 3.5 % -> 0.23 %, dp 1.0 % -> 8e-7)."""
    for name, key in (("c_d", "c_d"), ("c_l", "c_l"), ("dp", "delta_p")):
        coarse = _rel(levels[0][name], PUBLISHED[key])
        fine = _rel(levels[1][name], PUBLISHED[key])
        assert fine < 0.5 * coarse, (name, coarse, fine)


@pytest.mark.slow
def test_reference_converges_on_the_second_refinement(problem, levels):
    """Level 2 (159k unknowns, ~45 s): c_D within 1e-6, c_L within 0.1 % (measured 5.579531,
    0.010620)."""
    q = problem.reference_quantities(2)
    assert _rel(q["c_d"], PUBLISHED["c_d"]) < 1e-6
    assert _rel(q["c_l"], PUBLISHED["c_l"]) < 1e-3
    assert abs(q["c_l"] - PUBLISHED["c_l"]) < abs(levels[1]["c_l"] - PUBLISHED["c_l"])


def test_force_integrals_of_a_known_flow(problem):
    """The stagnation flow u = (x, -y), p = -(x^2 + y^2) / 2 solves the steady Navier-Stokes
    equations for every nu, so the force of the fluid on the cylinder is the momentum the disk
    would hold, F = int_disk (u . grad) u dA = pi r^2 (c_x, c_y) with (c_x, c_y) its centre. The
    volume-integral and the boundary-integral forces both meet it. The velocity is exact in P2;
    the pressure is interpolated in P1, off by up to h^2 |p''| / 8 ~ 2e-6 (h ~ 4e-3 at the
    cylinder on the mesh refined once), which over the layer of triangles along the cylinder
    (div of the test function ~ 1 / h, perimeter 2 pi r) moves the force by ~ 2e-6 * 2 pi r
    ~ 6e-7, 4e-4 of it: the tolerance (measured 2.9e-4 for the volume integral)."""

    def flow(points):
        x, y = points[:, 0], points[:, 1]
        return {"u": x, "v": -y, "p": -(x**2 + y**2) / 2}

    want = math.pi * (DIAMETER / 2) ** 2 * np.array(CENTRE)
    for method, tol in (("volume", 6e-4), ("boundary", 6e-4)):
        f = problem.forces(flow, "cylinder", method=method)
        got = np.array([f["f_x"], f["f_y"]])
        assert np.allclose(got, want, rtol=tol, atol=0), (method, got, want)


def test_wall_force_by_both_integrals(problem):
    """The force on the walls (a part that meets the inlet at two corners, whose dofs the test
    function must leave out) by the volume and the boundary integral agree (measured 0.14 %;
    with the corner dofs in, the volume integral was 2.3 % off)."""
    ref = problem.reference()
    volume = problem.forces(ref, "walls")["f_x"]
    boundary = problem.forces(ref, "walls", method="boundary")["f_x"]
    assert volume == pytest.approx(boundary, rel=5e-3)


def test_quantities_of_the_reference_round_trip(problem, levels):
    """A solution's quantities are those of its P2/P1 interpolant: the reference itself,
    evaluated at points and interpolated again, gives back its own c_D, c_L, dp."""
    q = problem.quantities(problem.reference())
    for name in ("c_d", "c_l", "dp"):
        assert q[name] == pytest.approx(levels[1][name], rel=1e-9, abs=1e-12)


def test_reference_is_nan_inside_the_cylinder(problem):
    ref = problem.reference()
    out = ref(np.array([[0.2, 0.2], [1.0, 0.2]]))
    assert np.isnan(out["u"][0]) and np.isfinite(out["u"][1])
    assert out["u"][1] > 0.0  # downstream, the flow goes with the inflow


def test_taylor_hood_converges_at_order_three_on_kovasznay():
    """P2/P1 on the Kovasznay flow (re = 20, exact Dirichlet velocity on the whole boundary):
    the velocity's L2 error falls by ~8 per halving of h (order 3)."""
    import skfem

    re = 20.0
    lam = re / 2 - math.sqrt(re**2 / 4 + 4 * math.pi**2)

    def exact(x, y):
        e = np.exp(lam * x)
        return 1 - e * np.cos(2 * math.pi * y), lam / (2 * math.pi) * e * np.sin(2 * math.pi * y)

    errors = []
    for n in (4, 8, 16):
        mesh = skfem.MeshTri.init_tensor(
            np.linspace(-0.5, 1.0, n + 1), np.linspace(-0.5, 1.5, n + 1)
        )
        th = fem_ns.TaylorHood(
            mesh, {"all": lambda x: np.ones(x.shape[1], dtype=bool)}, 1.0 / re, {"all": exact}
        )
        state = th.solve_steady()
        u = th.ubasis.interpolate(state.x[: th.nu_dofs])

        @skfem.Functional
        def error(m):
            ue, ve = exact(m.x[0], m.x[1])
            return (m["u"][0] - ue) ** 2 + (m["u"][1] - ve) ** 2

        errors.append(math.sqrt(error.assemble(th.ubasis, u=u)))
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    print("Kovasznay P2 velocity L2 errors", errors, "orders", orders)
    assert orders[-1] > 2.7, (errors, orders)


def test_traction_condition_holds_at_the_outlet(problem):
    """The reference meets the do-nothing condition nu du/dx - p = 0 at the outlet in the
    weak sense: its mean over the outlet is 1e-4 of the pressure drop behind the cylinder or less
    (measured 7e-7 of it; pointwise the P1 pressure and P2 velocity gradient meet it to O(h))."""
    ref = problem.reference()
    y = np.linspace(0.02, 0.39, 38)
    h = 1e-3
    at = ref(np.stack([np.full_like(y, 2.2 - 1e-9), y], 1))
    before = ref(np.stack([np.full_like(y, 2.2 - h), y], 1))
    dudx = (at["u"] - before["u"]) / h
    traction = 1e-3 * dudx - at["p"]
    drop = float(ref(np.array([[0.3, 0.2]]))["p"][0] - at["p"].mean())
    print("outlet traction mean", traction.mean(), "drop", drop)
    assert abs(traction.mean()) < 1e-4 * drop, (traction.mean(), drop)


def _cavity(n: int, nu: float) -> fem_ns.TaylorHood:
    """Taylor-Hood on the unit square (n x n squares, halved): a smooth lid u = 16 x^2 (1 - x)^2
    on top, no slip on the other sides."""
    import skfem

    mesh = skfem.MeshTri.init_tensor(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    parts = {
        "lid": lambda x: x[1] > 1 - 1e-9,
        "walls": lambda x: x[1] <= 1 - 1e-9,
    }

    def lid(x, y):
        return 16 * x**2 * (1 - x) ** 2, 0 * x

    def wall(x, y):
        return 0 * x, 0 * x

    return fem_ns.TaylorHood(mesh, parts, nu, {"lid": lid, "walls": wall})


def test_bdf2_stepper_is_second_order_in_time():
    """run_unsteady (BDF2, convection extrapolated, a backward-Euler first step, the impulsive
    start projected) on the smooth cavity from rest at nu = 0.01, to t = 1: the velocity at the
    last step against the same run with half the step differs by a quarter as much per halving
    (order 2; measured ratios 4.18, 4.08; 2.3 and 1.9 without the start's projection)."""
    th = _cavity(6, 0.01)
    finals = []
    for dt in (0.05, 0.025, 0.0125, 0.00625):
        last = {}
        th.run_unsteady(dt, 1.0, callback=lambda t, s, last=last: last.update(t=t, x=s.x))
        assert last["t"] == pytest.approx(1.0)
        finals.append(last["x"][: th.nu_dofs])
    diffs = [np.linalg.norm(finals[i] - finals[i + 1]) for i in range(3)]
    ratios = [diffs[i] / diffs[i + 1] for i in range(2)]
    print("BDF2 self-convergence differences", diffs, "ratios", ratios)
    assert all(3.6 < r < 4.4 for r in ratios), (diffs, ratios)


def test_the_projected_start_is_divergence_free_with_its_boundary_data():
    """The impulsive start (rest, the lid's velocity on the lid) projected: the Dirichlet values
    kept, the discrete divergence B^T u zero to round-off (measured 0.013 before, 1e-17 after),
    the change M-orthogonal to every divergence-free field vanishing on the boundary (the L2
    projection, not another), and a divergence-free field left as it is."""
    import skfem
    from skfem.helpers import dot

    th = _cavity(6, 0.01)
    mass = skfem.BilinearForm(lambda u, w, _: dot(u, w)).assemble(th.ubasis)
    n = th.nu_dofs + th.np_dofs + int(th.gauge)
    x = np.zeros(n)
    x[th.fixed] = th.values[th.fixed]
    free = np.setdiff1d(np.arange(n), th.fixed)
    before = np.abs(th.B.T @ x[: th.nu_dofs]).max()
    y = th._project(x, mass, free)
    after = np.abs(th.B.T @ y[: th.nu_dofs]).max()
    print("discrete divergence of the start", before, "projected", after)
    assert before > 1e-3 and after < 1e-12
    np.testing.assert_array_equal(y[th.fixed], x[th.fixed])
    rng = np.random.default_rng(0)
    for _ in range(3):
        noise = np.zeros(n)
        noise[: th.nu_dofs] = rng.normal(size=th.nu_dofs)
        noise[th.fixed] = 0.0
        v0 = th._project(noise, mass, free)[: th.nu_dofs]
        assert np.abs(th.B.T @ v0).max() < 1e-12 and np.abs(v0).max() > 0.01
        change = (y - x)[: th.nu_dofs]
        inner = change @ (mass @ v0)
        scale = np.sqrt(change @ (mass @ change)) * np.sqrt(v0 @ (mass @ v0))
        assert abs(inner) < 1e-10 * scale, (inner, scale)
    again = th._project(y, mass, free)
    np.testing.assert_allclose(again[: th.nu_dofs], y[: th.nu_dofs], atol=1e-12)


def test_bdf2_stepper_reaches_the_steady_newton_solution_and_its_force():
    """Time-stepped from rest long enough (t = 40, four diffusion times 1 / nu), the cavity's
    flow is Newton's steady solution, and the force on the lid that run_unsteady reports at the
    last step (with the BDF2 time derivative in the residual) is the steady force."""
    th = _cavity(6, 0.1)
    steady = th.solve_steady()
    last = {}
    out = th.run_unsteady(0.5, 40.0, "lid", callback=lambda t, s: last.update(x=s.x))
    scale = np.abs(steady.x[: th.nu_dofs]).max()
    assert np.abs(last["x"][: th.nu_dofs] - steady.x[: th.nu_dofs]).max() < 1e-8 * scale
    f_steady = th.forces(steady, "lid")
    f_last = np.array([out["f_x"][-1], out["f_y"][-1]])
    print("lid force, steady", f_steady, "last step", f_last)
    assert np.abs(f_steady).max() > 1e-3
    np.testing.assert_allclose(f_last, f_steady, rtol=1e-7, atol=1e-10)
    assert out["t"][-1] == pytest.approx(40.0) and out["t"].size == 80
