"""Problems on the user's own mesh (``mesh=PATH``): the exact 3D Beltrami flow on the shipped
tetrahedral box with a hole, Kovasznay and the manufactured heat problem on 2D and 3D meshes,
the ``pdekit solve`` run that writes a .vtu time series on the mesh, and what a bad mesh gets:
one ParameterError line naming the parameter and what is wrong, raised when the problem is made.
"""

from __future__ import annotations

import math
import pathlib
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import pdekit
from pdekit.cli import main
from pdekit.core import AutogradFields, TaylorFields
from pdekit.errors import MeshError, ParameterError
from pdekit.geometries import MeshGeometry
from pdekit.meshes import mesh_path
from pdekit.problems import get
from pdekit.problems.navier_stokes.kovasznay import Kovasznay
from pdekit.solvers.networks import MLP, CoordinateEmbedding

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
BOX_WITH_HOLE = str(mesh_path("box_with_hole"))
CHANNEL = str(DATA / "channel_hole.msh")
#: float64 round-off on the residuals' terms (|u| <= 3, |u.grad u| and |grad p| <= ~10 at the
#: defaults on [-1, 1]^3; up to ~100 at a = 1.3): measured 3e-15 (defaults) and 1.4e-14
ROUNDOFF = 1e-12


def exact_residual(problem, points: np.ndarray) -> dict[str, np.ndarray]:
    """The problem's residual of its exact solution at points, by autograd in float64."""
    x = torch.as_tensor(points, dtype=torch.float64).requires_grad_(True)
    f = AutogradFields(x, problem.exact(x), problem.coordinates, problem.derivatives)
    return {k: v.detach().numpy() for k, v in problem.residual(f).items()}


# -- Beltrami on a tetrahedral mesh -----------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"a": 1.3, "d": 0.7, "nu": 0.05, "t_end": 1.0}])
def test_beltrami_exact_solution_solves_navier_stokes_on_the_tet_mesh(params):
    problem = get("navier_stokes/beltrami", mesh=BOX_WITH_HOLE, **params)
    dom = problem.domain()
    assert isinstance(dom.space, MeshGeometry) and dom.space.dim == 3
    pts = dom.sample_interior(4000, rng=np.random.default_rng(0))
    r = np.hypot.reduce(pts[:, :3], axis=1)
    assert dom.space.contains(pts[:, :3]).all() and r.min() > 0.39  # none in the hole
    res = exact_residual(problem, pts)
    assert set(res) == {"momentum_x", "momentum_y", "momentum_z", "continuity"}
    worst = max(float(np.abs(v).max()) for v in res.values())
    assert worst < ROUNDOFF, worst


def test_beltrami_data_on_every_tag_of_the_mesh():
    """Initial data at t = 0 and Dirichlet velocity on both tags (``outer``, ``hole``) are the
    exact solution's; the hole's points are on the sphere r = 0.4 to its faceting."""
    problem = get("navier_stokes/beltrami", mesh=BOX_WITH_HOLE)
    dom = problem.domain()
    (bc,) = problem.boundary_conditions()
    assert bc.tag is None and bc.fields == ("u", "v", "w") and bc.kind == "dirichlet"
    for tag in dom.boundary_tags:
        pts, normals = dom.sample_boundary(200, tag, rng=np.random.default_rng(1))
        x = torch.as_tensor(pts, dtype=torch.float64)
        got, want = bc.value(x), problem.exact(x)
        for k in bc.fields:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
        if tag == "hole":
            r = np.linalg.norm(pts[:, :3], axis=1)
            assert np.all(np.abs(r - 0.4) < 0.02)
            assert np.all(np.sum(normals * pts[:, :3], axis=1) < 0)  # outward: into the ball
    x0 = dom.sample_initial(200, rng=np.random.default_rng(2))
    ic = problem.initial_condition(torch.as_tensor(x0[:, :3]))
    exact = problem.exact(torch.as_tensor(x0))
    for k in problem.fields:
        torch.testing.assert_close(ic[k], exact[k], rtol=0, atol=0)


