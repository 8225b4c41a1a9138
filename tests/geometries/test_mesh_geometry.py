"""MeshGeometry on real gmsh meshes: tags, sampling, normals, location, interpolation, errors."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
from scipy.stats import chi2

from pdekit.errors import MeshError, ParameterError, UnknownNameError
from pdekit.geometries import Geometry
from pdekit.geometries.mesh import MeshGeometry, cached_mesh, require_dim, require_tags
from pdekit.geometries.simplex import uniform_barycentric

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
# DFG channel: [0, 2.2] x [0, 0.41], cylinder centre (0.2, 0.2), radius 0.05
CHANNEL, CENTRE, RADIUS = (2.2, 0.41), np.array([0.2, 0.2]), 0.05
N = 100_000


@pytest.fixture(scope="module")
def channel():
    return MeshGeometry.from_file(DATA / "channel_hole.msh")


@pytest.fixture(scope="module")
def box():
    return MeshGeometry.from_file(DATA / "box_tet.msh")


@pytest.fixture(scope="module", params=["channel", "box"])
def mesh(request, channel, box):
    return {"channel": channel, "box": box}[request.param]


def polygon_area(loop):
    x, y = loop[:, 0], loop[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# -- reading and tags -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["channel_hole.msh", "channel_hole_v2.msh"])
def test_channel_tags_and_measures(name):
    g = MeshGeometry.from_file(DATA / name)
    assert isinstance(g, Geometry)
    assert g.dim == 2 and set(g.boundary_tags) == {"inlet", "outlet", "wall", "cylinder"}
    np.testing.assert_allclose(g.bounds, [[0, 0], CHANNEL], atol=1e-12)
    # straight parts are exact; the cylinder is the polygon through its boundary nodes
    np.testing.assert_allclose(g.boundary_area("inlet"), 0.41, rtol=1e-12)
    np.testing.assert_allclose(g.boundary_area("outlet"), 0.41, rtol=1e-12)
    np.testing.assert_allclose(g.boundary_area("wall"), 4.4, rtol=1e-12)
    nodes = g.points[np.unique(g.facets[np.isin(g.facet_face, g._tags["cylinder"])])]
    np.testing.assert_allclose(np.linalg.norm(nodes - CENTRE, axis=1), RADIUS, rtol=1e-12)
    pts, _ = g.sample_boundary(2000, "cylinder", rng=0)  # on the chords between those nodes
    dist = np.linalg.norm(pts - CENTRE, axis=1)
    assert np.all((dist >= RADIUS * np.cos(np.pi / len(nodes)) - 1e-12) & (dist <= RADIUS))
    loop = nodes[np.argsort(np.arctan2(*(nodes - CENTRE).T[::-1]))]
    hole = polygon_area(loop)
    assert 0.98 * np.pi * RADIUS**2 < hole < np.pi * RADIUS**2  # 24 segments: within 2 %
    np.testing.assert_allclose(g.volume(), CHANNEL[0] * CHANNEL[1] - hole, rtol=1e-12)
    perimeter = np.sum(np.linalg.norm(loop - np.roll(loop, 1, axis=0), axis=1))
    np.testing.assert_allclose(g.boundary_area("cylinder"), perimeter, rtol=1e-12)


def test_gmsh_v2_and_v4_give_the_same_mesh(channel):
    v2 = MeshGeometry.from_file(DATA / "channel_hole_v2.msh")
    np.testing.assert_array_equal(v2.points, channel.points)
    np.testing.assert_array_equal(v2.simplices, channel.simplices)
    for tag in channel.boundary_tags:
        assert v2.boundary_area(tag) == pytest.approx(channel.boundary_area(tag), rel=1e-14)


def test_box_tags_and_measures(box):
    assert box.dim == 3 and set(box.boundary_tags) == {"inlet", "outlet", "wall"}
    assert box.volume() == pytest.approx(1.0, rel=1e-12)
    areas = {t: box.boundary_area(t) for t in box.boundary_tags}
    assert areas == pytest.approx({"inlet": 1.0, "outlet": 1.0, "wall": 4.0}, rel=1e-12)


@pytest.mark.parametrize("ext", [".vtu", ".xdmf", ".vtk"])
def test_other_formats_carry_ids_named_by_tag_names(channel, tmp_path, ext):
    import meshio

    src = meshio.read(DATA / "channel_hole_v2.msh")
    path = tmp_path / f"channel{ext}"
    meshio.write(path, meshio.Mesh(src.points, src.cells, cell_data=src.cell_data))
    ids = MeshGeometry.from_file(path)  # names are lost in these formats: ids remain
    assert set(ids.boundary_tags) == {"1", "2", "3", "4"}
    names = {"inlet": 1, "outlet": 2, "wall": 3, "cylinder": 4}
    named = MeshGeometry.from_file(path, tag_names=names)
    for tag in channel.boundary_tags:
        assert named.boundary_area(tag) == pytest.approx(channel.boundary_area(tag), rel=1e-14)
    assert named.volume() == pytest.approx(channel.volume(), rel=1e-14)


def test_unknown_tag_lists_valid_ones(channel):
    with pytest.raises(UnknownNameError, match="cylinder.*inlet.*outlet.*wall"):
        channel.sample_boundary(10, "inflow")


def test_untagged_boundary_facets_get_their_own_tag(tmp_path):
    import meshio

    src = meshio.read(DATA / "channel_hole_v2.msh")
    keep = src.cell_data["gmsh:physical"][0] != 4  # drop the cylinder's facets
    cells = [("line", src.cells[0].data[keep]), src.cells[1]]
    data = {"gmsh:physical": [src.cell_data["gmsh:physical"][0][keep], np.zeros(882, int)]}
    meshio.write(tmp_path / "m.vtu", meshio.Mesh(src.points, cells, cell_data=data))
    g = MeshGeometry.from_file(tmp_path / "m.vtu", tag_names={"inlet": 1, "outlet": 2, "wall": 3})
    assert set(g.boundary_tags) == {"inlet", "outlet", "wall", "untagged"}
    _, normals = g.sample_boundary(100, "untagged", rng=0)
    assert g.boundary_area("untagged") < 2 * np.pi * RADIUS


# -- sampling -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["sobol", "uniform"])
def test_interior_points_inside(mesh, method, oracles):
    x = mesh.sample_interior(N, rng=1, method=method)
    assert x.shape == (N, mesh.dim)
    index, _ = oracles.brute_force_barycentric(x[:5000], mesh.points, mesh.simplices)
    assert np.all(index >= 0)  # independent check on a subset
    assert np.all(mesh.contains(x))


@pytest.mark.parametrize("method", ["sobol", "uniform", "halton"])
def test_interior_density_uniform_by_cell(mesh, method, oracles):
    """Pearson chi-square over 2^d equal-volume pieces of every cell, against the 0.1 % critical
    value (a fixed seed: deterministic; a correct sampler fails one seed in a thousand)."""
    x = mesh.sample_interior(N, rng=2, method=method)
    stat, dof, outside = oracles.subcell_chi_square(x, mesh.points, mesh.simplices)
    assert outside == 0
    assert stat < chi2.ppf(0.999, dof), (stat, dof)


@pytest.mark.parametrize("method", ["sobol", "uniform"])
def test_mesh_density_puts_equal_counts_in_every_simplex(mesh, method, oracles):
    """``density="mesh"``: every simplex equally likely (Pearson chi-square of the counts per
    simplex, located by the independent oracle, against equal expected counts; 0.1 %), so the
    density follows the mesh (the channel's is finer near the cylinder)."""
    x = mesh.sample_interior(N, rng=2, method=method, density="mesh")
    index, _ = oracles.brute_force_barycentric(x, mesh.points, mesh.simplices)
    assert np.all(index >= 0)
    counts = np.bincount(index, minlength=len(mesh.simplices))
    expected = N / len(mesh.simplices)
    dof = len(mesh.simplices) - 1
    assert np.sum((counts - expected) ** 2 / expected) < chi2.ppf(0.999, dof)
    vol = mesh.simplex_volume
    if vol.max() < 2 * vol.min():
        return  # cells of nearly one size: the two densities are close
    uniform = mesh.sample_interior(N, rng=2, method=method)  # differs where cells differ
    counts_u = np.bincount(
        oracles.brute_force_barycentric(uniform, mesh.points, mesh.simplices)[0],
        minlength=len(mesh.simplices),
    )
    assert np.sum((counts_u - expected) ** 2 / expected) > chi2.ppf(0.999, dof)


def test_an_unknown_density_is_refused(channel):
    with pytest.raises(UnknownNameError, match="density 'fine'.*mesh, uniform"):
        channel.sample_interior(10, rng=0, density="fine")


@pytest.mark.parametrize("bias", ["cells_not_by_volume", "nonuniform_in_cell"])
def test_chi_square_detects_biased_samplers(mesh, bias, oracles):
    """The statistic above has the power to reject samplers that are wrong in either way."""
    rng = np.random.default_rng(3)
    if bias == "cells_not_by_volume":
        which = rng.integers(len(mesh.simplices), size=N)
        bary = uniform_barycentric(rng.random((N, mesh.dim)))
    else:
        which = rng.choice(len(mesh.simplices), size=N, p=mesh.simplex_volume / mesh.volume())
        w = rng.random((N, mesh.dim + 1))
        bary = w / w.sum(axis=1, keepdims=True)  # normalised uniforms: not uniform on a simplex
    x = np.einsum("ij,ijk->ik", bary, mesh.points[mesh.simplices[which]])
    stat, dof, _ = oracles.subcell_chi_square(x, mesh.points, mesh.simplices)
    assert stat > chi2.ppf(0.999, dof)


@pytest.mark.parametrize("method", ["sobol", "uniform"])
def test_boundary_normals_unit_outward_divergence_theorem(mesh, method):
    """Unit, outward (a step along n leaves the domain, a step against it enters), and
    int_{dOmega} x.n dS = dim |Omega| to within 5 standard errors of the sample mean."""
    p, n = mesh.sample_boundary(N, rng=4, method=method)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-12)
    eps = 1e-6 * np.ptp(mesh.bounds, axis=0).max()
    assert not mesh.contains(p + eps * n).any()
    assert mesh.contains(p - eps * n).all()
    assert mesh.contains(p).all()  # the closed domain holds its boundary
    xn = np.sum(p * n, axis=1)
    area = mesh.boundary_area()
    se = area * xn.std() / np.sqrt(N)
    assert abs(area * xn.mean() - mesh.dim * mesh.volume()) < 5 * se


