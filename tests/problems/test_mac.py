"""MAC scenes: the curl of a potential, piece splits, masks from geometry, wall conditions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.geometries.csg import Disk
from pdekit.problems import mac


def test_curl_of_a_potential_is_divergence_free_to_round_off():
    scene = mac.cavity_scene(30)
    a = torch.randn(
        3, *scene.grid.n, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    u, v = mac.velocity_from_potential(a, scene.grid)
    div = mac.divergence(u, v, scene.grid)
    scale = float(torch.maximum(u.abs().max(), v.abs().max())) / float(scene.grid.spacing[0])
    assert float(div.abs().max()) < 1e-13 * scale


def test_curl_puts_u_and_v_on_their_faces():
    """a = x y^2 / 2 + x^2 / 3: u = a_y = x y, v = -a_x = -(y^2/2 + 2x/3); the one-sided node
    differences are exact at the face centres for these (quadratic along the difference)."""
    scene = mac.cavity_scene(14)
    g = scene.grid
    X, Y = np.meshgrid(*g.axes("node").values(), indexing="ij")
    a = torch.as_tensor(X * Y**2 / 2 + X**2 / 3)
    u, v = mac.velocity_from_potential(a, g)
    xu, yu = np.meshgrid(*g.axes("face_x").values(), indexing="ij")
    xv, yv = np.meshgrid(*g.axes("face_y").values(), indexing="ij")
    inner = (slice(0, -1), slice(0, -1))  # the last row/column wraps (solid ring)
    assert np.allclose(u.numpy()[inner], (xu * yu)[inner], atol=1e-12)
    assert np.allclose(v.numpy()[inner], -(yv**2 / 2 + 2 * xv / 3)[inner], atol=1e-12)


@pytest.mark.parametrize("factors", [(1, 1), (2, 2), (4, 2), (2, 2, 2)])
def test_unshuffle_then_shuffle_is_the_identity(factors):
    shape = (2, 3, *(4 * s for s in factors))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    pieces = mac.unshuffle(x, factors)
    assert pieces.shape == (2, math.prod(factors), 3, *(4,) * len(factors))
    assert torch.equal(mac.shuffle(pieces, factors), x)
    # piece (i, j, ...) holds the samples x[..., i::s_1, j::s_2, ...]
    last = tuple(s - 1 for s in factors)
    sl = tuple(slice(i, None, s) for i, s in zip(last, factors))
    assert torch.equal(pieces[:, -1], x[(slice(None), slice(None), *sl)])


def test_unshuffle_matches_pytorch_pixel_unshuffle():
    x = torch.randn(2, 3, 8, 12, generator=torch.Generator().manual_seed(2))
    ours = mac.unshuffle(x, (2, 2))  # (B, pieces, C, h, w)
    theirs = torch.nn.functional.pixel_unshuffle(x, 2).reshape(2, 3, 4, 4, 6)  # (B, C, pieces..)
    assert torch.equal(ours, theirs.transpose(1, 2))


def test_unshuffle_refuses_indivisible_fields():
    with pytest.raises(ParameterError, match="do not split"):
        mac.unshuffle(torch.zeros(1, 1, 6, 8), (4, 4))


def test_a_rasterised_disk_has_its_area_to_first_order():
    """Cell counting over disks at 8 random centres: |area - pi r^2| <= perimeter x h at every
    grid (measured: at most 0.15 h), and the mean error falls as the grid is refined (measured
    2.0e-3 at 16 cells, 8.8e-5 at 128)."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.35, 0.65, (8, 2))
    means = []
    for n in (16, 32, 64, 128):
        grid = mac.enclosed_grid((0.0, 0.0), (1.0, 1.0), n)
        h = float(grid.spacing[0])
        errs = [abs(rasterise_area(Disk(tuple(c), 0.2), grid) - math.pi * 0.2**2) for c in centres]
        assert max(errs) <= 2 * math.pi * 0.2 * h, (n, max(errs) / h)
        means.append(float(np.mean(errs)))
    assert means[-1] < means[0] / 8, means


