"""Uniform grids for grid solvers: locations (centred, nodal, MAC faces), periodic axes, pyvista."""

from __future__ import annotations

import numpy as np
import pytest

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries import Rectangle, TensorGrid, uniform_axis
from pdekit.geometries.grid import Grid


def test_locations_bounded_2d():
    g = Grid([0, -1], [2, 1], n=(4, 2))
    np.testing.assert_allclose(g.spacing, [0.5, 1.0])
    np.testing.assert_allclose(g.axis(0, "center"), [0.25, 0.75, 1.25, 1.75])
    np.testing.assert_allclose(g.axis(0, "node"), [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(g.axis(1, "center"), [-0.5, 0.5])
    # MAC: u on x-faces (nodes in x, centres in y), v on y-faces, p at centres
    assert g.shape_of("face_x") == (5, 2) and g.shape_of("face_y") == (4, 3)
    assert g.shape_of("center") == g.shape == (4, 2) and g.shape_of("node") == (5, 3)
    np.testing.assert_allclose(g.axes("face_y")["y"], [-1, 0, 1])
    assert g.cell_volume() * np.prod(g.shape) == pytest.approx(g.volume())


def test_periodic_axes_drop_the_duplicate_end():
    g = Grid([0, 0], [2 * np.pi, 1], n=(8, 4), periodic=(True, False))
    np.testing.assert_allclose(g.axis(0, "node"), uniform_axis(0, 2 * np.pi, 8, periodic=True))
    assert g.shape_of("node") == (8, 5) and g.shape_of("face_x") == (8, 4)
    assert g.shape_of("face_y") == (8, 5)


def test_points_follow_the_tensor_grid_convention():
    g = Grid([0, 0, 0], [1, 2, 3], n=(2, 3, 4), coordinates=("x", "y", "z"))
    for loc in ("center", "node", "face_x", "face_y", "face_z"):
        pts = g.points(loc)
        assert isinstance(g.tensor(loc), TensorGrid)
        grid = pts.reshape(g.shape_of(loc) + (3,))
        # 'ij': axis k of the value array runs along coordinate k
        np.testing.assert_allclose(grid[:, 0, 0, 0], g.axis(0, loc))
        np.testing.assert_allclose(grid[0, :, 0, 1], g.axis(1, loc))
        np.testing.assert_allclose(grid[0, 0, :, 2], g.axis(2, loc))


def test_grid_on_a_box_takes_its_bounds_and_periodicity():
    box = Rectangle([0, 1], [1, 3], periodic=(True, False))
    g = Grid.on(box, 16)
    assert g.periodic == (True, False) and g.n == (16, 16)
    np.testing.assert_allclose(g.bounds, box.bounds)


def test_face_to_center_exact_for_linear_and_second_order():
    g = Grid([0, 0], [1, 1], n=(8, 5))
    x, y = np.meshgrid(*g.axes("face_x").values(), indexing="ij")
    xc, yc = np.meshgrid(*g.axes("center").values(), indexing="ij")
    np.testing.assert_allclose(g.face_to_center(3 * x - y, 0), 3 * xc - yc, atol=1e-14)
    errors = []
    for n in (16, 32, 64):
        p = Grid([0], [2 * np.pi], n=n, periodic=True)
        faces, centres = p.axis(0, "face_x"), p.axis(0, "center")
        errors.append(np.abs(p.face_to_center(np.sin(faces), 0) - np.sin(centres)).max())
    order = np.polyfit(np.log([16, 32, 64]), np.log(errors), 1)[0]
    assert -2.1 < order < -1.9  # averaging two faces is second order: 1 - cos(h/2) ~ h^2 / 8


def test_to_pyvista_places_values_where_vtk_puts_them():
    g = Grid([0, -1, 2], [2, 1, 3], n=(4, 3, 2))
    f = lambda p: p[:, 0] + 10 * p[:, 1] + 100 * p[:, 2]  # noqa: E731
    centres = f(g.points("center")).reshape(g.shape)
    nodes = f(g.points("node")).reshape(g.shape_of("node"))
    vec = np.stack([centres, 2 * centres, 3 * centres], axis=-1)
    image = g.to_pyvista(point_data={"n": nodes}, cell_data={"c": centres, "U": vec})
    assert image.dimensions == (5, 4, 3)
    np.testing.assert_allclose(image.bounds, [0, 2, -1, 1, 2, 3])
    np.testing.assert_allclose(image.cell_data["c"], f(image.cell_centers().points))
    np.testing.assert_allclose(image.point_data["n"], f(image.points))
    np.testing.assert_allclose(image.cell_data["U"][:, 2], 3 * f(image.cell_centers().points))


def test_to_pyvista_closes_periodic_axes():
    g = Grid([0, 0], [1, 1], n=(4, 2), periodic=(True, False))
    values = np.cos(2 * np.pi * g.points("node")[:, 0]).reshape(g.shape_of("node"))
    image = g.to_pyvista(point_data={"u": values})
    assert image.dimensions == (5, 3, 1)
    np.testing.assert_allclose(image.point_data["u"], np.cos(2 * np.pi * image.points[:, 0]))


def test_bad_input():
    with pytest.raises(ParameterError, match="integers >= 1"):
        Grid([0], [1], n=0)
    with pytest.raises(ParameterError, match="lo < hi"):
        Grid([0, 1], [1, 1], n=4)
    with pytest.raises(UnknownNameError, match="center, face_x, face_y, node"):
        Grid([0, 0], [1, 1], n=4).axis(0, "face_z")
    with pytest.raises(ParameterError, match="leading shape"):
        Grid([0, 0], [1, 1], n=4).to_pyvista(cell_data={"c": np.zeros((5, 4))})
