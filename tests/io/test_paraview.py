"""A real client: ParaView's own Python (pvpython) opens our .pvd collections, steps through time
and reports array names, ranges, time steps and sizes, which must match what we wrote.

Skipped where pvpython is absent, unless PDEKIT_REQUIRE_PVPYTHON=1 (set by .ci/run, which
installs Debian's python3-paraview): then its absence fails the test.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from pdekit.geometries import Grid, MeshGeometry, Rectangle, SpaceTime, TimeDomain
from pdekit.io.vtk import write_solution
from pdekit.problems.base import Problem
from pdekit.solution import Solution

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
PVPYTHON = shutil.which("pvpython")
REQUIRED = os.environ.get("PDEKIT_REQUIRE_PVPYTHON") == "1"

# runs inside pvpython: open the collection, visit every time step, report what ParaView sees
CLIENT = r"""
import json, sys
from paraview import servermanager
from paraview.simple import PVDReader

reader = PVDReader(FileName=sys.argv[1])
reader.UpdatePipelineInformation()
times = list(reader.TimestepValues) if reader.TimestepValues else []
steps = []
for t in times or [None]:
    if t is None:
        reader.UpdatePipeline()
    else:
        reader.UpdatePipeline(t)
    data = servermanager.Fetch(reader)
    pd = data.GetPointData()
    arrays = {}
    for i in range(pd.GetNumberOfArrays()):
        a = pd.GetArray(i)
        comps = a.GetNumberOfComponents()
        arrays[a.GetName()] = {
            "components": comps,
            "ranges": [list(a.GetRange(c)) for c in range(comps)],
        }
    steps.append({
        "time": t,
        "class": data.GetClassName(),
        "points": data.GetNumberOfPoints(),
        "cells": data.GetNumberOfCells(),
        "arrays": arrays,
    })
print("PDEKIT-JSON " + json.dumps({"times": times, "steps": steps}))
"""


@dataclass(frozen=True)
class DecayingVortex(Problem):
    """Taylor-Green vortex (a test double): u = -cos x sin y e^{-2t}, v = sin x cos y e^{-2t},
    p = -(cos 2x + cos 2y) e^{-4t} / 4."""

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


def run_client(pvd: pathlib.Path) -> dict:
    if PVPYTHON is None:
        if REQUIRED:
            pytest.fail("PDEKIT_REQUIRE_PVPYTHON=1 but pvpython is not on PATH")
        pytest.skip("pvpython (ParaView's Python, Debian package python3-paraview) not installed")
    script = pvd.parent / "client.py"
    script.write_text(CLIENT)
    proc = subprocess.run(
        [PVPYTHON, "--force-offscreen-rendering", str(script), str(pvd)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("PDEKIT-JSON ")]
    assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(line[-1][len("PDEKIT-JSON ") :])


def expected_ranges(problem, nodes, t):
    """Per array: the (min, max) of each component, from the exact solution (prediction = exact,
    so errors are 0)."""
    ref = problem.reference()(np.column_stack([nodes, np.full(len(nodes), t)]))
    out = {}
    for k, v in ref.items():
        for name in (k, f"{k}_reference"):
            out[name] = [[v.min(), v.max()]]
        out[f"{k}_error"] = [[0.0, 0.0]]
    for suffix in ("", "_reference"):
        out["U" + suffix] = [out["u" + suffix][0], out["v" + suffix][0], [0.0, 0.0]]
    out["U_error"] = [[0.0, 0.0]] * 3
    return out


@pytest.mark.parametrize("target", ["mesh", "grid"])
def test_paraview_reads_our_time_series(tmp_path, target):
    problem = DecayingVortex()
    sol = Solution(problem, "exact", None, problem.reference())
    times = [0.0, 0.1, 0.5, 1.0]
    if target == "mesh":
        where = MeshGeometry.from_file(DATA / "channel_hole.msh")
        nodes, cells, cls = where.points, where.n_cells, "vtkUnstructuredGrid"
    else:
        where = Grid([0, 0], [2 * math.pi, 2 * math.pi], n=(24, 16), periodic=True)
        axes = [np.r_[a, 2 * math.pi] for a in where.axes("node").values()]  # closed periodic
        nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        cells, cls = 24 * 16, "vtkImageData"
    pvd = write_solution(sol, tmp_path / f"{target}.pvd", where, times=times)
    seen = run_client(pvd)
    assert seen["times"] == pytest.approx(times, abs=1e-15)
    assert len(seen["steps"]) == len(times)
    for t, step in zip(times, seen["steps"]):
        assert step["class"] == cls
        assert step["points"] == len(nodes) and step["cells"] == cells
        expected = expected_ranges(problem, nodes, t)
        assert set(step["arrays"]) == set(expected)
        for name, ranges in expected.items():
            got = step["arrays"][name]
            assert got["components"] == len(ranges)
            np.testing.assert_allclose(got["ranges"], ranges, rtol=1e-12, atol=1e-15)
