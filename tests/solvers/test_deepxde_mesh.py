"""The DeepXDE baseline on mesh domains: each boundary condition at its own tag's points, with
the mesh's normals in whatever order DeepXDE asks; the traction condition against its closed
form; short runs that learn; the DFG cylinder end to end."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import pdekit
from pdekit import solvers
from pdekit.geometries import Disk, MeshGeometry, Rectangle
from pdekit.problems.base import BC, Problem
from pdekit.solvers.deepxde_baseline import _dde, mesh_geometry, traction_residual
from pdekit.solvers.physics import SamplingConfig

DATA = Path(__file__).resolve().parents[1] / "data"

#: outward normals of the unit square's sides
NORMALS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "bottom": (0.0, -1.0), "top": (0.0, 1.0)}


def unit_square_mesh() -> MeshGeometry:
    """[0, 1]^2 as 8 triangles on a 3 x 3 grid of nodes, its sides tagged by name."""
    nodes = np.array([(i / 2, j / 2) for j in range(3) for i in range(3)])
    corners = [j * 3 + i for j in range(2) for i in range(2)]
    triangles = np.array([t for a in corners for t in ((a, a + 1, a + 4), (a, a + 4, a + 3))])
    sides = {
        "bottom": [(0, 1), (1, 2)],
        "right": [(2, 5), (5, 8)],
        "top": [(8, 7), (7, 6)],
        "left": [(6, 3), (3, 0)],
    }
    boundary = {tag: [("line", np.array(edges))] for tag, edges in sides.items()}
    return MeshGeometry(nodes, [("triangle", triangles)], boundary, source="<unit square>")


def flow(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """A known field: u = x y, v = x^2 + x y, p = x + y."""
    X, Y = x[:, 0], x[:, 1]
    return {"u": X * Y, "v": X**2 + X * Y, "p": X + Y}


def flow_gradients(x: np.ndarray) -> dict[str, np.ndarray]:
    """grad u and grad v of :func:`flow` (n, 2), by hand."""
    X, Y = x[:, 0], x[:, 1]
    return {"u": np.stack([Y, X], 1), "v": np.stack([2 * X + Y, X], 1)}


@dataclass(frozen=True)
class SquareWithEveryCondition(Problem):
    """Test-only: the unit square (a mesh or the box) with one condition of each kind on a side:
    Dirichlet (u, v) at the bottom, Neumann u at the right, Robin v at the top, traction (u, v; p)
    at the left, b a function there."""

    kind: str = "mesh"

    coordinates = ("x", "y")
    fields = ("u", "v", "p")
    derivatives = {"u": ("x", "y"), "v": ("x", "y"), "p": ()}

    def domain(self):
        if self.kind == "mesh":
            return unit_square_mesh()
        if self.kind == "box":
            return Rectangle((0.0, 0.0), (1.0, 1.0))
        return Rectangle((0.0, 0.0), (1.0, 1.0)) - Disk((0.5, 0.5), 0.2)

    def boundary_conditions(self):
        return [
            BC(
                "dirichlet",
                ("u", "v"),
                lambda x: {"u": torch.sin(x[:, 0]), "v": 0 * x[:, 0]},
                tag="bottom",
            ),  # fmt: skip
            BC("neumann", ("u",), lambda x: {"u": x[:, 1] ** 2}, tag="right"),
            BC("robin", ("v",), lambda x: {"v": x[:, 0]}, tag="top", a=2.0, b=0.5),
            BC(
                "traction",
                ("u", "v"),
                lambda x: {"u": x[:, 1], "v": 0.3 + 0 * x[:, 0]},
                tag="left",
                b=lambda x: 1.0 + x[:, 1],
                pressure="p",
            ),  # fmt: skip
        ]

    def residual(self, f):
        return {"div": f.d("u", "x") + f.d("v", "y")}


def expected_misfits(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each DeepXDE condition's error at points x (n, 2) for :func:`flow`, by hand, in the order
    the baseline builds them; with the side each one's points must lie on."""
    X, Y = x[:, 0], x[:, 1]
    f = {k: v.numpy() for k, v in flow(torch.as_tensor(x, dtype=torch.float64)).items()}
    grad = flow_gradients(x)

    def dn(field, side):
        return grad[field] @ np.array(NORMALS[side])

    b = 1.0 + Y
    n = NORMALS["left"]
    return [
        ("bottom", f["u"] - np.sin(X)),
        ("bottom", f["v"]),
        ("right", dn("u", "right") - Y**2),
        # DeepXDE's RobinBC form: dv/dn = (g - a v) / b
        ("top", dn("v", "top") - (X - 2.0 * f["v"]) / 0.5),
        ("left", b * dn("u", "left") - f["p"] * n[0] - Y),
        ("left", b * dn("v", "left") - f["p"] * n[1] - 0.3),
    ]


