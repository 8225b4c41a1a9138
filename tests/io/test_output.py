"""Writers pass write-then-read tests with independent readers; inputs are not changed."""

import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
import vtk
from vtk.util.numpy_support import vtk_to_numpy

import pdekit


@pytest.fixture(scope="module", params=["porous_medium/heat", "navier_stokes/kovasznay"])
def solution(request):
    return pdekit.solve(request.param, solver="pinn", steps=5, verbose=False)


def _read_vts(path):
    reader = vtk.vtkXMLStructuredGridReader()  # VTK's own XML reader, not pyvista's writer
    reader.SetFileName(str(path))
    reader.Update()
    out = reader.GetOutput()
    pts = vtk_to_numpy(out.GetPoints().GetData())
    pd = out.GetPointData()
    arrays = {
        pd.GetArrayName(i): vtk_to_numpy(pd.GetArray(i)) for i in range(pd.GetNumberOfArrays())
    }
    return pts, arrays


def test_vtk_roundtrip(solution, tmp_path):
    grid = solution.problem.evaluation_grid()
    before = grid.points().copy()
    pvd = solution.to_vtk(tmp_path / "sol.pvd")
    assert np.array_equal(grid.points(), before)
    entries = ET.parse(pvd).getroot().find("Collection").findall("DataSet")
    times = grid.axes.get("t", np.array([0.0]))
    assert [float(e.get("timestep")) for e in entries] == pytest.approx(times.tolist())
    # check the last frame against a direct evaluation at the points VTK reports
    last = entries[-1]
    pts, arrays = _read_vts(tmp_path / last.get("file"))
    names = set(solution.problem.fields)
    names |= {f"{k}_reference" for k in names} | {f"{k}_error" for k in names}
    assert names <= set(arrays)
    ncoord = len(solution.problem.spatial_coordinates)
    query = pts[:, :ncoord]
    if solution.problem.time_dependent:
        query = np.column_stack([query, np.full(len(query), float(last.get("timestep")))])
    direct = solution(query)
    ref = solution.problem.reference()(query)
    for k in solution.problem.fields:
        assert np.allclose(arrays[k], direct[k], rtol=1e-6, atol=1e-6)
        assert np.allclose(arrays[f"{k}_reference"], ref[k], rtol=1e-6, atol=1e-6)
        assert np.allclose(arrays[f"{k}_error"], direct[k] - ref[k], atol=1e-6)
    if {"u", "v"} <= names:
        assert arrays["U"].shape == (len(pts), 3)
        assert np.allclose(arrays["U"][:, 1], arrays["v"], atol=1e-6)


def test_pyvista_reads_the_collection(solution, tmp_path):
    import pyvista as pv

    pvd = solution.to_vtk(tmp_path / "sol.pvd")
    reader = pv.get_reader(str(pvd))
    n = len(solution.problem.evaluation_grid().axes.get("t", [0]))
    assert reader.number_time_points == n
    mesh = reader.read()[0]
    assert solution.problem.fields[0] in mesh.point_data


def test_hdf5_fields_layout(solution, tmp_path):
    path = solution.to_hdf5(tmp_path / "fields.h5")
    grid = solution.problem.evaluation_grid()
    on = solution.on(grid)
    with h5py.File(path, "r") as f:
        for c, axis in grid.axes.items():
            assert np.array_equal(f["grid"][c][()], axis)
        for k in solution.problem.fields:
            data = f[k][()]
            expect = np.moveaxis(on[k], -1, 0) if "t" in grid.axes else on[k]
            assert np.array_equal(data, expect)
            # on(time_first=True) is the file's order itself (one order, said)
            assert np.array_equal(solution.on(grid, time_first=True)[k], data)
            assert f"{k}_reference" in f and f"{k}_error" in f


def test_plot_writes_png(solution, tmp_path):
    path = solution.plot(tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_points_outside_the_domain_warn_once(solution):
    """Inside the domain: no warning; outside on a bounded axis: one ExtrapolationWarning per
    solution naming the axis (periodic axes wrap and are not judged)."""
    import warnings

    from pdekit.solution import ExtrapolationWarning

    dom = solution.problem.domain()
    lo, hi = np.asarray(dom.bounds, dtype=float)
    inside = (lo + hi)[None] / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        solution(inside)
    periodic = tuple(dom.periodic) or (False,) * len(lo)
    axis = next(i for i, p in enumerate(periodic) if not p)
    outside = inside.copy()
    outside[0, axis] = hi[axis] + 1.0
    solution._warned_outside = False
    with pytest.warns(ExtrapolationWarning, match=solution.problem.coordinates[axis]):
        solution(outside)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        solution(outside)  # once per solution


def test_plot_scales_show_what_the_data_holds(solution, tmp_path):
    """Prediction and reference share one colour scale spanning both (a prediction outside the
    reference's range is not clamped into it); a loss that goes negative (a log-likelihood)
    gets a symlog axis instead of vanishing from a log one."""
    from pdekit.io.plot import color_limits, loss_scale

    assert color_limits(np.array([-1.383, 0.5]), np.array([0.0, 1.0])) == (-1.383, 1.0)
    assert loss_scale([[1e-3, 2e-2]]) == ("log", {})
    scale, opts = loss_scale([[-472.0, -3.0], [0.5, 2e-3]])
    assert scale == "symlog" and opts["linthresh"] == 2e-3
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    saved = solution.history
    solution.history = {"step": [0, 1], "loss": [-472.0, -480.0], "loss/kl": [0.1, 0.05]}
    try:
        path = solution.plot(tmp_path / "neg.png")
    finally:
        solution.history = saved
    assert path.stat().st_size > 1000 and plt.get_fignums() == before


def test_a_domain_with_a_hole_is_drawn_as_itself(solution, tmp_path, monkeypatch):
    """The plane's pixels outside the spatial domain (here a disk cut from the box) are left
    blank: the mask has the domain's area to O(h), and the plot draws with it."""
    from pdekit.geometries import Rectangle
    from pdekit.geometries.csg import Disk
    from pdekit.io.plot import plane_inside

    problem = solution.problem
    grid = problem.evaluation_grid()
    if "t" in grid.coordinates[:2]:
        assert plane_inside(problem, grid) is None  # a space-time plane: nothing to mask
        return
    assert plane_inside(problem, grid) is None  # the box itself: every pixel inside
    box = problem.domain()
    lo, hi = np.asarray(box.lo, float), np.asarray(box.hi, float)
    centre, r = (lo + hi) / 2, 0.2 * float(np.min(hi - lo))
    holed = Rectangle(tuple(lo), tuple(hi)) - Disk(tuple(centre), r)
    monkeypatch.setattr(type(problem), "domain", lambda self: holed)
    inside = plane_inside(problem, grid)
    assert inside is not None
    area = float(np.prod(hi - lo))
    h = float(np.max((hi - lo) / (np.array(inside.shape) - 1)))
    want = 1 - np.pi * r**2 / area
    assert abs(inside.mean() - want) < 4 * 2 * np.pi * r * h / area  # O(h): the circle's cells
    cx = np.argmin(np.abs(grid.axes[grid.coordinates[0]] - centre[0]))
    cy = np.argmin(np.abs(grid.axes[grid.coordinates[1]] - centre[1]))
    assert not inside[cx, cy] and inside[0, 0]
    assert solution.plot(tmp_path / "holed.png").stat().st_size > 1000
