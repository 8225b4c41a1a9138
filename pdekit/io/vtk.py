"""VTK output for ParaView (pyvista): structured grids per time step and a ``.pvd`` collection.

A space-time solution on a tensor grid is written as one ``.vts`` structured grid per time step
(``<stem>/<stem>_0000.vts``, ...) in a folder beside a ``.pvd`` file listing them with their
physical times; a steady solution as one ``.vts`` plus a ``.pvd`` with the single time 0.
Point arrays carry the problem's field names, ``{field}_reference`` and ``{field}_error``;
velocity components (u, v[, w]) are also written as one 3-component vector ``U`` (and
``U_reference``) so ParaView's glyph and stream-tracer filters work directly.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pdekit.geometries.grid import TensorGrid
from pdekit.io.grids import solution_arrays, space_time


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
    comps = [c for c in ("u", "v", "w") if c in fields]
    if len(comps) < 2:
        return
    for suffix in ("", "_reference"):
        names = [c + suffix for c in comps]
        if all(n in arrays for n in names):
            vec = [arrays[n] for n in names]
            while len(vec) < 3:
                vec.append(np.zeros_like(vec[0]))
            arrays["U" + suffix] = np.stack(vec, axis=-1)


def write_pvd(path: str | os.PathLike, entries: Sequence[tuple[float, str]]) -> Path:
    """A ParaView collection file listing (time, relative file name) pairs."""
    root = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    coll = ET.SubElement(root, "Collection")
    for t, name in entries:
        ET.SubElement(coll, "DataSet", timestep=repr(float(t)), group="", part="0", file=name)
    path = Path(path)
    ET.indent(root)
    ET.ElementTree(root).write(path, xml_declaration=True, encoding="utf-8")
    return path


def write_time_series(
    path: str | os.PathLike,
    space: TensorGrid,
    times: np.ndarray | None,
    arrays: Mapping[str, np.ndarray],
    fields: Sequence[str] = (),
) -> Path:
    """Write grid arrays (shaped space.shape + (len(times),) or space.shape) as .vts + .pvd."""
    path = Path(path)
    if path.suffix != ".pvd":
        path = path.with_suffix(".pvd")
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    data_dir = path.parent / stem  # the per-step files live in a folder named like the .pvd
    data_dir.mkdir(parents=True, exist_ok=True)
    steps = [None] if times is None else list(range(len(times)))
    entries = []
    for k in steps:
        grid = structured_grid(space)
        frame = {n: (a if k is None else a[..., k]) for n, a in arrays.items()}
        _add_vectors(frame, fields)
        for name, values in frame.items():
            if values.ndim == len(space.shape) + 1:  # vector
                grid.point_data[name] = values.reshape(-1, values.shape[-1], order="F")
            else:
                grid.point_data[name] = _point_array(values)
        fname = f"{stem}.vts" if k is None else f"{stem}_{k:04d}.vts"
        grid.save(data_dir / fname)
        entries.append((0.0 if k is None else float(times[k]), f"{stem}/{fname}"))
    return write_pvd(path, entries)


def write_solution(solution, path: str | os.PathLike, grid: TensorGrid | None = None) -> Path:
    """Write a Solution on ``grid`` (default: the problem's evaluation grid); returns the .pvd."""
    grid = grid or solution.problem.evaluation_grid()
    space, times = space_time(grid)
    arrays = solution_arrays(solution, grid)
    return write_time_series(path, space, times, arrays, solution.problem.fields)