def test_boundary_tags_have_the_right_normals(channel, box):
    for tag, normal in [("inlet", [-1, 0]), ("outlet", [1, 0])]:
        _, n = channel.sample_boundary(500, tag, rng=5)
        np.testing.assert_allclose(n, np.broadcast_to(normal, n.shape), atol=1e-12)
    p, n = channel.sample_boundary(500, "wall", rng=5)
    np.testing.assert_allclose(np.abs(n[:, 1]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sign(n[:, 1]), np.where(p[:, 1] > 0.2, 1, -1))
    p, n = channel.sample_boundary(500, "cylinder", rng=5)
    assert np.all(np.sum((p - CENTRE) * n, axis=1) < 0)  # the fluid's outside is the cylinder
    _, n = box.sample_boundary(500, "inlet", rng=5)
    np.testing.assert_allclose(n, np.broadcast_to([-1, 0, 0], n.shape), atol=1e-12)


def test_boundary_sampling_proportional_to_tag_area(channel):
    """With i.i.d. points, counts per tag follow the area fractions (chi-square, 0.1 %)."""
    tags = channel.boundary_tags
    p, n = channel.sample_boundary(N, rng=6, method="uniform")
    which = np.select(
        [p[:, 0] <= 1e-12, p[:, 0] >= CHANNEL[0] - 1e-12, np.abs(n[:, 1]) > 1 - 1e-12],
        [0, 1, 2],
        default=3,
    )
    order = ["inlet", "outlet", "wall", "cylinder"]
    counts = np.bincount(which, minlength=4)
    expected = N * np.array([channel.boundary_area(t) for t in order]) / channel.boundary_area()
    assert set(tags) == set(order)
    assert np.sum((counts - expected) ** 2 / expected) < chi2.ppf(0.999, 3)


def test_sampling_is_reproducible(channel):
    a = channel.sample_interior(100, rng=7)
    b = channel.sample_interior(100, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, channel.sample_interior(100, rng=8))


# -- location and interpolation -------------------------------------------------------------------
def test_locate_agrees_with_brute_force(mesh, oracles):
    rng = np.random.default_rng(9)
    lo, hi = mesh.bounds
    x = lo - 0.1 * (hi - lo) + 1.2 * (hi - lo) * rng.random((4000, mesh.dim))
    ref, _ = oracles.brute_force_barycentric(x, mesh.points, mesh.simplices)
    got = mesh.locate(x)
    expected = np.where(ref >= 0, mesh.simplex_cell[np.maximum(ref, 0)], -1)
    np.testing.assert_array_equal(got, expected)  # random points: never on a shared face
    assert (got >= 0).sum() > 1000 and (got < 0).sum() > 100  # both cases exercised


def test_nodes_and_boundary_points_are_located(mesh):
    assert np.all(mesh.locate(mesh.points[np.unique(mesh.simplices)]) >= 0)
    p, _ = mesh.sample_boundary(2000, rng=10)
    assert np.all(mesh.locate(p) >= 0)


def test_interpolation_exact_for_linear_fields(mesh):
    rng = np.random.default_rng(11)
    a, b = 0.7, rng.normal(size=mesh.dim)
    nodal = a + mesh.points @ b
    x = mesh.sample_interior(5000, rng=12)
    np.testing.assert_allclose(mesh.interpolate(nodal, x), a + x @ b, rtol=0, atol=1e-12)
    both = mesh.interpolate({"f": nodal, "g": np.stack([nodal, 2 * nodal], axis=1)}, x)
    np.testing.assert_allclose(both["g"][:, 1], 2 * (a + x @ b), atol=1e-12)
    outside = mesh.bounds[1] + 1.0
    assert np.isnan(mesh.interpolate(nodal, outside[None])).all()


def test_interpolation_is_not_exact_for_quadratics(channel):
    """The same check has teeth: a quadratic is only approximated between nodes."""
    nodal = channel.points[:, 0] ** 2
    x = channel.sample_interior(2000, rng=13)
    assert np.abs(channel.interpolate(nodal, x) - x[:, 0] ** 2).max() > 1e-5


# -- quads and hexahedra, pyvista ----------------------------------------------------------------
def structured(n, dim, lengths):
    """A structured quad (2D) or hex (3D) mesh with VTK ordering, and its x = 0 facets."""
    axes = [np.linspace(0, L, k + 1) for L, k in zip(lengths, n)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    idx = np.arange(len(grid)).reshape([k + 1 for k in n])
    if dim == 2:
        i, j = np.meshgrid(range(n[0]), range(n[1]), indexing="ij")
        i, j = i.ravel(), j.ravel()
        cells = np.stack([idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]], axis=1)
        facets = np.stack([idx[0, :-1], idx[0, 1:]], axis=1)
        return grid, "quad", cells, "line", facets
    i, j, k = (a.ravel() for a in np.meshgrid(*(range(m) for m in n), indexing="ij"))
    bottom = [idx[i, j, k], idx[i + 1, j, k], idx[i + 1, j + 1, k], idx[i, j + 1, k]]
    top = [idx[i, j, k + 1], idx[i + 1, j, k + 1], idx[i + 1, j + 1, k + 1], idx[i, j + 1, k + 1]]
    cells = np.stack(bottom + top, axis=1)
    a, b = np.meshgrid(range(n[1]), range(n[2]), indexing="ij")
    a, b = a.ravel(), b.ravel()
    facets = np.stack([idx[0, a, b], idx[0, a + 1, b], idx[0, a + 1, b + 1], idx[0, a, b + 1]], 1)
    return grid, "hexahedron", cells, "quad", facets


@pytest.mark.parametrize("dim", [2, 3])
def test_quads_and_hexahedra(tmp_path, dim):
    import meshio

    n, lengths = (5, 3, 4)[:dim], (2.0, 1.0, 0.5)[:dim]
    points, ctype, cells, ftype, facets = structured(n, dim, lengths)
    mesh = meshio.Mesh(
        points, [(ftype, facets), (ctype, cells)],
        cell_data={"boundary_id": [np.full(len(facets), 7), np.zeros(len(cells), int)]},
    )  # fmt: skip
    meshio.write(tmp_path / "m.xdmf", mesh)
    g = MeshGeometry.from_file(tmp_path / "m.xdmf", tag_names={"inlet": 7})
    assert set(g.boundary_tags) == {"inlet", "untagged"}
    assert g.volume() == pytest.approx(np.prod(lengths), rel=1e-12)
    assert g.boundary_area("inlet") == pytest.approx(np.prod(lengths[1:]), rel=1e-12)
    # location oracle: a structured grid's cell is floor(x / h) along each axis
    rng = np.random.default_rng(14)
    x = rng.random((3000, dim)) * lengths
    ijk = np.floor(x / (np.array(lengths) / n)).astype(int)
    flat = np.ravel_multi_index(tuple(ijk.T), n)
    np.testing.assert_array_equal(g.locate(x), flat)
    nodal = 1.0 + g.points @ np.arange(1, dim + 1)
    np.testing.assert_allclose(g.interpolate(nodal, x), 1.0 + x @ np.arange(1, dim + 1), atol=1e-12)
    p, nrm = g.sample_boundary(20_000, rng=15)
    xn = np.sum(p * nrm, axis=1)
    se = g.boundary_area() * xn.std() / np.sqrt(len(p))
    assert abs(g.boundary_area() * xn.mean() - dim * g.volume()) < 5 * se


def test_pyvista_round_trip(channel, box):
    import pyvista as pv

    for g in (channel, box):
        grid = g.to_pyvista()
        assert isinstance(grid, pv.UnstructuredGrid) and grid.n_cells == g.n_cells
        assert grid.volume == pytest.approx(g.volume(), rel=1e-12) or g.dim == 2
        back = MeshGeometry.from_pyvista(grid)
        np.testing.assert_array_equal(back.simplices, g.simplices)
        assert back.volume() == pytest.approx(g.volume(), rel=1e-14)
    assert channel.to_pyvista().area == pytest.approx(channel.volume(), rel=1e-12)


def test_from_pyvista_reads_tags_from_cell_data():
    import pyvista as pv

    image = pv.ImageData(dimensions=(4, 3, 1), spacing=(0.5, 0.5, 1.0))
    g = MeshGeometry.from_pyvista(image)
    assert g.dim == 2 and g.volume() == pytest.approx(1.5 * 1.0)
    points, _, quads, _, left = structured((3, 2), 2, (1.5, 1.0))
    cells = {pv.CellType.LINE: left, pv.CellType.QUAD: quads}
    grid = pv.UnstructuredGrid(cells, np.column_stack([points, np.zeros(len(points))]))
    grid.cell_data["boundary_id"] = np.r_[[3, 3], np.zeros(6, int)]
    tagged = MeshGeometry.from_pyvista(grid, tag_names={"inlet": 3})
    assert tagged.boundary_area("inlet") == pytest.approx(1.0)


# -- bad files ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["channel_hole.msh", "channel_hole_v2.msh", "box_tet.msh"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_files_raise_mesh_error_naming_the_file(tmp_path, name, fraction):
    data = (DATA / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(fraction * len(data))])
    with pytest.raises(MeshError, match=str(path)):
        MeshGeometry.from_file(path)


