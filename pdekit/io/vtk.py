"""VTK output for ParaView (pyvista): one dataset per time step and a ``.pvd`` collection.

Where a solution is written decides the format:

=====================================================  ==========================================
``TensorGrid`` (default for box domains)               ``.vts`` structured grid
:class:`~pdekit.geometries.grid.Grid`                  ``.vti`` image data (values at the nodes)
:class:`~pdekit.geometries.mesh.MeshGeometry`          ``.vtu`` unstructured grid (nodal values)
CSG domains / primitives (default for them)            ``.vtu`` on ``domain.mesh()``
an array of points (n, len(coordinates))               ``.vtp`` point cloud (one file, no .pvd)
=====================================================  ==========================================

A time series is one file per time step (``<stem>/<stem>_0000.vts``, ...) in a folder beside a
``.pvd`` file listing them with their physical times; a steady solution is one file plus a
``.pvd`` with the single time 0. Point arrays carry the problem's field names,
``{field}_reference`` and ``{field}_error``; velocity components (u, v[, w]) are also written
as one 3-component vector ``U`` (with ``U_reference`` and ``U_error``) so ParaView's glyph and
stream-tracer filters work directly.

Every file is serialised in memory by VTK and written through a temporary file renamed into
place (:func:`pdekit.checkpoints.sealed.write_atomically`): a full disk gives one
:class:`~pdekit.errors.OutputError` naming ENOSPC instead of VTK's error lines, the frames this
call wrote are removed, and no empty or partial file (``.pvd`` included) is left behind.
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pdekit.checkpoints.sealed import os_error_text, write_atomically
from pdekit.errors import OutputError, ParameterError
from pdekit.geometries.grid import Grid, TensorGrid
from pdekit.geometries.mesh import MeshGeometry
from pdekit.geometries.primitives import Hyperrectangle
from pdekit.io.grids import point_arrays, solution_arrays, space_time

#: names of velocity components, in order, and the vector they form
VELOCITY = ("u", "v", "w")
VECTOR = "U"


def structured_grid(space: TensorGrid):
    """A pyvista StructuredGrid of a 1D/2D/3D tensor grid (missing axes set to 0)."""
    import pyvista as pv

    axes = list(space.axes.values())
    while len(axes) < 3:
        axes.append(np.zeros(1))
    x, y, z = np.meshgrid(*axes[:3], indexing="ij")
    return pv.StructuredGrid(x, y, z)


def _point_array(values: np.ndarray) -> np.ndarray:
    # pyvista orders structured-grid points with x fastest: Fortran order of the 'ij' array
    return np.asarray(values).reshape(-1, order="F")


def _add_vectors(arrays: dict[str, np.ndarray], fields: Sequence[str]) -> None:
    """Add ``U`` (and ``U_reference``, ``U_error``): velocity components u, v[, w] as one
    3-component array (missing components 0), when the fields hold at least u and v."""
    comps = [c for c in VELOCITY if c in fields]
    if comps[:2] != ["u", "v"]:
        return
    for suffix in ("", "_reference", "_error"):
        names = [c + suffix for c in comps]
        if all(n in arrays for n in names):
            vec = [np.asarray(arrays[n]) for n in names]
            while len(vec) < 3:
                vec.append(np.zeros_like(vec[0]))
            arrays[VECTOR + suffix] = np.stack(vec, axis=-1)


def write_pvd(path: str | os.PathLike, entries: Sequence[tuple[float, str]]) -> Path:
    """A ParaView collection file listing (time, relative file name) pairs."""
    root = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    coll = ET.SubElement(root, "Collection")
    for t, name in entries:
        ET.SubElement(coll, "DataSet", timestep=repr(float(t)), group="", part="0", file=name)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return write_atomically(Path(path), (data,), what="ParaView collection")


#: VTK XML writer class (in ``vtkmodules.vtkIOXML``) of each file extension
_XML_WRITERS = {
    ".vts": "vtkXMLStructuredGridWriter",
    ".vti": "vtkXMLImageDataWriter",
    ".vtu": "vtkXMLUnstructuredGridWriter",
    ".vtp": "vtkXMLPolyDataWriter",
}


def save_dataset(dataset, path: Path) -> Path:
    """Write a pyvista dataset as the VTK XML file ``path`` (binary, zlib), atomically.

    VTK serialises it in memory and Python writes the bytes, so a failed write is one
    OutputError (ENOSPC named) with nothing left under ``path``, not VTK's error output and a
    truncated file.
    """
    from vtkmodules import vtkIOXML

    writer = getattr(vtkIOXML, _XML_WRITERS[path.suffix])()
    writer.SetInputData(dataset)
    writer.SetDataModeToBinary()
    writer.SetCompressorTypeToZLib()
    writer.SetWriteToOutputString(True)
    if not writer.Write():
        raise OutputError(f"cannot write {path}: VTK could not serialise the dataset")
    data = writer.GetOutputString().encode("utf-8")
    return write_atomically(path, (data,), what="VTK file")


def _pvd_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix != ".pvd":
        path = path.with_suffix(".pvd")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_frames(path: Path, times, make_frame, ext: str) -> Path:
    """Save ``make_frame(k)`` (a pyvista dataset) for each time step; list them in the .pvd."""
    stem = path.stem
    data_dir = path.parent / stem  # the per-step files live in a folder named like the .pvd
    created = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {data_dir}: {os_error_text(exc)}") from None
    steps = [None] if times is None else list(range(len(times)))
    entries, written = [], []
    try:
        for k in steps:
            fname = f"{stem}{ext}" if k is None else f"{stem}_{k:04d}{ext}"
            written.append(save_dataset(make_frame(k), data_dir / fname))
            entries.append((0.0 if k is None else float(times[k]), f"{stem}/{fname}"))
        return write_pvd(path, entries)
    except BaseException:  # a full disk: free what this call wrote; no partial output stays
        for p in written:
            p.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):  # not empty: files of someone else's
                data_dir.rmdir()
        raise


def write_time_series(
    path: str | os.PathLike,
    space: TensorGrid,
    times: np.ndarray | None,
    arrays: Mapping[str, np.ndarray],
    fields: Sequence[str] = (),
) -> Path:
    """Write grid arrays (shaped space.shape + (len(times),) or space.shape) as .vts + .pvd."""

    def frame(k):
        grid = structured_grid(space)
        values = {n: (a if k is None else a[..., k]) for n, a in arrays.items()}
        _add_vectors(values, fields)
        for name, v in values.items():
            if v.ndim == len(space.shape) + 1:  # vector
                grid.point_data[name] = v.reshape(-1, v.shape[-1], order="F")
            else:
                grid.point_data[name] = _point_array(v)
        return grid

    return _write_frames(_pvd_path(path), times, frame, ".vts")


def write_node_series(
    path: str | os.PathLike,
    where: Grid | MeshGeometry,
    times: np.ndarray | None,
    arrays_at,
    fields: Sequence[str] = (),
) -> Path:
    """Nodal values on a Grid (.vti) or a mesh (.vtu), one file per time step, and a .pvd.

    ``arrays_at(nodes, t)`` returns ``{name: (n_nodes,) array}`` at the nodes (t is None for a
    steady problem); node order is that of ``where.points("node")`` / ``where.points``.
    """
    if isinstance(where, Grid):
        nodes, shape, ext = where.points("node"), where.shape_of("node"), ".vti"
    else:
        nodes, shape, ext = where.points, None, ".vtu"

    def frame(k):
        values = dict(arrays_at(nodes, None if k is None else float(times[k])))
        _add_vectors(values, fields)
        if shape is not None:
            shaped = {n: v.reshape(shape + v.shape[1:]) for n, v in values.items()}
            return where.to_pyvista(point_data=shaped)
        dataset = where.to_pyvista()
        for name, v in values.items():
            dataset.point_data[name] = v
        return dataset

    return _write_frames(_pvd_path(path), times, frame, ext)


def write_point_cloud(
    path: str | os.PathLike,
    points: np.ndarray,
    arrays: Mapping[str, np.ndarray],
    coordinates: Sequence[str],
    fields: Sequence[str] = (),
) -> Path:
    """A ``.vtp`` point cloud: e.g. residuals or predictions at collocation points.

    The spatial columns of ``points`` (all but ``"t"``) are the positions (z = 0 below 3D);
    a ``t`` column becomes a point array ``t``. ``arrays``: ``{name: (n,) or (n, k)}``.
    """
    import pyvista as pv

    points = np.asarray(points, dtype=float)
    coordinates = tuple(coordinates)
    if points.ndim != 2 or points.shape[1] != len(coordinates):
        raise ParameterError(
            f"points must have shape (n, {len(coordinates)}) with columns {coordinates}; "
            f"got {points.shape}"
        )
    spatial = [i for i, c in enumerate(coordinates) if c != "t"]
    if len(spatial) > 3:
        raise ParameterError(f"a point cloud has at most 3 spatial coordinates; got {coordinates}")
    xyz = np.zeros((len(points), 3))
    xyz[:, : len(spatial)] = points[:, spatial]
    cloud = pv.PolyData(xyz)
    values = {n: np.asarray(v) for n, v in arrays.items()}
    _add_vectors(values, fields)
    if "t" in coordinates:
        values.setdefault("t", points[:, coordinates.index("t")])
    for name, v in values.items():
        if len(v) != len(points):
            raise ParameterError(f"array {name!r} has {len(v)} rows for {len(points)} points")
        cloud.point_data[name] = v
    path = Path(path)
    path = path if path.suffix == ".vtp" else path.with_suffix(".vtp")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_dataset(cloud, path)


def _default_where(problem):
    """The problem's evaluation grid for box domains, else a mesh of its (spatial) domain."""
    domain = problem.domain()
    space = getattr(domain, "space", domain)
    if isinstance(space, MeshGeometry):
        return space
    if isinstance(space, Hyperrectangle) or not hasattr(space, "mesh"):
        return problem.evaluation_grid()
    return space


