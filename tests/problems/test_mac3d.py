"""3D MAC scenes (:mod:`pdekit.problems.mac3d`): the curl of an edge potential (divergence-free
to round-off, each component on its faces: against closed-form polynomial curls), roles and
targets of ducts with and without a sphere (against hand counts of the layout), the wall
conditions (exact for linear profiles through a wall), rasterised volumes (against 4/3 pi r^3),
node values (exact for linear fields), the duct's Poiseuille flow as a curl meeting every
first-order wall condition (what a curl-based learner needs), and refused scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.geometries.csg import Ball
from pdekit.geometries.grid import Grid
from pdekit.problems import mac3d
from pdekit.problems.mac import FLUID, FREE, GHOST, INSIDE, WALL, rasterise
from pdekit.problems.references.projection3d import duct_poiseuille

SPHERE = Ball((0.5, 0.5, 0.5), 0.25)


def mesh(grid: Grid, *locations: str):
    """Coordinate arrays (x, y, z) of samples at a per-axis location ('center' or 'node')."""
    axes = [grid.axis(k, loc) for k, loc in enumerate(locations)]
    return np.meshgrid(*axes, indexing="ij")


def edges(grid: Grid):
    """Coordinates of a_x, a_y, a_z (module docstring of mac3d: a_x on x-edges, ...)."""
    return (
        mesh(grid, "center", "node", "node"),
        mesh(grid, "node", "center", "node"),
        mesh(grid, "node", "node", "center"),
    )


# -- the curl --------------------------------------------------------------------------------------
def test_curl_of_a_random_potential_is_divergence_free_to_round_off():
    """Random float64 edge potentials on a duct layout, one and a batch of 2: the discrete
    divergence (forward differences) of the curl is 0 up to round-off (differences commute;
    measured 2.4e-16 x max|u| / h)."""
    scene = mac3d.duct_scene(1.0, 1.0, 6, 1.0)
    g = scene.grid
    gen = torch.Generator().manual_seed(0)
    for shape in ((3, *g.n), (2, 3, *g.n)):
        a = torch.randn(*shape, dtype=torch.float64, generator=gen)
        u, v, w = mac3d.velocity_from_potential(a, g)
        assert u.shape == v.shape == w.shape == (*shape[:-4], *g.n)
        div = mac3d.divergence(u, v, w, g)
        scale = max(float(f.abs().max()) for f in (u, v, w)) / float(min(g.spacing))
        assert float(div.abs().max()) < 1e-14 * scale
    # a batch member is the curl of its own potential
    single = mac3d.velocity_from_potential(a[1], g)
    assert all(torch.equal(b[1], s) for b, s in zip((u, v, w), single))


def test_curl_puts_each_component_on_its_faces():
    """a = (y z^2, x^2 z + x z^2, x y^2 + x^2): curl a = (2xy - x^2 - 2xz, 2yz - y^2 - 2x, 2xz).
    Each component is at most quadratic along the axis it is differenced on, so the edge
    differences are exact at the face centres (face_x, face_y, face_z) except where they wrap
    around the layout (the last index along a differenced axis)."""
    scene = mac3d.duct_scene(1.0, 1.0, 5, 1.0)
    g = scene.grid
    (x1, y1, z1), (x2, y2, z2), (x3, y3, z3) = edges(g)
    a = torch.as_tensor(np.stack([y1 * z1**2, x2**2 * z2 + x2 * z2**2, x3 * y3**2 + x3**2]))
    u, v, w = (f.numpy() for f in mac3d.velocity_from_potential(a, g))
    x, y, z = np.meshgrid(*g.axes("face_x").values(), indexing="ij")
    exact_u = 2 * x * y - x**2 - 2 * x * z
    assert np.allclose(u[:, :-1, :-1], exact_u[:, :-1, :-1], atol=1e-11)
    # the wrapped samples differ (the polynomials are not periodic): the exclusion is needed
    assert not np.allclose(u[:, -1, :-1], exact_u[:, -1, :-1], atol=1e-3)
    x, y, z = np.meshgrid(*g.axes("face_y").values(), indexing="ij")
    assert np.allclose(v[:-1, :, :-1], (2 * y * z - y**2 - 2 * x)[:-1, :, :-1], atol=1e-11)
    x, y, z = np.meshgrid(*g.axes("face_z").values(), indexing="ij")
    assert np.allclose(w[:-1, :-1, :], (2 * x * z)[:-1, :-1, :], atol=1e-11)


# -- roles, targets, conditions --------------------------------------------------------------------
def count(role, kind) -> int:
    return int((role == kind).sum())


def test_duct_roles_targets_and_curl_layout():
    """A 0.5 x 1 x 1 duct, 4 cells across (h = 1/4): layout 2 x 7 x 7 (one solid cell below, two
    above the fluid on y and z). Hand counts per x index (nx = 2): u FLUID 4 x 4, GHOST the 4 x 4
    samples below/above the fluid across y or z, FREE 7^2 - 6^2 = 13 (last index along y or z,
    where the curl wraps), no WALL (x periodic); v FLUID 4 x 3, WALL 2 x 4 (floor and ceiling),
    GHOST 2 x 3 (across z), FREE 7 (last index along z only: x is periodic). All targets 0."""
    scene = mac3d.duct_scene(0.5, 1.0, 4, 2.0)
    assert scene.grid.n == (2, 7, 7) and np.allclose(scene.grid.spacing, 0.25)
    assert np.allclose(scene.grid.lo, (0.0, -0.25, -0.25))
    assert scene.periodic == (True, False, False) and scene.body_force == (2.0, 0.0, 0.0)
    assert int(scene.fluid.sum()) == 2 * 16 and bool(scene.fluid[:, 1:5, 1:5].all())
    r = scene.roles
    nx = 2
    assert (count(r["u"], FLUID), count(r["u"], WALL)) == (16 * nx, 0)
    assert (count(r["u"], GHOST), count(r["u"], FREE)) == (16 * nx, 13 * nx)
    assert count(r["u"], INSIDE) == (49 - 16 - 16 - 13) * nx  # the four corners of the ring
    for comp, across in (("v", 1), ("w", 2)):
        role = r[comp]
        assert (count(role, FLUID), count(role, WALL)) == (12 * nx, 8 * nx)
        assert (count(role, GHOST), count(role, FREE)) == (6 * nx, 7 * nx)
        walls = (role == WALL).numpy().any(axis=tuple(k for k in range(3) if k != across))
        assert np.flatnonzero(walls).tolist() == [1, 5]  # the faces at y (z) = 0 and 1
    free = (r["u"] == FREE).numpy()
    assert free[:, -1, :].all() and free[:, :, -1].all()
    assert all(float(t.abs().max()) == 0.0 for t in scene.targets.values())
    scene.check_curl_layout()


def test_duct_with_a_sphere_roles():
    """Sphere of radius 1/4 at the centre of a unit duct, 8 cells across (h = 1/8): the solid
    cells added are the rasterised ball's; every x-line through the (convex) ball crosses it in
    one run of m cells, which removes m + 1 FLUID u samples and adds 2 WALL faces; the wrapped
    samples stay FREE (the sphere is inside the box) and the curl layout is accepted."""
    plain = mac3d.duct_scene(1.0, 1.0, 8, 1.0)
    scene = mac3d.duct_scene(1.0, 1.0, 8, 1.0, [SPHERE])
    ball = rasterise(SPHERE, scene.grid)
    cells, columns = int(ball.sum()), int(ball.any(axis=0).sum())
    assert cells > 0 and not ball[0].any() and not ball[-1].any()  # not cut by the period
    assert int(scene.solid.sum()) - int(plain.solid.sum()) == cells
    r, r0 = scene.roles, plain.roles
    assert count(r["u"], FLUID) == count(r0["u"], FLUID) - cells - columns
    assert count(r["u"], WALL) == 2 * columns
    for comp in mac3d.COMPONENTS:
        assert torch.equal(r[comp] == FREE, r0[comp] == FREE)
    # a ghost inside the ball beside the fluid, mirrored across y or z
    assert count(r["u"], GHOST) > count(r0["u"], GHOST)
    scene.check_curl_layout()


def test_a_single_solid_cell_above_the_box_is_refused_by_the_curl_layout():
    """With one solid cell on each side of y and z, the last index along y holds the u ghosts
    above the fluid (not FREE): a curl cannot meet the ceiling's and floor's conditions there."""
    h, n = 0.25, 4
    grid = Grid((0.0, -h, -h), (2 * h, 1.0 + h, 1.0 + h), (2, n + 2, n + 2), periodic=True)
    solid = torch.ones(grid.n, dtype=torch.bool)
    solid[:, 1:-1, 1:-1] = False
    scene = mac3d.MacScene3d(grid, solid, torch.zeros(3, *grid.n), (True, False, False))
    assert bool((scene.roles["u"][:, -1, 1:-1] == GHOST).all())
    with pytest.raises(ParameterError, match="wraps"):
        scene.check_curl_layout()


def test_targets_take_the_solid_cells_velocities():
    """The ceiling cells' first row (y in (1, 1 + h)) moving at (0.25, 0.5, 0), the floor cells
    (y < 0) at (0, -0.5, 0): a v wall face takes its solid cell's v (0.5 on the ceiling's
    faces, -0.5 on the floor's); a v sample between two solid cells the mean of theirs (0.25
    between the moving ceiling row and the one at rest above it, -0.25 between the top row,
    at rest, and the floor, where the layout wraps); the u ghosts above the fluid the ceiling's
    u; FLUID samples 0."""
    scene = mac3d.duct_scene(0.5, 1.0, 4, 0.0)
    wall = torch.zeros(3, *scene.grid.n, dtype=torch.float64)
    wall[0, :, 5, 1:5] = 0.25
    wall[1, :, 5, 1:5] = 0.5
    wall[1, :, 0, 1:5] = -0.5
    moving = mac3d.MacScene3d(scene.grid, scene.solid, wall, scene.periodic)
    tv, tu, rv = moving.targets["v"], moving.targets["u"], moving.roles["v"]
    assert bool((rv[:, 5, 1:5] == WALL).all()) and bool((tv[:, 5, 1:5] == 0.5).all())
    assert bool((rv[:, 1, 1:5] == WALL).all()) and bool((tv[:, 1, 1:5] == -0.5).all())
    assert bool((tv[:, 6, 1:5] == 0.25).all())  # between two solid cells (INSIDE)
    assert bool((tv[:, 0, 1:5] == -0.25).all())
    assert bool((moving.roles["u"][:, 5, 1:5] == GHOST).all())
    assert bool((tu[:, 5, 1:5] == 0.25).all())
    for comp in mac3d.COMPONENTS:
        assert float(moving.targets[comp][moving.roles[comp] == FLUID].abs().max()) == 0.0


def couette_duct(lid: float):
    """The 4-across duct of the role test with its ceiling cells (y > 1) moving at u = lid."""
    scene = mac3d.duct_scene(0.5, 1.0, 4, 0.0)
    wall = torch.zeros(3, *scene.grid.n, dtype=torch.float64)
    wall[0, :, 5:, :] = lid
    return mac3d.MacScene3d(scene.grid, scene.solid, wall, scene.periodic, (0.0, 0.0, 0.0))


def test_impose_satisfies_the_conditions_and_ghosts_mirror_linear_profiles():
    """A linear profile u = U + c (y - 1) through the moving ceiling y = 1 meets the ghost
    condition (the mean of ghost and fluid neighbour is the wall velocity) exactly. After
    impose, u = c y in the fluid puts the mirrored floor ghosts on the same line (its zero at
    the wall y = 0), and v = c z the v ghosts below z = 0 on theirs. impose leaves FLUID and
    FREE samples alone, sets INSIDE ones to their targets and makes every condition vanish,
    also for a batch."""
    lid, c = 1.5, 3.0
    scene = couette_duct(lid)
    g = scene.grid
    _, yu, zu = np.meshgrid(*g.axes("face_x").values(), indexing="ij")
    u = torch.as_tensor(lid + c * (yu - 1.0))
    zero = torch.zeros_like(u)
    res = scene.conditions((u, zero, zero))["u"]
    lid_ghosts = (scene.roles["u"] == GHOST) & torch.as_tensor(yu > 1.0)
    assert int(lid_ghosts.sum()) == 2 * 4 and torch.all(scene.targets["u"][lid_ghosts] == lid)
    assert float(res[lid_ghosts].abs().max()) < 1e-12
    # mirrored ghosts put a linear profile's zero at the wall
    plain = mac3d.duct_scene(0.5, 1.0, 4, 1.0)
    fluid_u = plain.roles["u"] == FLUID
    uu, vv, ww = plain.impose((torch.as_tensor(c * yu) * fluid_u, zero, zero))
    floor = (plain.roles["u"] == GHOST) & torch.as_tensor(yu < 0)
    assert int(floor.sum()) == 2 * 4
    assert torch.allclose(uu[floor], torch.as_tensor(c * yu)[floor], rtol=0, atol=1e-14)
    _, _, zv = mesh(g, "center", "node", "center")
    fluid_v = plain.roles["v"] == FLUID
    _, vv, _ = plain.impose((zero, torch.as_tensor(c * zv) * fluid_v, zero))
    low = (plain.roles["v"] == GHOST) & torch.as_tensor(zv < 0)
    assert int(low.sum()) == 2 * 3
    assert torch.allclose(vv[low], torch.as_tensor(c * zv)[low], rtol=0, atol=1e-14)
    # random states, a batch of two
    rnd = torch.randn(3, 2, *g.n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    fixed = scene.impose(tuple(rnd))
    res = scene.conditions(fixed)
    assert max(float(r.abs().max()) for r in res.values()) < 1e-12
    for comp, before, after in zip(mac3d.COMPONENTS, rnd, fixed):
        fluid = scene.roles[comp] == FLUID
        free = scene.roles[comp] == FREE
        assert torch.equal(after[:, fluid], before[:, fluid])  # fluid samples untouched
        assert torch.equal(after[:, free], before[:, free])  # no condition there
        inside = scene.roles[comp] == INSIDE
        want = scene.targets[comp][inside].expand(2, -1)
        assert torch.allclose(after[:, inside], want, rtol=0, atol=1e-14)


def test_boundary_residuals_without_the_mirror_are_value_minus_target():
    """mirror=False (Wandel et al.'s wall): the residual at every sample with a condition is
    value - target, ghosts included; 0 at FLUID and FREE samples."""
    scene = couette_duct(2.0)
    gen = torch.Generator().manual_seed(5)
    vel = tuple(torch.randn(*scene.grid.n, dtype=torch.float64, generator=gen) for _ in range(3))
    res = scene.conditions(vel, mirror=False)
    for comp, value in zip(mac3d.COMPONENTS, vel):
        role = scene.roles[comp]
        cond = (role != FLUID) & (role != FREE)
        want = torch.where(cond, value - scene.targets[comp], torch.zeros_like(value))
        assert torch.equal(res[comp], want)


# -- geometry -------------------------------------------------------------------------------------
def test_a_rasterised_ball_has_its_volume_to_first_order():
    """Cell counting over balls of radius 0.3 at 6 random centres on [0, 1]^3: |volume - 4/3 pi
    r^3| <= 0.1 surface x h at every resolution (measured at most 0.040 surface x h, at 8
    cells), and the mean error falls as the grid is refined (measured 2.5e-3, 2.6e-4, 1.8e-4,
    2.1e-5 on 8, 16, 32, 64 cells: 2.2 % to 0.018 % of the volume; cancellations make it
    faster than first order on average)."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.35, 0.65, (6, 3))
    r = 0.3
    exact, surface = 4 / 3 * math.pi * r**3, 4 * math.pi * r**2
    means = []
    for n in (8, 16, 32, 64):
        grid = Grid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), n, periodic=True)
        h = float(grid.spacing[0])
        errs = [
            abs(float(rasterise(Ball(tuple(c), r), grid).sum()) * h**3 - exact) for c in centres
        ]
        assert max(errs) <= 0.1 * surface * h, (n, max(errs) / (surface * h))
        means.append(float(np.mean(errs)))
    assert means[1] < means[0] and means[-1] < means[0] / 16, means