@pytest.mark.parametrize(
    "filename, content, problem",
    [
        ("garbage.msh", b"\x00\x01garbage" * 50, "corrupt"),
        ("garbage.vtu", b"<VTKFile>not xml", "corrupt"),
        ("mesh.foo", b"anything", "unsupported format '.foo'"),
        ("missing.msh", None, "no such file"),
    ],
)
def test_bad_files_raise_mesh_error(tmp_path, filename, content, problem, capsys):
    path = tmp_path / filename
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MeshError, match=problem) as err:
        MeshGeometry.from_file(path)
    assert str(path) in str(err.value)
    assert capsys.readouterr().out == ""  # meshio's own printing is captured


@pytest.mark.parametrize(
    "cells, problem",
    [
        ([("triangle6", np.array([[0, 1, 2, 3, 4, 5]]))], "unsupported cell type 'triangle6'"),
        ([("line", np.array([[0, 1]]))], "no 2D or 3D cells"),
        ([("triangle", np.array([[0, 1, 2], [0, 1, 9]]))], "outside 0..5"),
        ([("triangle", np.array([[0, 1, 2], [0, 1, 3]]))], "zero volume"),
    ],
)
def test_invalid_meshes_raise_mesh_error(tmp_path, cells, problem):
    import meshio

    points = np.array([[0, 0], [1, 0], [0, 1], [2, 0], [0.5, 0], [0.5, 0.5]], float)
    path = tmp_path / "bad.vtu"
    meshio.write(path, meshio.Mesh(points, cells))
    with pytest.raises(MeshError, match=problem) as err:
        MeshGeometry.from_file(path)
    assert str(path) in str(err.value)