def write_solution(
    solution,
    path: str | os.PathLike,
    grid=None,
    times: Sequence[float] | None = None,
) -> Path:
    """Write a Solution for ParaView; returns the ``.pvd`` (or the ``.vtp`` of a point cloud).

    Parameters
    ----------
    grid:
        where to write (see the module table): a TensorGrid, Grid, MeshGeometry, a domain with
        ``mesh()``, or points (n, len(coordinates)); default: the problem's evaluation grid for
        box domains, a mesh of the domain otherwise.
    times:
        output times of a time-dependent problem on a Grid, mesh or domain (default: the times
        of the problem's evaluation grid). A TensorGrid carries its own times.
    """
    problem = solution.problem
    where = grid if grid is not None else _default_where(problem)
    fields = problem.fields
    if isinstance(where, TensorGrid):
        space, grid_times = space_time(where)
        return write_time_series(path, space, grid_times, solution_arrays(solution, where), fields)
    if isinstance(where, np.ndarray):
        if where.ndim != 2 or where.shape[1] != len(problem.coordinates):
            raise ParameterError(
                f"points must have shape (n, {len(problem.coordinates)}) with columns "
                f"{problem.coordinates}; got {where.shape}"
            )
        arrays = point_arrays(solution, where)
        return write_point_cloud(path, where, arrays, problem.coordinates, fields)
    if not isinstance(where, (Grid, MeshGeometry)):
        if not hasattr(where, "mesh"):
            raise ParameterError(
                "write a solution on a TensorGrid, Grid, MeshGeometry, a domain with mesh(), "
                f"or an array of points; got {type(where).__name__}"
            )
        where = where.mesh()
    if len(problem.spatial_coordinates) != where.dim:
        raise ParameterError(
            f"{problem.name or type(problem).__name__} has spatial coordinates "
            f"{problem.spatial_coordinates}; it cannot be written on the {where.dim}D {where!r}"
        )
    if problem.time_dependent:
        times = np.asarray(times if times is not None else problem.evaluation_grid().axes["t"])
    elif times is not None:
        raise ParameterError(f"{problem.name or 'this problem'} is steady: it has no times")

    def arrays_at(nodes, t):
        pts = nodes if t is None else np.column_stack([nodes, np.full(len(nodes), t)])
        return point_arrays(solution, pts)

    return write_node_series(path, where, times, arrays_at, fields)