def test_taylor_engine_agrees_with_autograd_on_the_3d_residual():
    """navier_stokes_3d through the Taylor engine (x, y, z, t; the Laplacian carried as one
    quantity) against nested autograd, same float64 network, points on the tet mesh: both are
    exact chain rules, so they agree to round-off."""
    problem = get("navier_stokes/beltrami", mesh=BOX_WITH_HOLE)
    dom = problem.domain()
    torch.manual_seed(0)
    emb = CoordinateEmbedding(dom.bounds, dom.periodic, harmonics=1)
    model = MLP(emb, len(problem.fields), width=16, depth=2).double()
    pts = torch.as_tensor(dom.sample_interior(300, rng=np.random.default_rng(3)))
    x = pts.clone().requires_grad_(True)
    y = model(x)
    values = {k: y[:, i] for i, k in enumerate(problem.fields)}
    auto = problem.residual(AutogradFields(x, values, problem.coordinates, problem.derivatives))
    coords, fields, decl = problem.coordinates, problem.fields, problem.derivatives
    taylor = problem.residual(TaylorFields(model, pts, coords, fields, decl))
    for k, v in auto.items():
        scale = float(v.detach().abs().max())
        assert scale > 1e-3  # a residual that says something
        torch.testing.assert_close(taylor[k], v, rtol=0, atol=ROUNDOFF * max(scale, 1.0))


# -- 2D meshes: Kovasznay, and the manufactured heat problem in both dimensions ------------------
@pytest.mark.parametrize(
    "name, params",
    [
        ("navier_stokes/kovasznay", {"mesh": CHANNEL}),
        ("porous_medium/heat_mesh", {"mesh": CHANNEL}),
        ("porous_medium/heat_mesh", {"mesh": BOX_WITH_HOLE, "dim": 3, "k": 0.3}),
    ],
)
def test_exact_solutions_hold_on_meshes(name, params):
    problem = get(name, **params)
    dom = problem.domain()
    space = dom.space if problem.time_dependent else dom
    assert isinstance(space, MeshGeometry) and space.source == params["mesh"]
    assert len(problem.coordinates) == space.dim + problem.time_dependent
    pts = dom.sample_interior(2000, rng=np.random.default_rng(4))
    worst = max(float(np.abs(v).max()) for v in exact_residual(problem, pts).values())
    assert worst < ROUNDOFF, worst
    for tag in space.boundary_tags:  # every tag gets the exact solution's data
        pts, _ = dom.sample_boundary(50, tag, rng=np.random.default_rng(5))
        x = torch.as_tensor(pts, dtype=torch.float64)
        for bc in problem.boundary_conditions():
            assert bc.tag is None
            got, want = bc.value(x), problem.exact(x)
            for k in bc.fields:
                torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)


def test_heat_mesh_coordinates_follow_its_dimension():
    assert get("porous_medium/heat_mesh").coordinates == ("x", "y", "t")
    p3 = get("porous_medium/heat_mesh", dim=3)
    assert p3.coordinates == ("x", "y", "z", "t")
    assert p3.derivatives == {"u": ("t", "x", "y", "z", "laplacian")}
    np.testing.assert_array_equal(p3.domain().bounds[:, :3], [[0, 0, 0], [1, 1, 1]])
    # u(x, 0) = sin(w.x + pi/4) with w = (1.5, 1, 0.5), decaying at k |w|^2 = 3.5 k
    pt = torch.tensor([[0.2, 0.4, 0.6, 0.5]], dtype=torch.float64)
    want = math.exp(-3.5 * 0.5) * math.sin(1.5 * 0.2 + 0.4 + 0.5 * 0.6 + math.pi / 4)
    assert p3.exact(pt)["u"].item() == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("dim", [2, 3])
