"""Every registered problem agrees with its own reference solution.

Parametrised over ``pdekit.problems.names()``, so a new problem is checked the moment it is
registered: its reference must satisfy the problem's residual (written once, evaluated through
the core's engines) to the reference's discretisation error, and match the problem's initial
and boundary conditions. Problem definitions and references can then never silently disagree.

* exact references: :class:`~pdekit.core.AutogradFields` on float64 points of the domain;
* grid references (computed): the library's grid path (:func:`pdekit.problems.grid.grid_fields`:
  spectral in space when every spatial axis is periodic, else 4th-order stencils one-sided at
  non-periodic ends; time by the 4th-order central stencil), on the reference's own grid; other
  references are sampled on the problem's evaluation grid first.

A computed reference needs an entry in ``CHECKS`` stating its tolerances and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from pdekit.core import AutogradFields
from pdekit.geometries import Grid as LibGrid
from pdekit.problems import ExactReference, get, names
from pdekit.problems.grid import grid_fields as lib_grid_fields
from pdekit.problems.references import GridReference

STENCIL_ORDER = 4


@dataclass(frozen=True)
class Check:
    """Tolerances (max absolute) of one problem's consistency checks, and why.

    residual / ic / bc: bounds on max |residual|, |reference - initial condition|,
    |reference - boundary data|. t_min: the residual is checked for t >= t0 + t_min.
    wall_cells: residual skipped within this many cells of non-periodic spatial boundaries.
    exclude: points (n, ncoords) -> mask of points where the residual is not checked.
    resolution: sample the reference on this evaluation grid (default: its own uniform grid).
    bc_t_min: boundary data are compared for t >= t0 + bc_t_min (where initial and boundary
    data disagree at t0, the corner is a discontinuity of the problem itself).
    """

    residual: float
    ic: float = 1e-12
    bc: float = 1e-12
    reason: str = ""
    t_min: float = 0.0
    wall_cells: int = 0
    exclude: Callable[[np.ndarray], np.ndarray] | None = None
    resolution: dict[str, int] | None = None
    bc_t_min: float = 0.0
    #: the boundary tags whose data are compared (None: all); the reason must say why not all
    bc_tags: tuple[str, ...] | None = None


EXACT = Check(residual=1e-8, reason="closed form in float64 through autograd: round-off")


def near_lid_corners(radius: float) -> Callable[[np.ndarray], np.ndarray]:
    def mask(points: np.ndarray) -> np.ndarray:
        x, y = points[:, 0], points[:, 1]
        return np.minimum(np.hypot(x, y - 1), np.hypot(x - 1, y - 1)) < radius

    return mask


CHECKS: dict[str, Check] = {
    "navier_stokes/cavity_transient": Check(
        residual=0.1,
        wall_cells=3,
        t_min=1.0,
        exclude=near_lid_corners(0.2),
        reason="2nd-order MAC projection reference on 64 cells, node values every 0.05: "
        "measured 0.010 / 0.021 (momentum x / y) and 0.047 (continuity: the node average of "
        "a face-divergence-free field, differenced by 4th-order stencils) for t >= 1, 3 cells "
        "from the walls and 0.2 from the lid corners (where u jumps and p ~ 1/r); before t = 1 "
        "the impulsive start is faster than the snapshots resolve.",
    ),
    "navier_stokes/cylinder": Check(
        residual=5.0,
        ic=0.05,
        bc=2e-3,
        bc_tags=("inlet", "walls"),
        wall_cells=3,
        exclude=lambda p: (
            (np.hypot(p[:, 0] - 0.2, p[:, 1] - 0.2) < 0.1) | (p[:, 2] < 0.5) | (p[:, 2] > 1.5)
        ),
        reason="a weak check, stated as such: the MAC projection reference at h = 0.01 "
        "(staircase cylinder of 10 cells), node values every 0.04 s. Measured 2.4 / 1.9 "
        "(momentum x / y) and 0.87 (continuity) for 0.5 <= t <= 1.5 outside 0.1 of the "
        "cylinder's centre and 3 cells from the walls, against terms of size u.grad u ~ 45 near "
        "the walls; before, the impulsive start, and after, the shedding (period 0.345 s, 8.6 "
        "snapshots) is too coarse in time for the 4th-order stencil (residual ~50). Initial "
        "data: 0.036 at the inlet corners (the node average of the inflow face and the wall "
        "ghost); inflow data 8.9e-4 at the inlet nodes (the node average of two face values of "
        "the parabola, O(h^2)); walls 0. Not compared: the cylinder (a staircase of cells "
        "in the reference: the harness reads grid faces only) and the outlet (the reference "
        "has zero gradient between its last two face columns only; the 4th-order one-sided "
        "derivative across the passing wake reads 3-9).",
    ),
    "navier_stokes/duct_sphere": Check(
        residual=0.15,
        wall_cells=3,
        t_min=0.5,
        exclude=lambda p: np.linalg.norm(p[:, :3] - (16 / 13, 0.5, 0.5), axis=1) < 0.5,
        reason="the 3D MAC projection reference on 13 cells across (h = 1/13), node values "
        "every 0.05: measured 0.087 / 0.050 / 0.050 (momentum x / y / z) and 0.106 "
        "(continuity: the node average of a face-divergence-free field, differenced by "
        "4th-order stencils, as for the cavity) for t >= 0.5, 3 cells from the walls and "
        "outside 0.5 of the sphere's centre (its staircase surface; inside it the fields are "
        "the solid's), against the body force 1 and u.grad u ~ 1. Initial data and the walls: "
        "exact (0).",
    ),
    "navier_stokes/cylinder_steady": Check(
        residual=0.03,
        bc=1e-12,
        bc_tags=("inlet", "walls"),
        wall_cells=3,
        exclude=lambda p: np.hypot(p[:, 0] - 0.2, p[:, 1] - 0.2) < 0.1,
        reason="the Taylor-Hood reference (P2 velocity, P1 pressure, piecewise: its second "
        "derivatives jump between triangles) read on the 221 x 42 evaluation grid by the "
        "4th-order stencils, outside 0.1 of the cylinder's centre (the reference is NaN inside "
        "the cylinder) and 3 cells from the walls. Measured 0.0091 / 0.0086 (momentum x / y) "
        "and 0.015 (continuity) against u.grad u ~ U^2 / D = 0.4 near the cylinder. Inlet and "
        "walls: the parabola and zero are exact in P2 (round-off). Not compared: the cylinder "
        "(not a grid face) and the do-nothing outlet, a traction condition the harness has no "
        "form for (test_cylinder_steady.py checks it: its mean is 7e-7 of the pressure drop).",
    ),
    "convection_diffusion/burgers_moving": Check(
        residual=1e-6,
        resolution={"x": 1024, "t": 201},
        reason="Cole-Hopf quadrature (Galilean shift, c = 0 at the defaults) sampled on "
        "1024 x 201 points, spectral in x and the 4th-order stencil in t: measured 3.7e-7, and "
        "2.1e-8 on 1024 x 401 (18x less per halving of the time step: the stencil's own "
        "truncation error near the front forming at t ~ 1, the quadrature is below it).",
    ),
    "convection_diffusion/burgers": Check(
        residual=2e-5,
        resolution={"x": 1025, "t": 201},
        exclude=lambda p: np.abs(p[:, 0]) < 0.1,
        reason="Cole-Hopf quadrature sampled on 1025 x 201 points: measured 5.1e-6 outside "
        "|x| < 0.1, and 3.3e-7 on 2049 x 401 (16x less per halving: the 4th-order stencil's "
        "own truncation error, the quadrature is below it). Inside the shock layer (slope -152, "
        "width ~ 3e-3) the stencil's differences are O(0.25) and say nothing of the reference.",
    ),
    "porous_medium/diffusion_sorption": Check(
        residual=2e-4,
        bc=5e-7,
        t_min=20.0,
        bc_t_min=1.0,
        reason="FV reference (1024 cells) resampled on the 1024 x 101 evaluation grid (dt = 5 s): "
        "measured 5.5e-5 for t >= 20 s; before, the boundary layer from the initial jump "
        "(u = 1 at x = 0 against u0 = 0.11) is thinner than the 5 s time differences resolve "
        "(0.03 at t >= 1 s). Boundary data compared for t >= 1 s: at (0, 0) the initial and "
        "boundary data disagree (a corner discontinuity of the problem); 0.0 measured after at "
        "x = 0; the Robin data u + D u_n = 0 at x = 1: 1.9e-7, u_n by the 4th-order one-sided "
        "stencil on 1/1023 spacing of the cubic interpolant of the reference.",
    ),
    "navier_stokes/kolmogorov": Check(
        residual=1e-3,
        t_min=1.0,
        reason="measured 1.2e-4 for t >= 1: the check's 4th-order time derivative across the "
        "0.25 snapshot spacing (4.6e-8 with snapshots 7x denser); before t = 1 the initial "
        "field's high modes decay faster than the snapshots resolve. Continuity and the "
        "vorticity definition hold to round-off (spectral).",
    ),
    "navier_stokes/decaying_turbulence": Check(
        residual=2e-3,
        t_min=1.0,
        reason="Kolmogorov's check without the forcing (nu = 1e-4, T = 5, 128^2): the "
        "4th-order time stencil across the 0.25 snapshot spacing, measured 6.5e-4 for t >= 1 "
        "(Kolmogorov at nu = 1e-3: 1.2e-4); continuity and the vorticity definition to "
        "round-off (spectral).",
    ),
    "convection_diffusion/allen_cahn": Check(
        residual=2e-6,
        ic=1e-14,
        t_min=0.1,
        reason="measured 2.3e-7 for t >= 0.1 (4th-order time differences at dt = 0.005); u0's "
        "slope jumps across the periodic boundary, so u_xx is a Dirac delta at t = 0 until "
        "diffusion and the reaction smooth the kink out (residual 1.5e-6 by t = 0.05).",
    ),
    "navier_stokes/lid_driven_cavity": Check(
        residual=0.05,
        wall_cells=3,
        exclude=near_lid_corners(0.2),
        reason="2nd-order reference on 128 cells: measured 0.024 (momentum), 0.015 (continuity) "
        "3 cells from the walls and 0.2 from the lid corners, falling at order 1.6-1.9 with the "
        "grid (test_lid_driven_cavity); at the corners u jumps and p ~ 1/r, and at the walls 2nd "
        "derivatives of O(h^2)-accurate data are O(1).",
    ),
}


def check_for(name: str, ref) -> Check:
    if name in CHECKS:
        return CHECKS[name]
    if isinstance(ref, ExactReference):
        return EXACT
    pytest.fail(
        f"{name} has a {type(ref).__name__} reference ({ref.source}); add a CHECKS entry with "
        "its tolerances and the reason for them"
    )


@pytest.fixture(scope="module", params=names())
def case(request):
    problem = get(request.param)
    ref = problem.reference()
    return problem, ref, check_for(request.param, ref)


# -- the checks --------------------------------------------------------------------------------
def test_reference_is_described(case):
    problem, ref, _ = case
    assert ref.source in ("exact", "published", "computed")
    assert ref.description.strip() and ref.accuracy.strip(), problem.name
    assert problem.equation.strip() and problem.derivatives, problem.name


def test_reference_satisfies_residual(case):
    problem, ref, check = case
    if isinstance(ref, ExactReference):
        pts = problem.domain().sample_interior(512, rng=np.random.default_rng(0))
        keep = _keep(problem, check, pts)
        x = torch.as_tensor(pts[keep], dtype=torch.float64).requires_grad_(True)
        fields = AutogradFields(x, problem.exact(x), problem.coordinates, problem.derivatives)
        res = {k: v.detach().numpy() for k, v in problem.residual(fields).items()}
    else:
        grid = _as_grid(problem, ref, check.resolution)
        fields = grid_fields(problem, grid)
        mesh = _mesh(grid)
        keep = _keep(problem, check, mesh.reshape(-1, mesh.shape[-1])).reshape(mesh.shape[:-1])
        keep &= _wall_mask(problem, grid, check.wall_cells)
        res = {
            k: np.broadcast_to(v.detach().numpy(), keep.shape)[keep]
            for k, v in problem.residual(fields).items()
        }
    worst = {k: float(np.abs(v).max()) for k, v in res.items()}
    print(f"\n{problem.name}: max |residual| {worst} (tolerance {check.residual:g})")
    assert max(worst.values()) <= check.residual, (worst, check.reason)


def test_reference_matches_initial_condition(case):
    problem, ref, check = case
    if not problem.time_dependent:
        pytest.skip("steady problem: no initial condition")
    dom = problem.domain()
    if isinstance(ref, ExactReference):
        pts = dom.sample_initial(256, rng=np.random.default_rng(1))
    else:
        grid = _as_grid(problem, ref, check.resolution)
        t = grid.axes["t"]
        assert t[0] == pytest.approx(dom.time.t0, abs=1e-12), "the reference must start at t0"
        spatial = np.stack(
            np.meshgrid(*(a for c, a in grid.axes.items() if c != "t"), indexing="ij"), axis=-1
        ).reshape(-1, len(problem.coordinates) - 1)
        pts = np.concatenate([spatial, np.full((len(spatial), 1), t[0])], axis=1)
    got = ref(pts)
    want = problem.initial_condition(torch.as_tensor(pts[:, :-1], dtype=torch.float64))
    dev = {k: float(np.abs(got[k] - v.detach().numpy()).max()) for k, v in want.items()}
    assert max(dev.values()) <= check.ic, (dev, check.reason)


def test_reference_matches_boundary_conditions(case):
    problem, ref, check = case
    bcs = problem.boundary_conditions()
    if not bcs:
        pytest.skip("no boundary conditions (periodic)")
    dom = problem.domain()
    dev = {}
    for bc in bcs:
        if check.bc_tags is not None and bc.tag not in check.bc_tags:
            continue
        if isinstance(ref, ExactReference):
            pts, normals = dom.sample_boundary(128, bc.tag, rng=np.random.default_rng(2))
            got = _exact_boundary_values(problem, pts, normals, bc)
        else:
            pts, got = _grid_boundary_values(problem, _as_grid(problem, ref, check.resolution), bc)
        want = bc.value(torch.as_tensor(pts, dtype=torch.float64))
        late = np.ones(len(pts), dtype=bool)
        if problem.time_dependent:
            late = pts[:, -1] >= dom.time.t0 + check.bc_t_min
        for f in bc.fields:
            diff = np.abs(np.asarray(got[f]) - want[f].detach().numpy())
            dev[(bc.tag, f)] = float(diff[late].max())
    assert max(dev.values()) <= check.bc, (dev, check.reason)


# -- helpers: grids and engines -------------------------------------------------------------------
@dataclass
class Grid:
    axes: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    periodic: tuple[bool, ...]


def _uniform(axes: dict[str, np.ndarray]) -> bool:
    return all(np.allclose(np.diff(a), np.diff(a).mean(), rtol=1e-9, atol=0) for a in axes.values())


def _as_grid(problem, ref, resolution=None) -> Grid:
    if isinstance(ref, GridReference) and resolution is None and _uniform(ref.axes):
        return Grid(ref.axes, ref.values, ref.periodic)
    g = problem.evaluation_grid(resolution)
    vals = ref(g.points())
    return Grid(
        g.axes, {k: v.reshape(g.shape) for k, v in vals.items()}, tuple(problem.domain().periodic)
    )


def _mesh(grid: Grid) -> np.ndarray:
    return np.stack(np.meshgrid(*grid.axes.values(), indexing="ij"), axis=-1)


def _library_grid(problem, grid: Grid) -> tuple[LibGrid, np.ndarray | None]:
    """The library's Grid whose nodes are the reference's spatial axes, and the times."""
    lo, hi, n, per = [], [], [], []
    for i, (c, a) in enumerate(grid.axes.items()):
        if c == "t":
            continue
        h = float(np.diff(a).mean())
        assert np.allclose(np.diff(a), h, rtol=1e-9, atol=0), f"axis {c} is not uniform"
        count = a.size if grid.periodic[i] else a.size - 1
        lo.append(a[0])
        hi.append(a[0] + count * h)
        n.append(count)
        per.append(grid.periodic[i])
    space = [c for c in grid.axes if c != "t"]
    return LibGrid(lo, hi, n, per, space), grid.axes.get("t")


def grid_fields(problem, grid: Grid, target=None):
    """The library's grid engine (:func:`pdekit.problems.grid.grid_fields`) on the reference's
    node data, one-sided at bounded ends (the reference need not be checked against its own
    boundary data here), the time axis as a 4th-order central stencil; spectral in space when
    every spatial axis is periodic. Results are returned with axes in the problem's coordinate
    order (time last)."""
    lib, times = _library_grid(problem, grid)
    timed = times is not None
    values = {
        k: torch.as_tensor(np.moveaxis(v, -1, 0) if timed else v, dtype=torch.float64)[None]
        for k, v in grid.values.items()
    }
    spectral = all(lib.periodic) and target is None
    return _Reordered(
        lib_grid_fields(
            problem,
            values,
            lib,
            times=times,
            engine="spectral" if spectral else "stencil",
            order=STENCIL_ORDER,
            locations="node",
            target=target,
            boundary=False,
        ),
        timed,
    )


class _Reordered:
    """A grid Fields whose results are put back in the reference's axis order (time last)."""

    def __init__(self, f, timed: bool):
        self.f, self.timed = f, timed
        self.coordinates = f.coordinates

    def _out(self, v):
        v = v[0] if v.ndim == len(self.f.shape) + 1 else v
        return v.movedim(0, -1) if self.timed else v

    @property
    def shape(self):
        s = tuple(self.f.shape)
        return s[1:] + s[:1] if self.timed else s

    def __getitem__(self, k):
        return self._out(self.f[k])

    def d(self, k, spec):
        return self._out(self.f.d(k, spec))

    def laplacian(self, k):
        return self._out(self.f.laplacian(k))

    def coord(self, name):
        return self._out(self.f.coord(name))


