"""VTK output on meshes (.vtu), grids (.vti), CSG domains and point clouds (.vtp), read back by
independent readers (meshio, VTK's own XML readers); inputs are not changed."""

from __future__ import annotations

import math
import pathlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.geometries import Disk, Grid, MeshGeometry, Rectangle, SpaceTime, TimeDomain
from pdekit.io.vtk import write_point_cloud, write_solution
from pdekit.problems.base import Problem
from pdekit.solution import Solution

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class DecayingVortex(Problem):
    """Taylor-Green vortex on the periodic square (exact; a test double, not registered):
    u = -cos x sin y e^{-2t}, v = sin x cos y e^{-2t}, p = -(cos 2x + cos 2y) e^{-4t} / 4."""

    coordinates = ("x", "y", "t")
    fields = ("u", "v", "p")

    def domain(self):
        box = Rectangle((0, 0), (2 * math.pi, 2 * math.pi), periodic=(True, True))
        return SpaceTime(box, TimeDomain(0.0, 1.0))

    def exact(self, pts):
        x, y, t = pts[:, 0], pts[:, 1], pts[:, 2]
        e = torch.exp(-2 * t)
        return {
            "u": -torch.cos(x) * torch.sin(y) * e,
            "v": torch.sin(x) * torch.cos(y) * e,
            "p": -(torch.cos(2 * x) + torch.cos(2 * y)) * e**2 / 4,
        }


@dataclass(frozen=True)
class ChannelFlow(Problem):
    """Steady fields on the DFG channel (a CSG domain): a test double with a linear 'exact'
    solution u = 1 + x, v = y - 0.2, p = 2 - x."""

    coordinates = ("x", "y")
    fields = ("u", "v", "p")

    def domain(self):
        return Rectangle((0, 0), (2.2, 0.41)) - Disk((0.2, 0.2), 0.05, tag="cylinder")

    def exact(self, pts):
        x, y = pts[:, 0], pts[:, 1]
        return {"u": 1 + x, "v": y - 0.2, "p": 2 - x}


def offset(x):
    """The known error of the test solutions: prediction = reference + offset(x)."""
    return 1e-2 * np.sin(3 * x[:, 0]) + 1e-3


def perturbed(problem):
    ref = problem.reference()

    def predict(points):
        return {k: v + offset(points) for k, v in ref(points).items()}

    return Solution(problem, "test", None, predict)