def test_heat_mesh_flux_is_the_conservation_form(dim):
    """u_t + div F = 0 for the exact solution, F = flux(f) differentiated by autograd."""
    problem = get("porous_medium/heat_mesh", dim=dim, k=0.4)
    pts = problem.domain().sample_interior(500, rng=np.random.default_rng(6))
    x = torch.as_tensor(pts).requires_grad_(True)
    f = AutogradFields(x, problem.exact(x), problem.coordinates)
    flux = problem.flux(f)
    assert len(flux) == dim
    div = sum(
        torch.autograd.grad(F.sum(), x, retain_graph=True)[0][:, i] for i, F in enumerate(flux)
    )
    balance = (f.d("u", "t") + div).detach().numpy()
    assert np.abs(balance).max() < ROUNDOFF


def test_the_domain_is_read_once():
    problem = get("navier_stokes/beltrami", mesh=BOX_WITH_HOLE)
    assert problem.domain().space is problem.domain().space
    by_path = get("navier_stokes/beltrami", mesh=mesh_path("box_with_hole"))  # a pathlib.Path
    assert by_path.mesh == BOX_WITH_HOLE and by_path.domain().space is problem.domain().space
    assert get("navier_stokes/beltrami", mesh=BOX_WITH_HOLE, nu=2.0).domain().space is (
        problem.domain().space
    )


# -- a short solve, from Python and from the command line ---------------------------------------
SMALL = {"network.width": 8, "network.depth": 1, "sampling.n_interior": 64}
SMALL |= {"sampling.n_boundary": 32, "sampling.n_initial": 32}


def test_solve_on_the_mesh_writes_a_vtu_time_series_on_it(tmp_path):
    """``pdekit solve navier_stokes/beltrami --set mesh=...`` with the default solver, two
    steps; its checkpoint loads, and its VTK output (what ``pdekit solve`` and ``pdekit
    export`` write, here without the slower plot) is a .pvd listing one .vtu per output time,
    each holding the mesh's nodes and tetrahedra with the fields, reference and error."""
    import meshio

    out = tmp_path / "run"
    argv = ["solve", "navier_stokes/beltrami", "--set", f"mesh={BOX_WITH_HOLE}", "--steps", "2"]
    argv += [a for k, v in SMALL.items() for a in ("--config", f"{k}={v}")]
    assert main([*argv, "--quiet", "--device", "cpu", "--no-export", "--out", str(out)]) == 0
    sol = pdekit.load(out / "checkpoint.h5")
    assert (sol.solver, sol.step, sol.problem.mesh) == ("pinn", 2, BOX_WITH_HOLE)
    pvd = sol.to_vtk(tmp_path / "vtk" / "solution.pvd")
    frames = ET.parse(pvd).getroot().iter("DataSet")
    frames = [(float(d.get("timestep")), d.get("file")) for d in frames]
    np.testing.assert_allclose([t for t, _ in frames], np.linspace(0.0, 0.1, 11), atol=1e-15)
    mesh = MeshGeometry.from_file(BOX_WITH_HOLE)
    last = meshio.read(pvd.parent / frames[-1][1])
    assert frames[-1][1].endswith(".vtu") and last.points.shape == (len(mesh.points), 3)
    np.testing.assert_array_equal(last.points, mesh.points)
    assert [(c.type, len(c.data)) for c in last.cells] == [("tetra", mesh.n_cells)]
    for k in ("u", "v", "w", "p"):
        assert {k, f"{k}_reference", f"{k}_error"} <= set(last.point_data)
    want = get("navier_stokes/beltrami").exact(
        torch.as_tensor(np.column_stack([mesh.points, np.full(len(mesh.points), 0.1)]))
    )
    np.testing.assert_allclose(last.point_data["u_reference"], want["u"].numpy(), rtol=1e-12)