def test_tagged_facets_that_are_not_faces_are_rejected(tmp_path):
    points = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    with pytest.raises(MeshError, match="1 facets of tag 'inlet' are not faces"):
        MeshGeometry(points, [("triangle", np.array([[0, 1, 2]]))], {"inlet": [("line", [[1, 3]])]})


@pytest.mark.parametrize("size", [1e200, 1e308])
def test_coordinates_too_large_for_float64_volumes(size):
    """Finite coordinates whose cell areas overflow (found by the fuzz test: an OverflowError
    escaped from the degenerate-cell check)."""
    points = np.array([[0, 0], [size, 0], [0, size]], float)
    with pytest.raises(MeshError, match="too large"):
        MeshGeometry(points, [("triangle", np.array([[0, 1, 2]]))])


def test_bad_arguments(channel):
    with pytest.raises(ParameterError, match="2 columns"):
        channel.contains(np.zeros((3, 3)))
    with pytest.raises(ParameterError, match="one per node"):
        channel.interpolate(np.zeros(3), np.zeros((1, 2)))
    with pytest.raises(ParameterError, match="integer >= 0"):
        channel.sample_interior(-1)


# -- inverted cells ---------------------------------------------------------------------------
def test_an_inverted_tetrahedron_is_refused_with_its_index():
    """One tetrahedron of the gmsh box numbered the wrong way round (two nodes swapped: a
    negative signed volume in VTK order, where the other 725 are positive)."""
    import meshio

    src = meshio.read(DATA / "box_tet.msh")
    tets = next(b.data for b in src.cells if b.type == "tetra").copy()
    tets[17] = tets[17][[1, 0, 2, 3]]
    with pytest.raises(MeshError, match=r"1 of 726 cells are inverted.*first cell indices: \[17\]"):
        MeshGeometry(src.points, [("tetra", tets)], source="box")