def test_to_nodes_is_exact_for_linear_fields():
    """Linear u, v, w, p sampled at their MAC positions in a duct with a sphere: at the nodes
    touching no solid cell (away from the period's wrap at i = 0) the node values are the
    fields at the nodes; nodes touching a solid cell (walls at rest) get velocity 0."""
    scene = mac3d.duct_scene(1.0, 1.0, 8, 1.0, [SPHERE])
    g = scene.grid

    def on(loc, f):
        return f(*np.meshgrid(*g.axes(loc).values(), indexing="ij"))

    fields = {
        "u": (on("face_x", lambda x, y, z: 2 * x - y + 3 * z), lambda x, y, z: 2 * x - y + 3 * z),
        "v": (on("face_y", lambda x, y, z: x + 3 * y - z), lambda x, y, z: x + 3 * y - z),
        "w": (on("face_z", lambda x, y, z: 2 * z - x + y), lambda x, y, z: 2 * z - x + y),
        "p": (on("center", lambda x, y, z: x - 2 * y + z), lambda x, y, z: x - 2 * y + z),
    }
    nodes = mac3d.to_nodes(scene, *(f[0] for f in fields.values()))
    X, Y, Z = mesh(g, "node", "node", "node")
    solid = scene.solid.numpy()
    touching = solid.copy()  # the 8 cells around node (i, j, k): i - 1..i, j - 1..j, k - 1..k
    for axis in range(3):
        touching = touching | np.roll(touching, 1, axis)
    clear = ~touching
    clear[0] = False
    assert clear.sum() > 100
    for name, (_, exact) in fields.items():
        assert np.allclose(nodes[name][clear], exact(X, Y, Z)[clear], rtol=0, atol=1e-12), name
    for name in mac3d.COMPONENTS:
        assert np.all(nodes[name][touching] == 0.0)
    # a batch gives each member its own node values
    batch = mac3d.to_nodes(scene, *(np.stack([f[0], -f[0]]) for f in fields.values()))
    assert all(np.allclose(batch[k][1], -nodes[k], atol=1e-14) for k in nodes)


