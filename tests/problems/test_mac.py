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
    lid_ghosts = (roles["u"] == mac.GHOST) & (torch.arange(n + 2) == n + 1)[None, :]
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
