"""Benchmark: sampling and point location on an unstructured mesh, against baselines in the
same run.

Mesh: the Delaunay tetrahedralisation (scipy/Qhull) of random points in the unit cube (or
triangulation of the unit square with ``--dim 2``), with about ``--cells`` cells. Being Delaunay,
it can also be searched by ``scipy.spatial.Delaunay.find_simplex``.

* sampling ``--samples`` interior points: ``MeshGeometry.sample_interior`` (sobol and
  uniform) against the plain numpy recipe (``rng.choice`` of cells by volume + Dirichlet(1)
  barycentric weights) and rejection from the bounding box with ``find_simplex``;
* locating ``--points`` random points: pdekit's numba kernel (bounding-volume grid, threads
  from ``NUMBA_NUM_THREADS``) against ``Delaunay.find_simplex`` and
  ``pyvista.DataSet.find_containing_cell`` (VTK's static cell locator, one Python call per
  point). Locator construction is timed apart from queries; numba compilation is excluded
  by a warm-up call.

Run (full size: about a minute on one core)::

    NUMBA_NUM_THREADS=1 python benchmarks/geometry.py
    python benchmarks/geometry.py --cells 20000 --points 100000 --samples 100000  # quick check

Writes ``benchmarks/results/geometry.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import numba
import numpy as np
from scipy.spatial import Delaunay

from pdekit.geometries.mesh import MeshGeometry

ROOT = pathlib.Path(__file__).resolve().parent


def best_of(repeat, fn):
    """Fastest of ``repeat`` runs (seconds) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def build_mesh(cells: int, dim: int, seed: int):
    per_node = 6.5 if dim == 3 else 2.0  # Delaunay cells per node of random points
    rng = np.random.default_rng(seed)
    nodes = rng.random((int(cells / per_node), dim))
    tri = Delaunay(nodes)
    cell_type = "tetra" if dim == 3 else "triangle"
    return tri, MeshGeometry(nodes, [(cell_type, tri.simplices)], source="<benchmark>")


def numpy_sampler(mesh, n, rng):
    """The plain recipe: cells by volume with rng.choice, Dirichlet(1) barycentric weights."""
    which = rng.choice(len(mesh.simplices), size=n, p=mesh.simplex_volume / mesh.volume())
    bary = rng.dirichlet(np.ones(mesh.dim + 1), size=n)
    return np.einsum("ij,ijk->ik", bary, mesh.points[mesh.simplices[which]])


def rejection_sampler(tri, n, rng):
    """Rejection from the bounding box with scipy's find_simplex."""
    lo, hi = tri.points.min(axis=0), tri.points.max(axis=0)
    out, have = [], 0
    while have < n:
        x = lo + (hi - lo) * rng.random((int(1.3 * (n - have)) + 64, len(lo)))
        x = x[tri.find_simplex(x) >= 0]
        out.append(x)
        have += len(x)
    return np.concatenate(out)[:n]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cells", type=float, default=2e5, help="cells of the mesh (default 2e5)")
    p.add_argument("--points", type=float, default=1e6, help="points to locate (default 1e6)")
    p.add_argument("--samples", type=float, default=1e6, help="points to sample (default 1e6)")
    p.add_argument("--dim", type=int, default=3, choices=(2, 3))
    p.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    p.add_argument("--out", default=str(ROOT / "results" / "geometry.json"))
    args = p.parse_args(argv)
    n_pts, n_samp = int(args.points), int(args.samples)

    t0 = time.perf_counter()
    tri, mesh = build_mesh(args.cells, args.dim, seed=0)
    t_mesh = time.perf_counter() - t0
    mesh.locate(mesh.points[:10])  # warm-up: numba compilation (or cache load) and build
    t_build, _ = best_of(1, lambda: MeshGeometry(mesh.points, mesh.cells).locate(mesh.points[:1]))

    rng = np.random.default_rng(1)
    timings = {}
    timings["sample_pdekit_sobol"], _ = best_of(
        args.repeat, lambda: mesh.sample_interior(n_samp, rng=rng, method="sobol")
    )
    timings["sample_pdekit_uniform"], _ = best_of(
        args.repeat, lambda: mesh.sample_interior(n_samp, rng=rng, method="uniform")
    )
    timings["sample_numpy_choice_dirichlet"], _ = best_of(
        args.repeat, lambda: numpy_sampler(mesh, n_samp, rng)
    )
    timings["sample_scipy_rejection_find_simplex"], _ = best_of(
        args.repeat, lambda: rejection_sampler(tri, n_samp, rng)
    )

    lo, hi = mesh.bounds
    queries = lo + (hi - lo) * np.random.default_rng(2).random((n_pts, args.dim))
    timings["locate_pdekit_numba"], ours = best_of(args.repeat, lambda: mesh.locate(queries))
    timings["locate_scipy_find_simplex"], theirs = best_of(
        args.repeat, lambda: tri.find_simplex(queries)
    )
    grid = mesh.to_pyvista()
    q3 = np.column_stack([queries, np.zeros(n_pts)]) if args.dim == 2 else queries
    grid.find_containing_cell(q3[:10])  # builds pyvista's cached static cell locator
    timings["locate_pyvista_find_containing_cell"], vtk_cells = best_of(
        1, lambda: grid.find_containing_cell(q3)
    )

    ratios = {
        "sample_numpy_over_pdekit_uniform": timings["sample_numpy_choice_dirichlet"]
        / timings["sample_pdekit_uniform"],
        "sample_rejection_over_pdekit_uniform": timings["sample_scipy_rejection_find_simplex"]
        / timings["sample_pdekit_uniform"],
        "locate_scipy_over_pdekit": timings["locate_scipy_find_simplex"]
        / timings["locate_pdekit_numba"],
        "locate_pyvista_over_pdekit": timings["locate_pyvista_find_containing_cell"]
        / timings["locate_pdekit_numba"],
    }
    result = {
        "benchmark": "geometry",
        "what": "sampling interior points and locating points in an unstructured Delaunay mesh",
        "dim": args.dim,
        "cells": len(mesh.simplices),
        "nodes": len(mesh.points),
        "samples": n_samp,
        "points": n_pts,
        "repeat_best_of": args.repeat,
        "seconds": timings,
        "seconds_mesh_build_scipy_delaunay": t_mesh,
        "seconds_pdekit_meshgeometry_and_locator_build": t_build,
        "speedup_baseline_over_pdekit": ratios,
        "agreement": {
            "pdekit_vs_scipy_same_simplex": float(np.mean(ours == theirs)),
            "pdekit_vs_pyvista_same_cell": float(np.mean(ours == vtk_cells)),
            "inside_fraction": float(np.mean(ours >= 0)),
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