# -- the duct's Poiseuille flow as a curl ----------------------------------------------------------
def test_duct_poiseuille_flow_is_a_curl_meeting_the_first_order_walls():
    """u(y, z) = the duct's Poiseuille series at the FLUID u samples, 0 at every other non-FREE
    sample (walls at rest, Wandel et al.'s wall: mirror=False), v = w = 0. The potential
    a = (0, 0, a_z), a_z[j] = h sum_{j' < j} u[j'] (the flux below node j), has curl
    (d_y a_z, -d_x a_z, 0) = (u, 0, 0) at every sample but the FREE ones at the last y index,
    where the flux returns: every first-order condition holds exactly. With mirrored ghosts the
    same curl breaks the ghost conditions (hence mirror=False for curl-based learners)."""
    scene = mac3d.duct_scene(0.5, 1.0, 8, 1.0)
    g = scene.grid
    h = float(g.spacing[1])
    _, yu, zu = np.meshgrid(*g.axes("face_x").values(), indexing="ij")
    fluid = (scene.roles["u"] == FLUID).numpy()
    u = np.where(fluid, duct_poiseuille(yu, zu, 1.0, 1.0, 0.1), 0.0)
    az = np.concatenate([np.zeros_like(u[:, :1]), h * np.cumsum(u, axis=1)[:, :-1]], axis=1)
    a = torch.as_tensor(np.stack([np.zeros_like(u), np.zeros_like(u), az]))
    cu, cv, cw = mac3d.velocity_from_potential(a, g)
    free = (scene.roles["u"] == FREE).numpy()
    assert np.allclose(cu.numpy()[~free], u[~free], rtol=0, atol=1e-13)
    assert float(cv.abs().max()) == 0.0 and float(cw.abs().max()) == 0.0
    res = scene.conditions((cu, cv, cw), mirror=False)
    assert max(float(r.abs().max()) for r in res.values()) < 1e-13
    assert float(mac3d.divergence(cu, cv, cw, g)[scene.fluid].abs().max()) < 1e-12
    # the flux through the duct returns through the FREE row: a_z spans it
    flux = h * h * u[0].sum()
    assert h * float(a[2, 0, -1, 1:9].sum()) == pytest.approx(flux, rel=1e-12)
    assert float(u.max()) > 0.5  # a real flow (max 0.0737 f side^2 / nu)
    mirrored = scene.conditions((cu, cv, cw), mirror=True)["u"].numpy()
    assert np.allclose(mirrored[:, 0, 1:9], u[:, 1, 1:9] / 2, rtol=0, atol=1e-14)  # floor ghosts
    assert float(u[:, 1, 1:9].min()) > 0.03