ON_SIDE = {
    "left": lambda x: np.isclose(x[:, 0], 0, rtol=0, atol=1e-14),
    "right": lambda x: np.isclose(x[:, 0], 1, rtol=0, atol=1e-14),
    "bottom": lambda x: np.isclose(x[:, 1], 0, rtol=0, atol=1e-14),
    "top": lambda x: np.isclose(x[:, 1], 1, rtol=0, atol=1e-14),
}


@pytest.fixture
def dde64():
    """DeepXDE in float64 (points, tensors), float32 again afterwards (its default)."""
    dde = _dde()
    dde.config.set_default_float("float64")
    try:
        yield dde
    finally:
        dde.config.set_default_float("float32")


@pytest.mark.parametrize("kind", ["mesh", "box"])
def test_each_condition_at_its_own_points_matches_the_closed_form(kind, dde64):
    """Every condition's DeepXDE error for a known field equals the hand-computed misfit, at
    points of its own side only: Dirichlet, Neumann, Robin (DeepXDE's normal derivative through
    our geometry's normals) and traction (:func:`traction_residual`). The rows of each
    condition are shuffled first: normals are found by position, not by order (DeepXDE's
    PointCloud returns them in its own order). The box goes through DeepXDE's Rectangle: the
    same closed forms, an independent geometry."""
    dde = dde64
    problem = SquareWithEveryCondition(kind)
    baseline = solvers.get("deepxde")
    assert baseline.supports(problem) is None
    geom = baseline._geometry(dde, problem, SamplingConfig(n_boundary=64), seed=3)
    _, bcs = baseline._conditions(dde, problem, geom, initial=False, boundary=True)
    data = dde.data.PDE(
        geom, None, bcs, num_domain=32, num_boundary=64, train_distribution="pseudo"
    )
    ends = np.cumsum([0, *data.num_bcs])
    rng = np.random.default_rng(0)
    x = data.train_x.copy()
    for beg, end in zip(ends[:-1], ends[1:]):
        x[beg:end] = x[beg:end][rng.permutation(end - beg)]
    inputs = torch.as_tensor(x).requires_grad_(True)
    values = flow(inputs)
    outputs = torch.stack([values[k] for k in problem.fields], 1)
    dde.grad.clear()
    expected = expected_misfits(x)
    assert len(bcs) == len(expected)
    for bc, beg, end, (side, want) in zip(bcs, ends[:-1], ends[1:], expected):
        assert end - beg >= (16 if kind == "mesh" else 5), (side, end - beg)
        assert ON_SIDE[side](x[beg:end]).all(), side
        got = bc.error(x, inputs, outputs, beg, end).detach().numpy().reshape(-1)
        # float64 throughout: round-off on values of order 1
        np.testing.assert_allclose(got, want[beg:end], rtol=1e-12, atol=1e-12, err_msg=side)
    if kind == "mesh":  # pinn's split: n_boundary // 4 points on each condition's side
        assert data.num_bcs == [16, 16, 16, 16, 16, 16]
    dde.grad.clear()


def test_traction_residual_leaves_time_out(dde64):
    """Under a GeometryXTime the normal derivative is spatial (the geometry appends a zero time
    component, the Jacobian has a time column): u = x y + 5 t^2 x, p = x + y + t on the right
    side (n = (1, 0)), b = 0.7: b du/dn - p n_x = 0.7 (y + 5 t^2) - (1 + y + t); v = x t:
    b dv/dn - p n_y = 0.7 t."""
    dde = dde64
    bc = BC("traction", ("u", "v"), lambda x: {"u": 0 * x[:, 0], "v": 0 * x[:, 0]},
            tag="right", b=0.7, pressure="p")  # fmt: skip
    space = mesh_geometry(dde, unit_square_mesh(), [bc], 20, "sobol", np.random.default_rng(1))
    geom = dde.geometry.GeometryXTime(space, dde.geometry.TimeDomain(0.0, 1.0))
    pts = space.condition_points[0].points
    t = np.linspace(0.1, 0.9, len(pts))[:, None]
    x = np.hstack([pts, t])[::-1].copy()  # another order than the geometry's
    inputs = torch.as_tensor(x).requires_grad_(True)
    X, Y, T = inputs[:, 0], inputs[:, 1], inputs[:, 2]
    outputs = torch.stack([X * Y + 5 * T**2 * X, X * T, X + Y + T], 1)
    dde.grad.clear()
    got = [
        traction_residual(dde, geom, bc, j, ("u", "v", "p"), 2)(inputs, outputs, x) for j in (0, 1)
    ]
    dde.grad.clear()
    want_u = 0.7 * (x[:, 1] + 5 * x[:, 2] ** 2) - (1 + x[:, 1] + x[:, 2])
    want_v = 0.7 * x[:, 2]
    np.testing.assert_allclose(got[0].detach().numpy().ravel(), want_u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1].detach().numpy().ravel(), want_v, rtol=1e-12, atol=1e-12)