def read_vtk(path):
    """Points, point arrays and the number of cells of any VTK XML file, by VTK's own readers."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    reader = {
        ".vtu": vtk.vtkXMLUnstructuredGridReader,
        ".vti": vtk.vtkXMLImageDataReader,
        ".vtp": vtk.vtkXMLPolyDataReader,
    }[pathlib.Path(path).suffix]()
    reader.SetFileName(str(path))
    reader.Update()
    out = reader.GetOutput()
    n = out.GetNumberOfPoints()
    pts = np.array([out.GetPoint(i) for i in range(n)])
    pd = out.GetPointData()
    arrays = {
        pd.GetArrayName(i): vtk_to_numpy(pd.GetArray(i)) for i in range(pd.GetNumberOfArrays())
    }
    return pts, arrays, out.GetNumberOfCells(), out


def pvd_entries(path):
    entries = ET.parse(path).getroot().find("Collection").findall("DataSet")
    return [(float(e.get("timestep")), path.parent / e.get("file")) for e in entries]


def check_arrays(arrays, problem, query):
    """Prediction, reference, error and the vectors U, U_reference, U_error at query points."""
    ref = problem.reference()(query)
    for k in problem.fields:
        np.testing.assert_allclose(arrays[f"{k}_reference"], ref[k], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(arrays[k], ref[k] + offset(query), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(arrays[f"{k}_error"], offset(query), rtol=1e-9, atol=1e-13)
    for suffix in ("", "_reference", "_error"):
        vec = arrays["U" + suffix]
        assert vec.shape == (len(query), 3)
        np.testing.assert_array_equal(vec[:, 0], arrays["u" + suffix])
        np.testing.assert_array_equal(vec[:, 1], arrays["v" + suffix])
        np.testing.assert_array_equal(vec[:, 2], 0.0)


def test_mesh_time_series_vtu(tmp_path):
    import meshio

    mesh = MeshGeometry.from_file(DATA / "channel_hole.msh")
    problem = DecayingVortex()
    sol = perturbed(problem)
    times = np.array([0.0, 0.25, 1.0])
    nodes_before, times_before = mesh.points.copy(), times.copy()
    pvd = write_solution(sol, tmp_path / "out" / "vortex.pvd", mesh, times=times)
    np.testing.assert_array_equal(mesh.points, nodes_before)  # inputs unchanged
    np.testing.assert_array_equal(times, times_before)
    entries = pvd_entries(pvd)
    assert [t for t, _ in entries] == times.tolist()
    for t, f in entries:
        assert f.suffix == ".vtu" and f.parent.name == "vortex"
        m = meshio.read(f)  # independent reader
        np.testing.assert_array_equal(m.points[:, :2], mesh.points)
        np.testing.assert_array_equal(m.points[:, 2], 0.0)
        assert [(c.type, len(c.data)) for c in m.cells] == [("triangle", mesh.n_cells)]
        np.testing.assert_array_equal(m.cells[0].data, mesh.cells[0][1])
        query = np.column_stack([mesh.points, np.full(len(mesh.points), t)])
        check_arrays(m.point_data, problem, query)
    pts, arrays, ncells, _ = read_vtk(entries[-1][1])  # and VTK's reader agrees
    assert ncells == mesh.n_cells and np.array_equal(pts[:, :2], mesh.points)
    assert set(arrays) >= {"u", "p_error", "U_reference"}


def test_grid_vti_closes_periodic_axes(tmp_path):
    grid = Grid([0, 0], [2 * math.pi, 2 * math.pi], n=(16, 12), periodic=True)
    problem = DecayingVortex()
    pvd = write_solution(perturbed(problem), tmp_path / "g.pvd", grid, times=[0.5])
    [(t, f)] = pvd_entries(pvd)
    assert t == 0.5 and f.suffix == ".vti"
    pts, arrays, ncells, image = read_vtk(f)
    assert image.GetDimensions() == (17, 13, 1) and ncells == 16 * 12
    np.testing.assert_allclose(image.GetSpacing()[:2], grid.spacing)
    np.testing.assert_allclose(pts[:, 2], 0.0)
    # every VTK point, including the closing column at x = 2 pi, has the solution's values there
    query = np.column_stack([pts[:, :2], np.full(len(pts), 0.5)])
    check_arrays(arrays, problem, query)


def test_csg_domain_is_written_on_its_mesh_by_default(tmp_path):
    import meshio

    problem = ChannelFlow()
    pvd = write_solution(perturbed(problem), tmp_path / "channel.pvd")
    [(t, f)] = pvd_entries(pvd)
    assert t == 0.0 and f.suffix == ".vtu"
    m = meshio.read(f)
    mesh = problem.domain().mesh()
    assert len(m.cells[0].data) == mesh.n_cells
    np.testing.assert_array_equal(m.points[:, :2], mesh.points)
    check_arrays(m.point_data, problem, m.points[:, :2])


def test_point_cloud_vtp_of_collocation_points(tmp_path):
    problem = DecayingVortex()
    points = SpaceTime(Rectangle((0, 0), (1, 1)), TimeDomain(0, 1)).sample_interior(500, rng=0)
    before = points.copy()
    path = write_solution(perturbed(problem), tmp_path / "colloc.vtp", points)
    np.testing.assert_array_equal(points, before)
    pts, arrays, ncells, _ = read_vtk(path)
    np.testing.assert_array_equal(pts[:, :2], points[:, :2])
    np.testing.assert_array_equal(arrays["t"], points[:, 2])
    check_arrays(arrays, problem, points)
    # any named arrays, e.g. residuals, with the same reader round trip
    residual = {"residual_momentum_x": np.cos(points[:, 0]), "grad": points[:, :2] * 2}
    path = write_point_cloud(tmp_path / "res", points, residual, ("x", "y", "t"))
    assert path.suffix == ".vtp"
    _, back, _, _ = read_vtk(path)
    np.testing.assert_array_equal(back["residual_momentum_x"], residual["residual_momentum_x"])
    np.testing.assert_array_equal(back["grad"], residual["grad"])


def test_three_dimensional_velocity_vector(tmp_path):
    import meshio

    @dataclass(frozen=True)
    class Swirl(Problem):
        coordinates = ("x", "y", "z")
        fields = ("u", "v", "w")

        def domain(self):
            return MeshGeometry.from_file(DATA / "box_tet.msh")

        def exact(self, pts):
            return {"u": pts[:, 1], "v": -pts[:, 0], "w": pts[:, 2] ** 2}

    problem = Swirl()
    [(_, f)] = pvd_entries(write_solution(perturbed(problem), tmp_path / "s.pvd"))
    m = meshio.read(f)
    vec = m.point_data["U_reference"]
    np.testing.assert_allclose(vec, np.column_stack([m.points[:, 1], -m.points[:, 0],
                                                     m.points[:, 2] ** 2]), atol=1e-14)  # fmt: skip


def test_bad_targets(tmp_path):
    sol = perturbed(ChannelFlow())
    with pytest.raises(ParameterError, match="steady"):
        write_solution(sol, tmp_path / "a.pvd", MeshGeometry.from_file(DATA / "channel_hole.msh"),
                       times=[0.0])  # fmt: skip
    with pytest.raises(ParameterError, match="cannot be written on the 3D"):
        write_solution(sol, tmp_path / "b.pvd", MeshGeometry.from_file(DATA / "box_tet.msh"))
    with pytest.raises(ParameterError, match="got str"):
        write_solution(sol, tmp_path / "c.pvd", "mesh.msh")
    with pytest.raises(ParameterError, match=r"shape \(n, 2\)"):
        write_solution(sol, tmp_path / "d.vtp", np.zeros((4, 3)))