def test_an_inverted_hexahedron_is_refused_with_its_index():
    points, ctype, cells, _, _ = structured((5, 3, 4), 3, (2.0, 1.0, 0.5))
    cells[7] = cells[7][[4, 5, 6, 7, 0, 1, 2, 3]]  # top and bottom swapped: a mirrored cell
    with pytest.raises(MeshError, match=r"1 of 60 cells are inverted.*\[7\]"):
        MeshGeometry(points, [(ctype, cells)])


def test_a_folded_mesh_is_refused(tmp_path):
    """A node moved across the opposite edge of its triangles folds the mesh: the cells stay
    connected face to face (no topological check sees it), but overlap."""
    import meshio

    points, _, quads, _, _ = structured((4, 4), 2, (1.0, 1.0))
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    centre = 12  # node (0.5, 0.5), shared by 8 triangles
    assert np.allclose(points[centre], [0.5, 0.5])
    points[centre] = [0.5, 0.8]  # beyond the nodes at y = 0.75 above it
    path = tmp_path / "folded.vtu"
    meshio.write(path, meshio.Mesh(points, [("triangle", tris)]))
    with pytest.raises(MeshError, match=r"cells are inverted") as err:
        MeshGeometry.from_file(path)
    assert str(path) in str(err.value)


def test_a_mesh_numbered_clockwise_throughout_is_accepted(channel):
    """gmsh numbers a surface whose normal points to -z clockwise: consistent, not inverted."""
    cw = [(t, c[:, ::-1]) for t, c in channel.cells]
    g = MeshGeometry(channel.points, cw)
    assert g.volume() == pytest.approx(channel.volume(), rel=1e-14)
    p, n = g.sample_boundary(2000, rng=0)
    eps = 1e-6
    assert not g.contains(p + eps * n).any() and g.contains(p - eps * n).all()


