"""Your own mesh: write a triangle mesh of an L-shaped domain with meshio, read it with
``MeshGeometry.from_file``, solve the heat equation on it and write VTK for ParaView.

``porous_medium/heat_mesh`` (u_t = k lap u with a manufactured exact solution) takes any mesh
file meshio reads as its ``mesh`` parameter; its initial and Dirichlet data come from the exact
solution on every boundary tag. The output is a ``.pvd`` time series of ``.vtu`` files on the
mesh's triangles: open ``heat_L.pvd`` in ParaView, *Apply*, and play the time steps (arrays
``u``, ``u_reference``, ``u_error``). For a shipped mesh instead: ``pdekit.meshes.mesh_path(
"box_with_hole")`` (3D, for ``dim=3`` or ``navier_stokes/beltrami``).

Run:  python examples/your_own_mesh.py [OUT_DIR]    (default out/your_own_mesh; ~3 min on one core)
"""

import sys
from collections import Counter
from pathlib import Path

import meshio
import numpy as np

import pdekit
from pdekit.geometries import MeshGeometry


def write_l_shape(path, n=8):
    """[0, 1]^2 minus [0.5, 1]^2 in triangles (n cells per unit length), its boundary lines
    tagged ``notch`` (the two edges of the re-entrant corner) and ``outer``; gmsh 2.2 format."""
    kept = [(i, j) for i in range(n) for j in range(n) if i < n // 2 or j < n // 2]
    corners = sorted({(i + di, j + dj) for i, j in kept for di in (0, 1) for dj in (0, 1)})
    index = {ij: k for k, ij in enumerate(corners)}  # lattice (i, j) -> node number
    triangles = []
    for i, j in kept:  # each square in two triangles, counter-clockwise
        a, b, c, d = (index[p] for p in [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)])
        triangles += [(a, b, c), (a, c, d)]
    edges = Counter(tuple(sorted(e)) for t in triangles for e in [t[:2], t[1:], (t[2], t[0])])
    lines = np.array([e for e, count in edges.items() if count == 1])  # on one triangle only
    points = np.array(corners, dtype=float) / n
    notch = (points[lines] >= 0.5).all(axis=(1, 2))  # both ends in the removed quarter's corner
    ids = np.where(notch, 2, 1)  # gmsh physical ids, named below
    zeros = np.zeros(len(triangles), dtype=int)
    mesh = meshio.Mesh(
        points,
        [("line", lines), ("triangle", np.array(triangles))],
        cell_data={"gmsh:physical": [ids, zeros], "gmsh:geometrical": [ids, zeros]},
        field_data={"outer": np.array([1, 1]), "notch": np.array([2, 1])},  # name: [id, dim]
    )
    meshio.write(path, mesh, file_format="gmsh22", binary=False)
    return Path(path)


def main(out="out/your_own_mesh", steps=3000, config=None, verbose=True):
    """Write the mesh, solve on it, write VTK; returns (Solution, path of the .pvd)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = write_l_shape(out / "l_shape.msh")
    geom = MeshGeometry.from_file(path)  # what pdekit reads from the file, checked whole
    print(geom)  # MeshGeometry('.../l_shape.msh', 2D, 96 triangle; boundary tags: outer, notch)
    print(f"area {geom.volume():.4f}, notch length {geom.boundary_area('notch'):.4f}")
    sol = pdekit.solve(
        "porous_medium/heat_mesh", mesh=str(path), steps=steps, config=config, verbose=verbose
    )
    errors = sol.errors()  # at the evaluation grid's points inside the L (not in the notch)
    print(f"rel_l2 = {errors['rel_l2']:.3e}, max_abs = {errors['max_abs']:.3e}")
    pvd = sol.to_vtk(out / "heat_L.pvd")  # one .vtu per output time, on the triangles
    print(f"wrote {pvd} (open it in ParaView)")
    return sol, pvd


if __name__ == "__main__":
    main(*sys.argv[1:2])
