"""Fields on a grid as HDF5, in a layout close to PDEBench's.

Layout::

    /grid/x, /grid/y, /grid/z   spatial axes present in the problem (1D arrays)
    /grid/t                     times (time-dependent problems only)
    /<field>                    prediction, shape (nt, nx[, ny[, nz]]) -- time first, as PDEBench
    /<field>_reference          reference on the same grid (when the problem has one)
    /<field>_error              prediction minus reference
    attrs: problem, problem_params (JSON), solver, coordinates, fields, pdekit_version

Steady problems drop the time axis: ``/<field>`` has shape (nx[, ny[, nz]]).

The file is built in memory and written through a temporary file renamed into place
(:func:`pdekit.checkpoints.sealed.write_atomically`): libhdf5 never writes to the disk, so a full
disk is one :class:`~pdekit.errors.OutputError` naming ENOSPC, with no partial file left.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import h5py
import numpy as np

from pdekit._version import __version__
from pdekit.checkpoints.sealed import os_error_text, write_atomically
from pdekit.errors import OutputError
from pdekit.geometries.grid import TensorGrid
from pdekit.io.grids import solution_arrays


def write_fields(solution, path: str | os.PathLike, grid: TensorGrid | None = None) -> Path:
    """Write the solution's fields on ``grid`` (default: the evaluation grid) to ``path``.

    Raises OutputError naming the path and the reason (a full disk: ENOSPC); nothing is left
    under ``path`` or beside it then.
    """
    grid = grid or solution.problem.evaluation_grid()
    arrays = solution_arrays(solution, grid)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {path.parent}: {os_error_text(exc)}") from None
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["problem"] = solution.problem.name
        f.attrs["problem_params"] = json.dumps(solution.problem.params())
        f.attrs["solver"] = solution.solver
        f.attrs["coordinates"] = json.dumps(list(grid.coordinates))
        f.attrs["fields"] = json.dumps(list(solution.problem.fields))
        f.attrs["pdekit_version"] = __version__
        g = f.create_group("grid")
        for name, axis in grid.axes.items():
            g.create_dataset(name, data=axis)
        for name, values in arrays.items():
            data = np.moveaxis(values, -1, 0) if "t" in grid.axes else values
            f.create_dataset(name, data=data)
    return write_atomically(path, (buf.getbuffer(),), what="fields file")