def _keep(problem, check: Check, pts: np.ndarray) -> np.ndarray:
    keep = np.ones(len(pts), dtype=bool)
    if problem.time_dependent and check.t_min:
        keep &= pts[:, -1] >= problem.domain().time.t0 + check.t_min - 1e-12
    if check.exclude is not None:
        keep &= ~check.exclude(pts)
    return keep


def _wall_mask(problem, grid: Grid, cells: int) -> np.ndarray:
    keep = np.ones(tuple(a.size for a in grid.axes.values()), dtype=bool)
    for i, (c, a) in enumerate(grid.axes.items()):
        if c == "t" or grid.periodic[i] or cells == 0:
            continue
        idx = np.arange(a.size)
        ok = (idx >= cells) & (idx <= a.size - 1 - cells)
        shape = [1] * keep.ndim
        shape[i] = a.size
        keep &= ok.reshape(shape)
    return keep


def _robin(bc, pts, u, dn):
    """a u + b du/dn with the BC's coefficients (Dirichlet: a = 1, b = 0; Neumann: 0, 1)."""
    a, b = (c.numpy() for c in bc.coefficients(torch.as_tensor(pts, dtype=torch.float64)))
    return a * u + (b * dn if bc.kind != "dirichlet" else 0.0)


def _exact_boundary_values(problem, pts, normals, bc):
    x = torch.as_tensor(pts, dtype=torch.float64).requires_grad_(bc.kind != "dirichlet")
    vals = problem.exact(x)
    nspace = normals.shape[1]
    out = {}
    for k, v in vals.items():
        dn = 0.0
        if bc.kind != "dirichlet":
            (g,) = torch.autograd.grad(v.sum(), x, allow_unused=True)
            g = torch.zeros_like(x) if g is None else g
            dn = (g[:, :nspace].detach().numpy() * normals).sum(axis=1)
        out[k] = _robin(bc, pts, v.detach().numpy(), dn)
    return out