# -- what a problem requires of a mesh -------------------------------------------------------
def test_require_tags_names_the_missing_and_present_tags(channel, box):
    require_tags(channel, ("inlet", "cylinder"), "the test")
    with pytest.raises(MeshError) as err:
        require_tags(channel, ("inlet", "walls", "obstacle"), "navier_stokes/cylinder")
    message = str(err.value)
    assert "lacks the boundary tags walls, obstacle that navier_stokes/cylinder needs" in message
    assert "it has: inlet, outlet, wall, cylinder" in message and "channel_hole.msh" in message
    untagged = MeshGeometry(box.points, box.cells)
    with pytest.raises(MeshError, match="lacks the boundary tag inlet .*it has: none"):
        require_tags(untagged, ("inlet",), "x")


def test_require_dim_names_both_dimensions(channel, box):
    require_dim(box, 3, "x")
    with pytest.raises(MeshError, match=r"hole.msh' is 2D; navier_stokes/beltrami needs a 3D"):
        require_dim(channel, 3, "navier_stokes/beltrami")


def test_cached_mesh_reads_a_file_once_per_version(tmp_path):
    import shutil

    path = tmp_path / "box.msh"
    shutil.copy(DATA / "box_tet.msh", path)
    first = cached_mesh(path)
    assert cached_mesh(str(path)) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed
    again = cached_mesh(path)
    assert again is not first and again.volume() == pytest.approx(first.volume(), rel=1e-15)
    path.unlink()
    with pytest.raises(MeshError, match="no such file"):
        cached_mesh(path)