def rasterise_area(geometry, grid) -> float:
    return float(mac.rasterise(geometry, grid).sum()) * grid.cell_volume()


def test_cavity_scene_roles_and_targets():
    n = 6
    scene = mac.cavity_scene(n, lid=2.0)
    roles = scene.roles
    assert int((roles["u"] == mac.FLUID).sum()) == (n - 1) * n  # interior x-faces
    assert int((roles["v"] == mac.FLUID).sum()) == n * (n - 1)
    assert int((roles["u"] == mac.WALL).sum()) == 2 * n  # x = 0 and x = 1
    assert int((roles["u"] == mac.GHOST).sum()) == 2 * (n - 1)  # below the floor, above the lid
    lid_ghosts = (roles["u"] == mac.GHOST) & (torch.arange(n + 3) == n + 1)[None, :]
    assert torch.all(scene.targets["u"][lid_ghosts] == 2.0)
    assert torch.all(scene.targets["v"] == 0)


def test_impose_satisfies_the_conditions_and_ghosts_mirror_linear_profiles():
    """A linear profile u = c (y - y_wall) + U_wall through the wall: the ghost condition (the
    mean of the ghost and its fluid neighbour equals the wall velocity) holds exactly for it."""
    n = 8
    scene = mac.cavity_scene(n, lid=1.5)
    g = scene.grid
    _, yu = np.meshgrid(*g.axes("face_x").values(), indexing="ij")
    u = torch.as_tensor(1.5 + 3.0 * (yu - 1.0))
    c = scene.conditions(u, torch.zeros_like(u))
    lid_ghosts = (scene.roles["u"] == mac.GHOST) & torch.as_tensor(yu > 1.0)
    assert float(c["u"][lid_ghosts].abs().max()) < 1e-12
    rnd = torch.randn(2, *g.n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    uu, vv = scene.impose(rnd[0], rnd[1])
    res = scene.conditions(uu, vv)
    assert max(float(r.abs().max()) for r in res.values()) < 1e-12
    fluid = scene.roles["u"] == mac.FLUID
    assert torch.equal(uu[fluid], rnd[0][fluid])  # fluid samples untouched


def test_to_nodes_is_exact_for_linear_fields():
    scene = mac.cavity_scene(10)
    g = scene.grid

    def on(loc, f):
        X, Y = np.meshgrid(*g.axes(loc).values(), indexing="ij")
        return f(X, Y)

    u = on("face_x", lambda x, y: 2 * x - y)
    v = on("face_y", lambda x, y: x + 3 * y)
    p = on("center", lambda x, y: x - 2 * y)
    nodes = mac.to_nodes(scene, u, v, p)
    sx, sy = mac.box_nodes(g, (0.0, 0.0), (1.0, 1.0))
    X, Y = np.meshgrid(g.axis(0, "node")[sx], g.axis(1, "node")[sy], indexing="ij")
    assert X[0, 0] == pytest.approx(0.0) and X[-1, 0] == pytest.approx(1.0)
    assert np.allclose(nodes["u"][sx, sy][1:-1, 1:-1], (2 * X - Y)[1:-1, 1:-1])
    assert np.allclose(nodes["v"][sx, sy][1:-1, 1:-1], (X + 3 * Y)[1:-1, 1:-1])
    assert np.allclose(nodes["p"][sx, sy][1:-1, 1:-1], (X - 2 * Y)[1:-1, 1:-1])


def test_bad_scenes_are_refused():
    grid = mac.enclosed_grid((0.0, 0.0), (1.0, 1.0), 4)
    solid = torch.zeros(grid.n, dtype=torch.bool)
    with pytest.raises(ParameterError, match="ring"):
        mac.MacScene(grid, solid, torch.zeros(2, *grid.n))
    with pytest.raises(ParameterError, match="no fluid"):
        mac.MacScene(grid, ~solid, torch.zeros(2, *grid.n))
    with pytest.raises(ParameterError, match="shape"):
        mac.MacScene(grid, ~solid, torch.zeros(2, 3, 3))


# -- outflow and channels ------------------------------------------------------------------------
def small_channel(obstacles=(), pad_to=4, profile=None):
    """A 2 x 0.5 channel on 6 cells across (h = 1/12): 24 x 6 fluid cells, parabolic inflow."""
    return mac.channel_scene(
        2.0, 0.5, 6, profile or (lambda y: 6.0 * y * (0.5 - y) / 0.25), obstacles, pad_to=pad_to
    )


def test_channel_scene_layout_and_padding():
    """Layout dimensions are multiples of pad_to: extra fluid columns at the outlet end, extra
    solid rows on top; one outflow column and one solid column after it (where a curl wraps);
    square cells."""
    scene = small_channel(pad_to=4)
    nx, ny = scene.grid.n
    assert (nx, ny) == (28, 12)  # 24 + 3 -> 28 (one extra fluid column); 6 + 3 -> 12 rows
    hx, hy = scene.grid.spacing
    assert hx == pytest.approx(hy) == pytest.approx(0.5 / 6)
    fluid = scene.fluid.numpy()
    assert fluid[1:-2, 1:7].all() and fluid.sum() == 25 * 6
    assert scene.outflow.numpy()[-2, 1:7].all() and int(scene.outflow.sum()) == 6
    assert torch.all(scene.wall_velocity[0, 0, 1:7] > 0)  # the inflow column
    big = mac.channel_scene(2.2, 0.41, 41, lambda y: 0 * y, pad_to=16)
    assert big.grid.n == (224, 48)
    assert np.allclose(big.grid.lo, -0.01) and np.allclose(big.grid.spacing, 0.01)
    disk = small_channel([Disk((0.5, 0.25), 0.1)])
    assert int(disk.solid.sum()) - int(scene.solid.sum()) == int(
        mac.rasterise(Disk((0.5, 0.25), 0.1), disk.grid).sum()
    )


def test_outflow_roles_and_targets():
    scene = small_channel()
    roles, targets = scene.roles, scene.targets
    out_u = roles["u"] == mac.OUTFLOW
    out_v = roles["v"] == mac.OUTFLOW
    assert out_u.numpy()[-2, 1:7].all() and int(out_u.sum()) == 6  # the outlet faces
    assert out_v.numpy()[-2, 2:7].all() and int(out_v.sum()) == 5  # between outflow cells
    assert torch.equal(scene.outlet["u"], out_u) and not scene.outlet["v"].any()
    # the walls' corners at the outlet: u ghosts mirroring the outflow samples
    assert roles["u"][-2, 0] == mac.GHOST and roles["u"][-2, 7] == mac.GHOST
    # the inlet stays a wall face; the faces after the outlet carry no condition (FREE)
    assert (roles["u"][1, 1:7] == mac.WALL).all() and (roles["u"][-1, 1:7] == mac.FREE).all()
    assert (roles["u"][0, 1:7] == mac.INSIDE).all()
    assert torch.all(targets["u"][out_u] == 0) and torch.all(targets["v"][out_v] == 0)
    plain = mac.cavity_scene(6)
    assert not plain.has_outflow and plain.outflow.shape == plain.grid.n


def test_outflow_conditions_are_zero_gradient_batched_and_differentiable():
    """Residual at an outflow sample = value - its upstream neighbour (x - h); roles and
    targets broadcast against a batch; gradients flow to both samples."""
    scene = small_channel()
    gen = torch.Generator().manual_seed(4)
    u = torch.randn(3, *scene.grid.n, dtype=torch.float64, generator=gen, requires_grad=True)
    v = torch.randn(3, *scene.grid.n, dtype=torch.float64, generator=gen)
    roles = {k: r[None] for k, r in scene.roles.items()}
    targets = {k: t[None] for k, t in scene.targets.items()}
    res = mac.boundary_residuals(roles, targets, u, v)
    out_u = scene.roles["u"] == mac.OUTFLOW
    out_v = scene.roles["v"] == mac.OUTFLOW
    want_u = (u - torch.roll(u, 1, dims=1))[:, out_u]
    want_v = (v - torch.roll(v, 1, dims=1))[:, out_v]
    assert torch.allclose(res["u"][:, out_u], want_u) and torch.allclose(res["v"][:, out_v], want_v)
    assert torch.equal(res["u"], scene.conditions(u, v)["u"])
    (res["u"][:, -2, 3] ** 2).sum().backward()
    g = u.grad.abs().sum(0)
    assert g[-2, 3] > 0 and g[-3, 3] > 0 and int((g > 0).sum()) == 2


def test_impose_with_outflow_and_ghosts_beside_it():
    scene = small_channel([Disk((0.5, 0.25), 0.1)])
    gen = torch.Generator().manual_seed(5)
    rnd = torch.randn(2, *scene.grid.n, dtype=torch.float64, generator=gen)
    uu, vv = scene.impose(rnd[0], rnd[1])
    res = scene.conditions(uu, vv)
    assert max(float(r.abs().max()) for r in res.values()) < 1e-12
    assert torch.equal(uu[-2, 1:7], uu[-3, 1:7]) and torch.equal(vv[-2, 2:7], vv[-3, 2:7])
    assert float(uu[-2, 0] + uu[-2, 1]) == pytest.approx(0.0, abs=1e-15)  # corner ghost
    fluid = scene.roles["u"] == mac.FLUID
    assert torch.equal(uu[fluid], rnd[0][fluid])
    # outlet=False keeps the outlet faces and imposes the rest (the corner ghosts) around them
    kept = uu.clone()
    kept[-2, 1:7] += 0.25
    ku, kv = scene.impose(kept, vv, outlet=False)
    assert torch.equal(ku[-2, 1:7], kept[-2, 1:7])
    assert float(ku[-2, 0] + ku[-2, 1]) == pytest.approx(0.0, abs=1e-15)


def test_outflow_chains_of_several_columns():
    """Two outflow columns: the second copies the first, which copies the fluid."""
    scene = small_channel()
    outflow = scene.outflow.clone()
    outflow[-3, 1:7] = True
    solid = scene.solid.clone()
    solid[-3, 1:7] = True
    two = mac.MacScene(scene.grid, solid, scene.wall_velocity, outflow=outflow)
    assert int((two.roles["u"] == mac.OUTFLOW).sum()) == 12 and two._outflow_depth == 2
    gen = torch.Generator().manual_seed(6)
    rnd = torch.randn(2, *two.grid.n, dtype=torch.float64, generator=gen)
    uu, vv = two.impose(rnd[0], rnd[1])
    assert torch.equal(uu[-2, 1:7], rnd[0][-4, 1:7]) and torch.equal(vv[-2, 3], rnd[1][-4, 3])


def test_bad_outflow_is_refused():
    scene = small_channel()
    with pytest.raises(ParameterError, match="outflow cells must be solid"):
        mac.MacScene(scene.grid, scene.solid, scene.wall_velocity, outflow=~scene.solid)
    low = torch.zeros(scene.grid.n, dtype=torch.bool)
    low[0, 1:7] = True  # the inlet column: nothing upstream of it along +x
    with pytest.raises(ParameterError, match="high-x end only"):
        mac.MacScene(scene.grid, scene.solid, scene.wall_velocity, outflow=low)
    with pytest.raises(ParameterError, match="shape"):
        mac.MacScene(scene.grid, scene.solid, scene.wall_velocity, outflow=low[:3])


def _curl_misfit(scene) -> float:
    """max |condition residual| over the samples with a condition (neither FLUID nor FREE) of
    the potential a (one value per node of the periodic layout) fitted by least squares to the
    conditions of a curl-based learner (walls without the mirror): 0 when a curl can meet them
    all."""
    nx, ny = scene.grid.n
    h = float(scene.grid.spacing[0])

    def curl_row(comp, i, j):
        a = np.zeros((nx, ny))
        if comp == "u":  # u = (a[i, j + 1] - a[i, j]) / h
            a[i, (j + 1) % ny] += 1 / h
            a[i, j] -= 1 / h
        else:  # v = -(a[i + 1, j] - a[i, j]) / h
            a[(i + 1) % nx, j] -= 1 / h
            a[i, j] += 1 / h
        return a.ravel()

    rows, values = [], []
    for comp in ("u", "v"):
        role, target = scene.roles[comp].numpy(), scene.targets[comp].numpy()
        for i, j in zip(*np.nonzero((role != mac.FLUID) & (role != mac.FREE))):
            row = curl_row(comp, i, j)
            if role[i, j] == mac.OUTFLOW:  # value - upstream neighbour = 0
                row = row - curl_row(comp, (i - 1) % nx, j)
            rows.append(row)
            values.append(float(target[i, j]))
    matrix, values = np.array(rows), np.array(values)
    pot, *_ = np.linalg.lstsq(matrix, values, rcond=None)
    return float(np.abs(matrix @ pot - values).max())


def test_a_curl_can_meet_the_conditions_of_its_scenes():
    """The conditions a curl-based learner penalises (first-order walls, FREE samples where the
    curl wraps and past an outlet) are met exactly by some potential (least squares: round-off)
    for the cavity and for channels with and without an obstacle. Without the second solid cell
    above the box the lid's flux has nowhere to return."""
    assert _curl_misfit(mac.cavity_scene(8)) < 1e-10
    assert _curl_misfit(small_channel()) < 1e-10
    assert _curl_misfit(small_channel([Disk((0.5, 0.25), 0.1)])) < 1e-10
    single = mac.cavity_scene(8, ring=(1, 1))
    assert _curl_misfit(single) > 0.1
    with pytest.raises(ParameterError, match="wraps"):
        single.check_curl_layout()
    mac.cavity_scene(8).check_curl_layout()
    small_channel().check_curl_layout()


def test_inflow_potential_carries_the_inflow_through_the_channel():
    """The inflow start state: in a channel without obstacles its curl meets every boundary
    condition (first-order walls, outlet) to round-off, is divergence-free, carries the inflow
    profile unchanged through every column (v = 0) and so the inflow's flux; with a disk, the
    only conditions it breaks are the disk's (the fluid passes through it); a closed box (the
    cavity, whose lid is not an inlet face) starts at rest. A batch of scenes gives each its
    own potential, and gradients reach the inflow."""
    scene = small_channel()
    a = scene.inflow_potential()
    u, v = mac.velocity_from_potential(a, scene.grid)
    assert all(float(r.abs().max()) < 1e-12 for r in scene.conditions(u, v, False).values())
    assert float(mac.divergence(u, v, scene.grid)[scene.fluid].abs().max()) < 1e-12
    profile = scene.targets["u"][1, 1:7]
    assert float(profile.min()) > 0
    assert torch.allclose(u[1:-2, 1:7], profile.expand(u.shape[0] - 3, 6), atol=1e-12)
    assert float(v.abs().max()) == 0.0
    hy = float(scene.grid.spacing[1])
    assert float(a[5, 7] - a[5, 1]) == pytest.approx(hy * float(profile.sum()), rel=1e-12)

    disk = small_channel([Disk((0.5, 0.25), 0.1)])
    u, v = mac.velocity_from_potential(disk.inflow_potential(), disk.grid)
    broken = disk.conditions(u, v, False)["u"].abs() > 1e-12
    inside = mac.rasterise(Disk((0.5, 0.25), 0.1), disk.grid)
    near = torch.as_tensor(inside) | mac._shift(torch.as_tensor(inside), 1, 0)
    assert bool(broken.any()) and not bool((broken & ~near).any())

    assert float(mac.cavity_scene(8).inflow_potential().abs().max()) == 0.0

    theta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    targets = torch.stack([scene.targets["u"], theta * scene.targets["u"]])
    both = mac.inflow_potential(targets, scene.roles["u"].expand(2, -1, -1), scene.grid)
    assert torch.allclose(both[1], 2.0 * both[0])
    both[1].sum().backward()
    assert float(theta.grad) == pytest.approx(float(both[0].detach().sum()), rel=1e-12)
