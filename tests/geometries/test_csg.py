"""Primitives and constructive solid geometry: exact measures, uniform sampling, outward normals,
tags through set operations, and meshing for output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries import (
    Ball,
    Box,
    Difference,
    Disk,
    Geometry,
    Intersection,
    Interval,
    Polygon,
    Rectangle,
    Union,
)

N = 100_000
CRIT = 0.999  # chi-square critical quantile: a correct sampler fails one fixed seed in 1000


def channel():
    """The DFG channel: [0, 2.2] x [0, 0.41] minus the cylinder of radius 0.05 at (0.2, 0.2)."""
    rect = Rectangle([0, 0], [2.2, 0.41])
    hole = Disk([0.2, 0.2], 0.05, tag="cylinder")
    return (rect - hole).rename({"xmin": "inlet", "xmax": "outlet", "ymin": "wall", "ymax": "wall"})


ARROW = [[0, 0], [1, 0], [1, 1], [0.5, 0.3], [0, 1]]  # non-convex, concave vertex 3
ARROW_TRIANGLES = np.array([[0, 1, 3], [1, 2, 3], [0, 3, 4]])  # an exact triangulation
LENS = 2 * math.pi / 3 - math.sqrt(3) / 2  # overlap of unit disks at distance 1

# (name, domain factory, exact volume, exact boundary length/area or None)
DOMAINS = [
    ("disk", lambda: Disk([0.3, -0.2], 0.7), math.pi * 0.49, 2 * math.pi * 0.7),
    ("ball", lambda: Ball([0, 0, 1], 0.5), 4 / 3 * math.pi * 0.125, 4 * math.pi * 0.25),
    ("arrow", lambda: Polygon(ARROW), 0.65, 3 + 2 * math.hypot(0.5, 0.7)),
    ("channel", channel, 2.2 * 0.41 - math.pi * 0.05**2, 2 * 2.61 + 2 * math.pi * 0.05),
    ("two_disks", lambda: Disk([0, 0], 1) | Disk([1, 0], 1), 2 * math.pi - LENS, 8 * math.pi / 3),
    ("half_disk", lambda: Disk([0, 0], 1) & Rectangle([0, -2], [2, 2]), math.pi / 2, math.pi + 2),
    ("box_minus_ball", lambda: Box([0] * 3, [1] * 3) - Ball([0.5] * 3, 0.3, tag="ball"),
     1 - 4 / 3 * math.pi * 0.027, 6 + 4 * math.pi * 0.09),
]  # fmt: skip


@pytest.fixture(params=DOMAINS, ids=[d[0] for d in DOMAINS])
def case(request):
    name, make, volume, area = request.param
    return name, make(), volume, area


def test_volume_and_boundary_measure(case):
    """Exact where the parts are nested/disjoint or primitive; else a QMC estimate whose own
    standard error covers the exact value (5 standard errors)."""
    _, g, volume, area = case
    assert isinstance(g, Geometry)
    err = g.volume_error() if hasattr(g, "volume_error") else 0.0
    assert abs(g.volume() - volume) <= 5 * err + 1e-12 * volume
    # the boundary measure of composites is a 2^14-point QMC estimate per part: 1e-3 relative
    assert g.boundary_area() == pytest.approx(area, rel=1e-3)


def test_channel_measures_are_exact():
    g = channel()
    assert g.volume_error() == 0.0
    assert g.volume() == pytest.approx(2.2 * 0.41 - math.pi * 0.05**2, rel=1e-15)
    areas = {t: g.boundary_area(t) for t in g.boundary_tags}
    exact = {"inlet": 0.41, "outlet": 0.41, "wall": 4.4, "cylinder": 0.1 * math.pi}
    assert areas == pytest.approx(exact, rel=1e-14)


@pytest.mark.parametrize("method", ["sobol", "uniform"])
def test_interior_inside(case, method):
    _, g, _, _ = case
    x = g.sample_interior(20_000, rng=1, method=method)
    assert x.shape == (20_000, g.dim) and np.all(g.contains(x))
    assert np.all(g.signed_distance(x) <= 0)


def _strip_area(a, b, cx=0.2, r=0.05, height=0.41):
    """Exact area of the channel between x = a and x = b (strip minus circle segment)."""

    def F(t):
        t = np.clip(t, -r, r)
        return t * np.sqrt(r * r - t * t) + r * r * np.arcsin(t / r)

    return height * (b - a) - (F(b - cx) - F(a - cx))


@pytest.mark.parametrize("method", ["sobol", "uniform"])
def test_interior_uniform_chi_square(method, oracles):
    """Counts in bins of exactly known area: equal-area annuli x sectors of a disk, equal-volume
    shells x octants of a ball, the channel's strips (analytic circle segments), and the
    red-refined triangles of an exact triangulation of the non-convex arrow."""
    rng = 2
    # disk: 10 annuli r_k = R sqrt(k / 10) x 12 sectors, all of equal area
    d = Disk([0.3, -0.2], 0.7)
    x = d.sample_interior(N, rng=rng, method=method) - d.center
    ring = np.minimum((np.sum(x**2, axis=1) / 0.49 * 10).astype(int), 9)
    sector = ((np.arctan2(x[:, 1], x[:, 0]) + np.pi) / (2 * np.pi) * 12).astype(int) % 12
    counts = np.bincount(ring * 12 + sector, minlength=120)
    assert np.sum((counts - N / 120) ** 2 / (N / 120)) < chi2.ppf(CRIT, 119)
    # ball: 8 shells r_k = R (k / 8)^(1/3) x 8 octants
    b = Ball([0, 0, 1], 0.5)
    x = b.sample_interior(N, rng=rng, method=method) - b.center
    shell = np.minimum((np.linalg.norm(x, axis=1) ** 3 / 0.125 * 8).astype(int), 7)
    octant = (x > 0) @ np.array([1, 2, 4])
    counts = np.bincount(shell * 8 + octant, minlength=64)
    assert np.sum((counts - N / 64) ** 2 / (N / 64)) < chi2.ppf(CRIT, 63)
    # channel: 220 strips, finest (0.002 wide) around the cylinder
    g = channel()
    edges = np.unique(np.r_[np.linspace(0, 0.4, 201), np.linspace(0.4, 2.2, 21)])
    x = g.sample_interior(N, rng=rng, method=method)
    counts = np.histogram(x[:, 0], edges)[0]
    expected = N * _strip_area(edges[:-1], edges[1:]) / g.volume()
    assert np.sum((counts - expected) ** 2 / expected) < chi2.ppf(CRIT, len(counts) - 1)
    # arrow: 4 equal pieces of each triangle of an exact triangulation
    x = Polygon(ARROW).sample_interior(N, rng=rng, method=method)
    stat, dof, outside = oracles.subcell_chi_square(x, np.array(ARROW, float), ARROW_TRIANGLES)
    assert outside == 0 and stat < chi2.ppf(CRIT, dof)


@pytest.mark.parametrize("method", ["sobol", "uniform"])
def test_normals_unit_outward_divergence_theorem(case, method):
    """Unit normals; a step along n leaves the domain and a step against it enters; and
    int x.n dS = dim |Omega| within 5 standard errors (sample mean, plus the QMC errors of
    the volume and boundary-measure estimates for domains where those are estimates)."""
    name, g, volume, area = case
    p, n = g.sample_boundary(N, rng=3, method=method)
    assert p.shape == n.shape == (N, g.dim)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(g.signed_distance(p), 0.0, atol=1e-12)
    # a step of eps crosses the other edge for points within ~eps / tan(angle / 2) of a corner
    # (the arrow's 35-degree tip); 1e-9 makes that band ~1e-9 wide, far from round-off (1e-16)
    eps = 1e-9 * g.diameter
    assert np.all(g.signed_distance(p + eps * n) > 0)
    assert np.all(g.signed_distance(p - eps * n) < 0)
    xn = np.sum(p * n, axis=1)
    se = area * xn.std() / math.sqrt(N)
    assert abs(area * xn.mean() - g.dim * volume) < 5 * se


def test_boundary_uniform_on_the_union_of_two_disks():
    """Each disk's boundary outside the other is the arc |theta| >= 60 deg: kept points must be
    uniform in angle over both arcs (24 bins of equal length)."""
    g = Disk([0, 0], 1) | Disk([1, 0], 1)
    p, n = g.sample_boundary(N, rng=4, method="uniform")
    right = p[:, 0] > 0.5
    theta = np.where(right, np.arctan2(p[:, 1], 1 - p[:, 0]), np.arctan2(p[:, 1], p[:, 0]))
    theta = np.mod(theta, 2 * np.pi)  # both arcs span [pi/3, 5 pi/3] in their own angle
    assert np.all((theta >= np.pi / 3 - 1e-9) & (theta <= 5 * np.pi / 3 + 1e-9))
    bins = ((theta - np.pi / 3) / (4 * np.pi / 3) * 12).astype(int).clip(0, 11) + 12 * right
    counts = np.bincount(bins, minlength=24)
    assert np.sum((counts - N / 24) ** 2 / (N / 24)) < chi2.ppf(CRIT, 23)
    np.testing.assert_allclose(np.sum(n * (p - np.where(right[:, None], [1, 0], [0, 0])), 1), 1)


def test_channel_tags_and_normals():
    g = channel()
    assert g.boundary_tags == ("inlet", "outlet", "wall", "cylinder")
    for tag, normal in [("inlet", [-1, 0]), ("outlet", [1, 0])]:
        p, n = g.sample_boundary(300, tag, rng=5)
        np.testing.assert_allclose(n, np.broadcast_to(normal, n.shape))
    p, n = g.sample_boundary(2000, "wall", rng=5)
    assert np.all(np.isin(p[:, 1], [0.0, 0.41])) and 0.4 < np.mean(p[:, 1] > 0) < 0.6
    np.testing.assert_allclose(n[:, 1], np.where(p[:, 1] > 0, 1.0, -1.0))
    p, n = g.sample_boundary(300, "cylinder", rng=5)
    np.testing.assert_allclose(n, -(p - [0.2, 0.2]) / 0.05, atol=1e-12)  # into the cylinder
    with pytest.raises(UnknownNameError, match="cylinder, inlet, outlet, wall"):
        g.sample_boundary(10, "xmin")


def test_polygon_tags_follow_edges_in_either_orientation():
    square = [[0, 0], [0, 1], [1, 1], [1, 0]]  # clockwise
    g = Polygon(square, tags=["left", "top", "right", "bottom"])
    for tag, (fixed, value, normal) in {
        "left": (0, 0.0, [-1, 0]),
        "top": (1, 1.0, [0, 1]),
        "right": (0, 1.0, [1, 0]),
        "bottom": (1, 0.0, [0, -1]),
    }.items():
        p, n = g.sample_boundary(200, tag, rng=6)
        np.testing.assert_allclose(p[:, fixed], value, atol=1e-15)
        np.testing.assert_allclose(n, np.broadcast_to(normal, n.shape))


def test_rename_merges_and_checks_names():
    g = (Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.2)).rename({"xmin": "io", "xmax": "io"})
    assert g.boundary_area("io") == pytest.approx(2.0, rel=1e-14)
    with pytest.raises(UnknownNameError, match="boundary tag 'inlet'"):
        Rectangle([0, 0], [1, 1]).__sub__(Disk([0.5, 0.5], 0.2)).rename({"inlet": "x"})


def test_operators_build_the_same_domains():
    a, b = Disk([0, 0], 1), Rectangle([0, -2], [2, 2])
    x = np.random.default_rng(7).uniform(-2, 2, size=(5000, 2))
    for op, cls in [(a | b, Union), (a & b, Intersection), (a - b, Difference)]:
        np.testing.assert_array_equal(op.contains(x), cls(a, b).contains(x))
    np.testing.assert_array_equal((a - b).contains(x), a.contains(x) & ~(x[:, 0] > 0))


def test_sampling_reproducible_and_seeded():
    g = channel()
    np.testing.assert_array_equal(g.sample_interior(50, rng=8), g.sample_interior(50, rng=8))
    p1, n1 = g.sample_boundary(50, rng=8)
    p2, n2 = g.sample_boundary(50, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, g.sample_boundary(50, rng=9)[0])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Disk([0, 0, 0], 1), "2D center"),
        (lambda: Ball([0, 0], -1), "radius must be finite and > 0"),
        (lambda: Polygon([[0, 0], [2, 0], [2, 2], [1, -1], [0, 2]]), "not simple"),
        (lambda: Polygon([[0, 0], [1, 0]]), r"\(m >= 3, 2\)"),
        (lambda: Polygon([[0, 0], [1, 0], [1, 1]], tags=["a"]), "one tag per edge"),
        (lambda: Rectangle([0, 0], [1, 1], periodic=(True, False)) - Disk([0, 0], 1), "periodic"),
        (lambda: Box([0] * 3, [1] * 3) - Disk([0, 0], 1), "different dimensions"),
        (lambda: Interval(0, 1) - Interval(0.2, 0.3), "2D and 3D"),
        (lambda: Disk([0, 0], 1).mesh(1e-5), "choose a larger h"),
    ],
)
def test_bad_input(make, message):
    with pytest.raises(ParameterError, match=message):
        make()


# -- meshing for output ----------------------------------------------------------------------------
def test_polygon_mesh_is_exact():
    g = Polygon(ARROW, tags=["a", "b", "c", "d", "e"])
    for h in (0.2, 0.05):
        m = g.mesh(h)
        assert m.volume() == pytest.approx(0.65, rel=1e-13)
        for tag in "abcde":
            assert m.boundary_area(tag) == pytest.approx(g.boundary_area(tag), rel=1e-13)


@pytest.mark.parametrize("h", [0.04, 0.01])
def test_channel_mesh_is_the_inscribed_polygon(h):
    """The cylinder becomes the regular k-gon through its boundary nodes, k = ceil(2 pi r / h)
    (at least 8); everything else is exact."""
    g = channel()
    m = g.mesh(h)
    k = max(math.ceil(2 * math.pi * 0.05 / h), 8)
    hole = 0.5 * k * 0.05**2 * math.sin(2 * math.pi / k)
    assert m.volume() == pytest.approx(2.2 * 0.41 - hole, rel=1e-13)
    assert set(m.boundary_tags) == set(g.boundary_tags)
    for tag in ("inlet", "outlet", "wall"):
        assert m.boundary_area(tag) == pytest.approx(g.boundary_area(tag), rel=1e-13)
    assert m.boundary_area("cylinder") == pytest.approx(2 * k * 0.05 * math.sin(math.pi / k))
    assert np.all(g.signed_distance(m.points) <= 1e-12)
    grid = g.to_pyvista(h)
    assert grid.n_cells == m.n_cells and grid.area == pytest.approx(m.volume(), rel=1e-12)


def test_curved_meshes_converge():
    """Disk union and box-minus-ball: the mesh volume error falls at least 2.5x per halving of
    h (second order: the boundary is interpolated by chords/planar facets)."""
    for g, hs in [
        (Disk([0, 0], 1) | Disk([1, 0], 1), (0.2, 0.1, 0.05)),
        (Box([0] * 3, [1] * 3) - Ball([0.5] * 3, 0.3, tag="ball"), (0.2, 0.1)),
    ]:
        exact = g.volume() if g.volume_error() == 0 else None
        exact = exact if exact is not None else 2 * math.pi - LENS
        errors = [abs(g.mesh(h).volume() - exact) for h in hs]
        assert all(e1 > 2.5 * e2 for e1, e2 in zip(errors, errors[1:])), errors
        m = g.mesh(hs[-1])
        assert set(m.boundary_tags) == set(g.boundary_tags)


def test_box_meshes_are_structured_and_exact():
    m = Box([0, 0, 0], [1, 2, 3]).mesh(0.5)
    assert [t for t, _ in m.cells] == ["hexahedron"] and m.n_cells == 2 * 4 * 6
    assert m.volume() == pytest.approx(6.0, rel=1e-14)
    exact = {"xmin": 6, "xmax": 6, "ymin": 3, "ymax": 3, "zmin": 2, "zmax": 2}
    assert {t: m.boundary_area(t) for t in m.boundary_tags} == pytest.approx(exact, rel=1e-14)
    r = Rectangle([0, 0], [1, 2]).mesh(0.25)
    assert r.n_cells == 4 * 8 and r.volume() == pytest.approx(2.0, rel=1e-14)
    _, n = r.sample_boundary(100, "ymax", rng=0)
    np.testing.assert_allclose(n, np.broadcast_to([0, 1], n.shape))
