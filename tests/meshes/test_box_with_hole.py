"""The shipped mesh ``box_with_hole``: its script regenerates it, and it is the cube [-1, 1]^3
minus the ball of radius 0.4 to the accuracy its faceting allows."""

from __future__ import annotations

import math

import meshio
import numpy as np
import pytest

from pdekit.geometries import MeshGeometry
from pdekit.meshes import box_with_hole, mesh_path


@pytest.fixture(scope="module")
def shipped():
    return MeshGeometry.from_file(mesh_path("box_with_hole"))


def test_the_script_regenerates_the_shipped_mesh(tmp_path, shipped, capsys):
    pytest.importorskip("gmsh")
    out = tmp_path / "box_with_hole.msh"
    box_with_hole.main(["--out", str(out)])  # what `python -m pdekit.meshes.box_with_hole` runs
    assert f"wrote {out}" in capsys.readouterr().out
    again = MeshGeometry.from_file(out)
    assert [(t, len(c)) for t, c in again.cells] == [(t, len(c)) for t, c in shipped.cells]
    assert again.boundary_tags == shipped.boundary_tags == ("outer", "hole")
    assert again.volume() == pytest.approx(shipped.volume(), rel=1e-12)
    for tag in shipped.boundary_tags:
        assert again.boundary_area(tag) == pytest.approx(shipped.boundary_area(tag), rel=1e-12)


def test_shipped_mesh_is_the_cube_minus_the_ball(shipped):
    """The tolerance is the faceting's own: the cube's faces are flat, so only the sphere is
    approximated, by triangles with their vertices on it, and the mesh holds the caps between
    each facet and the sphere (the ball minus an inscribed polyhedron). A facet of area A and
    circumradius rho lies in a plane at distance d = sqrt(R^2 - rho^2) from the centre; its
    cap is at most R - d deep, over the facet's radial projection onto the sphere, whose area
    is at most A (R/d)^2. So the mesh's volume exceeds 8 - 4/3 pi R^3 by more than 0 and by at
    most sum A (R/d)^2 (R - d): measured 0.0143 against the bound 0.021."""
    R = box_with_hole.RADIUS
    exact = 8.0 - 4.0 / 3.0 * math.pi * R**3
    assert shipped.dim == 3 and [t for t, _ in shipped.cells] == ["tetra"]
    assert 1000 <= shipped.n_cells <= 5000
    assert mesh_path("box_with_hole").stat().st_size < 1_000_000
    np.testing.assert_allclose(shipped.bounds, [[-1, -1, -1], [1, 1, 1]], atol=1e-15)
    assert shipped.boundary_area("outer") == pytest.approx(24.0, rel=1e-13)
    raw = meshio.read(mesh_path("box_with_hole"))  # the hole's triangles, read independently
    hole = raw.cells_dict["triangle"][raw.cell_sets_dict["hole"]["triangle"]]
    vert = raw.points[hole]  # (n, 3, 3)
    np.testing.assert_allclose(np.linalg.norm(vert, axis=2), R, rtol=1e-12)
    a, b, c = (np.linalg.norm(vert[:, i] - vert[:, j], axis=1) for i, j in [(1, 2), (2, 0), (0, 1)])
    area = np.linalg.norm(np.cross(vert[:, 1] - vert[:, 0], vert[:, 2] - vert[:, 0]), axis=1) / 2
    rho = a * b * c / (4 * area)
    d = np.sqrt(R**2 - rho**2)
    bound = float(np.sum(area * (R / d) ** 2 * (R - d)))
    excess = shipped.volume() - exact
    assert 0 < excess <= bound, (excess, bound)