def test_python_solve_on_a_2d_mesh():
    options = {"steps": 1, "overrides": SMALL, "device": "cpu", "verbose": False}
    sol = pdekit.solve("navier_stokes/kovasznay", mesh=CHANNEL, **options)
    assert sol.problem.domain().source == CHANNEL
    assert np.isfinite(sol.errors()["rel_l2"])


# -- bad meshes: one line, raised when the problem is made ----------------------------------------
def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("parameter 'mesh' of ")
    assert isinstance(err.value.__cause__, MeshError)
    return message


def test_a_missing_file_is_named(tmp_path):
    path = str(tmp_path / "nope.msh")
    with pytest.raises(ParameterError) as err:
        get("navier_stokes/beltrami", mesh=path)
    assert f"mesh file {path!r}: no such file" in _one_line(err)


@pytest.mark.parametrize(
    "name, params, have, need",
    [
        ("navier_stokes/beltrami", {"mesh": CHANNEL}, 2, 3),
        ("navier_stokes/kovasznay", {"mesh": BOX_WITH_HOLE}, 3, 2),
        ("porous_medium/heat_mesh", {"mesh": BOX_WITH_HOLE}, 3, 2),
        ("porous_medium/heat_mesh", {"mesh": CHANNEL, "dim": 3}, 2, 3),
    ],
)
def test_a_mesh_of_the_other_dimension_names_both(name, params, have, need):
    with pytest.raises(ParameterError) as err:
        get(name, **params)
    message = _one_line(err)
    assert f"mesh {params['mesh']!r} is {have}D; {name} needs a {need}D mesh" in message


def test_an_inverted_cell_is_reported_not_half_loaded(tmp_path):
    import meshio

    src = meshio.read(BOX_WITH_HOLE)
    tets = next(b.data for b in src.cells if b.type == "tetra").copy()
    tets[100] = tets[100][[0, 2, 1, 3]]
    path = tmp_path / "inverted.vtu"
    meshio.write(path, meshio.Mesh(src.points, [("tetra", tets)]))
    with pytest.raises(ParameterError) as err:
        get("navier_stokes/beltrami", mesh=str(path))
    message = _one_line(err)
    assert str(path) in message and f"1 of {len(tets)} cells are inverted" in message
    assert "first cell indices: [100]" in message


def test_a_degenerate_cell_is_reported(tmp_path):
    import meshio

    points = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 0]], float)
    tris = np.array([[0, 1, 2], [1, 3, 2], [0, 1, 4]])  # the last one is flat
    path = tmp_path / "flat.vtu"
    meshio.write(path, meshio.Mesh(points, [("triangle", tris)]))
    with pytest.raises(ParameterError) as err:
        get("porous_medium/heat_mesh", mesh=str(path))
    assert "1 cells of zero volume" in _one_line(err)


@dataclass(frozen=True)
class NeedsTags(Kovasznay):
    """Kovasznay with conditions that name tags: the mechanism a problem like the DFG cylinder
    uses (``required_tags``)."""

    name = "examples/needs_tags"
    required_tags = ("inlet", "walls", "cylinder")


def test_missing_boundary_tags_are_named_with_those_present():
    with pytest.raises(ParameterError) as err:
        NeedsTags(mesh=CHANNEL)
    message = _one_line(err)
    assert "lacks the boundary tag walls that examples/needs_tags needs" in message
    assert "it has: inlet, outlet, wall, cylinder" in message
    assert NeedsTags().domain().dim == 2  # the default rectangle needs no tags


def test_a_file_fixed_after_a_failure_is_read(tmp_path):
    """Failures are not cached: the same path works once the file is there."""
    path = tmp_path / "mesh.msh"
    with pytest.raises(ParameterError, match="no such file"):
        get("navier_stokes/beltrami", mesh=str(path))
    shutil.copy(BOX_WITH_HOLE, path)
    assert get("navier_stokes/beltrami", mesh=str(path)).domain().space.n_cells > 0