# -- refused scenes --------------------------------------------------------------------------------
def test_bad_scenes_are_refused():
    grid = Grid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2, 4, 4), periodic=True)
    fluid = torch.zeros(grid.n, dtype=torch.bool)
    wall = torch.zeros(3, *grid.n)
    with pytest.raises(ParameterError, match="outermost cells along axis 1"):
        mac3d.MacScene3d(grid, fluid, wall, (True, False, True))
    with pytest.raises(ParameterError, match="outermost cells along axis 0"):
        mac3d.MacScene3d(grid, fluid, wall)
    mac3d.MacScene3d(grid, fluid, wall, (True, True, True))  # a fully periodic box is fine
    with pytest.raises(ParameterError, match="no fluid"):
        mac3d.MacScene3d(grid, ~fluid, wall)
    with pytest.raises(ParameterError, match="shape"):
        mac3d.MacScene3d(grid, fluid[:, :3], wall, (True, True, True))
    with pytest.raises(ParameterError, match="shape"):
        mac3d.MacScene3d(grid, fluid, wall[:2], (True, True, True))
    with pytest.raises(ParameterError, match="3D grid"):
        mac3d.MacScene3d(Grid((0, 0), (1, 1), 4, periodic=True), fluid[0], wall[:2, 0])
    with pytest.raises(ParameterError, match="3D grid"):
        mac3d.MacScene3d(Grid((0, 0, 0), (1, 1, 1), (2, 4, 4)), fluid, wall, (True,) * 3)
    with pytest.raises(ParameterError, match="body_force"):
        mac3d.MacScene3d(grid, fluid, wall, (True,) * 3, (math.nan, 0.0, 0.0))
    with pytest.raises(ParameterError, match="periodic"):
        mac3d.MacScene3d(grid, fluid, wall, (True, True))
    with pytest.raises(ParameterError, match="whole number"):
        mac3d.duct_scene(1.1, 1.0, 3, 1.0)  # h = 1/3
    with pytest.raises(ParameterError, match="whole number"):
        mac3d.duct_scene(0.2, 1.0, 4, 1.0)  # less than two cells along the duct
    with pytest.raises(ParameterError, match="pad_to"):
        mac3d.duct_scene(1.0, 1.0, 4, 1.0, pad_to=0)
    with pytest.raises(ParameterError, match="at least 2 cells"):
        mac3d.duct_scene(1.0, 1.0, 1, 1.0)
    with pytest.raises(ParameterError, match="force"):
        mac3d.duct_scene(1.0, 1.0, 4, math.inf)


def test_duct_padding():
    """pad_to rounds the cross-section up by solid cells above the fluid; the length (the
    period) is not padded: 12 cells across + 1 below + 2 above = 15 -> 16 with pad_to = 8 (3
    solid cells above); 13 + 3 = 16 already is a multiple of 8 (the duct_sphere layout)."""
    scene = mac3d.duct_scene(2.0, 1.0, 12, 1.0, pad_to=8)
    assert scene.grid.n == (24, 16, 16)
    assert np.allclose(scene.grid.spacing, 1 / 12)
    assert np.allclose(scene.grid.hi, (2.0, 1 + 3 / 12, 1 + 3 / 12))
    assert int(scene.fluid.sum()) == 24 * 12 * 12 and bool(scene.fluid[:, 1:13, 1:13].all())
    assert not bool(scene.fluid[:, 13:].any()) and not bool(scene.fluid[:, :, 13:].any())
    scene.check_curl_layout()
    sphere = mac3d.duct_scene(32 / 13, 1.0, 13, 1.0, pad_to=8)
    assert sphere.grid.n == (32, 16, 16) and int(sphere.fluid.sum()) == 32 * 13 * 13