def _grid_boundary_values(problem, grid: Grid, bc):
    """Boundary data of the reference on the grid's boundary face nodes (a u + b du/dn with the
    BC's coefficients: values, outward normal derivatives or Robin data), leaving out nodes
    shared with a second non-periodic face (corners, where the data of two conditions meet)."""
    dom = problem.domain()
    _, normals = dom.sample_boundary(4, bc.tag, rng=np.random.default_rng(3))
    axis = int(np.argmax(np.abs(normals[0])))
    side = int(np.sign(normals[0][axis]))
    coords = tuple(grid.axes)
    fields = grid_fields(problem, grid, target="node")
    shape = fields.shape
    index = [slice(None)] * len(shape)
    index[axis] = -1 if side > 0 else 0
    keep = np.ones(shape, dtype=bool)
    for i, c in enumerate(coords):
        if i != axis and c != "t" and not grid.periodic[i]:
            sl = [slice(None)] * len(shape)
            sl[i] = [0, -1]
            keep[tuple(sl)] = False
    keep = keep[tuple(index)]
    pts = np.stack([fields.coord(c).numpy()[tuple(index)][keep] for c in coords], axis=1)
    out = {}
    for f in bc.fields:
        u = fields[f].detach().numpy()[tuple(index)][keep]
        dn = 0.0
        if bc.kind != "dirichlet":
            dn = side * fields.d(f, (coords[axis],)).detach().numpy()[tuple(index)][keep]
        out[f] = _robin(bc, pts, u, dn)
    return pts, out