def test_mesh_normals_are_found_by_position():
    """The geometry answers DeepXDE's ``boundary_normal`` with the mesh's outward normals at
    the points asked, in their order: on the DFG-like channel, -x at the inlet, +x at the outlet,
    and pointing into the hole (away from the fluid) on the cylinder; zero off the boundary."""
    dde = _dde()
    mesh = MeshGeometry.from_file(DATA / "channel_hole.msh")
    bcs = [BC("dirichlet", ("u",), lambda x: {"u": 0 * x[:, 0]}, tag=t)
           for t in ("inlet", "outlet", "cylinder")]  # fmt: skip
    geom = mesh_geometry(dde, mesh, bcs, 90, "sobol", np.random.default_rng(2))
    inlet, outlet, cyl = (p.points for p in geom.condition_points)
    assert np.allclose(inlet[:, 0], 0) and np.allclose(outlet[:, 0], 2.2)
    # the cylinder is a polygon of the mesh: its normals are the facets', ~radial
    radial = (cyl - (0.2, 0.2)) / np.linalg.norm(cyl - (0.2, 0.2), axis=1, keepdims=True)
    inside = geom.random_points(5)
    x = np.vstack([cyl, inside, outlet, inlet])[::-1].astype(np.float32)
    n = geom.boundary_normal(x)[::-1]
    k = len(cyl)
    assert (n[:k] * -radial).sum(1).min() > 0.95  # facets of the coarse circle: cos < 18 deg
    np.testing.assert_array_equal(n[k : k + 5], 0)
    np.testing.assert_allclose(n[k + 5 : k + 35], [[1, 0]] * 30, atol=1e-12)
    np.testing.assert_allclose(n[k + 35 :], [[-1, 0]] * 30, atol=1e-12)
    assert geom.on_boundary(x).sum() == 90 and mesh.contains(inside).all()


def test_supports_refuses_other_domains_with_a_reason():
    """A CSG domain (a rectangle minus a disk) has no DeepXDE counterpart here: refused, naming
    what is handled; meshes and boxes are accepted."""
    baseline = solvers.get("deepxde")
    reason = baseline.supports(SquareWithEveryCondition("csg"))
    assert reason is not None and "meshes" in reason and "Difference" in reason
    assert baseline.supports(SquareWithEveryCondition("mesh")) is None
    assert baseline.supports(pdekit.problems.get("navier_stokes/cylinder_steady")) is None


SMALL = {"network.width": 16, "network.depth": 2, "sampling.n_interior": 128,
         "sampling.n_boundary": 64, "sampling.n_initial": 64, "train.lr": 5e-3}  # fmt: skip


@pytest.mark.parametrize(
    "name, params, steps, tol, reason",
    [
        (
            "navier_stokes/kovasznay",
            {"mesh": str(DATA / "channel_hole.msh")},
            50,
            0.3,
            "2D steady, triangles, a hole; 16x2 tanh, 50 Adam steps: measured 1.19 -> 0.150 "
            "(0.79 without boundary points)",
        ),
        (
            "porous_medium/heat_mesh",
            {"mesh": str(DATA / "box_tet.msh"), "dim": 3},
            50,
            0.7,
            "3D tetrahedra x time (GeometryXTime over the mesh), 50 steps: measured 1.41 -> "
            "0.418 (1.50 without boundary points)",
        ),
    ],
)
def test_deepxde_learns_on_a_mesh(name, params, steps, tol, reason):
    """A short DeepXDE run on a mesh reduces the error against the exact solution well below the
    untrained network's (same seed, so the same initial network)."""

    def error(n):
        sol = pdekit.solve(
            name, solver="deepxde", steps=n, verbose=False, overrides=SMALL, **params
        )
        return sol.errors()["rel_l2"]

    before, after = error(0), error(steps)
    assert after < tol and after < 0.5 * before, f"{name}: {before:.3g} -> {after:.3g} ({reason})"


def test_deepxde_solves_the_dfg_cylinder_end_to_end():
    """navier_stokes/cylinder_steady (gmsh mesh; Dirichlet inlet, walls, cylinder; do-nothing
    traction outlet) trains, and its solution answers the benchmark's quantities beside the
    reference's. A tiny budget: the values are far from the reference, so only finiteness."""
    small = {**SMALL, "sampling.n_boundary": 128}
    sol = pdekit.solve(
        "navier_stokes/cylinder_steady", solver="deepxde", steps=10, verbose=False, overrides=small
    )
    loss = sol.history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    q = sol.quantities()
    assert set(q) == {"c_d", "c_l", "dp"}
    for name, row in q.items():
        assert all(math.isfinite(row[k]) for k in ("value", "reference", "rel_error")), (name, row)
    assert abs(q["c_d"]["reference"] - 5.5795) < 1e-3  # John & Matthies: 5.57953
