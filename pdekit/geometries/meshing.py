"""Meshing analytic domains for output: results on a CSG domain are written on a real mesh.

:func:`mesh_domain` triangulates (2D) or tetrahedralises (3D) any domain with a signed distance
function: nodes on the boundary parts of its primitives (spacing ~h), a jittered lattice inside
(kept 0.4 h away from the boundary), the Delaunay triangulation of all of them (scipy/Qhull),
and the simplices whose centroid lies inside the domain. Boundary facets are tagged with the
name of the nearest boundary part. The mesh is an output mesh, not an analysis-quality one:
curved boundaries become polygons/polyhedra with nodes ~h apart, and corners where two
primitives' boundaries cross are resolved to about h.

:func:`box_mesh` meshes an axis-aligned box exactly with quads/hexahedra.
"""

from __future__ import annotations

import math

import numpy as np

from pdekit.errors import ParameterError
from pdekit.geometries.mesh import MeshGeometry
from pdekit.geometries.simplex import FACET_TYPES

#: most nodes a mesh of an analytic domain may have (a guard against a tiny h)
MAX_NODES = 2_000_000
_SIMPLEX = {2: "triangle", 3: "tetra"}


def _spacing(domain, h):
    lo, hi = domain.bounds
    h = float(np.max(hi - lo)) / 50 if h is None else float(h)
    if not (np.isfinite(h) and h > 0):
        raise ParameterError(f"mesh spacing h must be finite and > 0; got {h}")
    nodes = float(np.prod((hi - lo) / h + 1))
    if nodes > MAX_NODES:
        raise ParameterError(
            f"mesh spacing h={h:g} would need ~{nodes:.3g} nodes (more than {MAX_NODES}); "
            "choose a larger h"
        )
    return h


def boundary_nodes(domain, h: float) -> tuple[np.ndarray, list[str]]:
    """Nodes ~h apart on every boundary part of ``domain`` that lies on its boundary
    (``|sdf| <= 1e-9 diameter``), duplicates merged, with the part's tag name."""
    from pdekit.geometries.csg import pieces

    lo, hi = domain.bounds
    tol = 1e-9 * float(np.linalg.norm(hi - lo))
    pts, names = [], []
    for leaf, leaf_tag, name in pieces(domain):
        p, _ = leaf.boundary_nodes(h, leaf_tag)
        p = p[np.abs(domain.signed_distance(p)) <= tol]
        pts.append(p)
        names += [name] * len(p)
    p = np.concatenate(pts)
    _, first = np.unique(np.round((p - lo) / tol).astype(np.int64), axis=0, return_index=True)
    first = np.sort(first)
    return p[first], [names[i] for i in first]


def mesh_domain(domain, h: float | None = None) -> MeshGeometry:
    """A simplicial MeshGeometry of a 2D/3D domain with a signed distance (see module doc)."""
    from scipy.spatial import Delaunay, cKDTree

    dim = domain.dim
    if dim not in (2, 3):
        raise ParameterError(f"meshing is available for 2D and 3D domains; got {dim}D")
    h = _spacing(domain, h)
    lo, hi = domain.bounds
    diameter = float(np.linalg.norm(hi - lo))
    bnodes, _ = boundary_nodes(domain, h)
    # interior lattice, jittered (fixed seed) so that Delaunay has no co-spherical ties
    axes = [np.arange(a + h / 2, b, h) for a, b in zip(lo, hi)]
    lattice = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    lattice += 0.1 * h * (np.random.default_rng(0).random(lattice.shape) - 0.5)
    lattice = lattice[domain.signed_distance(lattice) < -0.4 * h]
    nodes = np.concatenate([bnodes, lattice])
    simplices = Delaunay(nodes).simplices
    centroid = nodes[simplices].mean(axis=1)
    vert = nodes[simplices]
    signed = np.linalg.det(vert[:, 1:] - vert[:, :1]) / math.factorial(dim)
    keep = (domain.signed_distance(centroid) < -1e-9 * diameter) & (np.abs(signed) > 1e-9 * h**dim)
    simplices = simplices[keep]
    flip = signed[keep] < 0  # Qhull's simplices come either way round: VTK order, positive
    simplices[flip, :2] = simplices[flip][:, [1, 0]]
    used, simplices = np.unique(simplices, return_inverse=True)
    nodes, simplices = nodes[used], simplices.reshape(-1, dim + 1)
    cells = [(_SIMPLEX[dim], simplices)]
    untagged = MeshGeometry(nodes, cells, source=f"<mesh of {domain!r}>")
    # tag each boundary facet by the part nearest its centroid (parts sampled 4x finer)
    fine, names = boundary_nodes(domain, h / 4)
    facets = untagged.facets
    _, nearest = cKDTree(fine).query(nodes[facets].mean(axis=1))
    facet_names = np.array(names, dtype=object)[nearest]
    facet_type = FACET_TYPES[dim][0]
    boundary = {
        str(name): [(facet_type, facets[facet_names == name])]
        for name in dict.fromkeys(facet_names)
    }
    return MeshGeometry(nodes, cells, boundary, source=f"<mesh of {domain!r}>")


def box_mesh(box, h: float | None = None) -> MeshGeometry:
    """Structured quad (2D) or hexahedral (3D) mesh of an axis-aligned box, faces tagged
    ``xmin``, ``xmax``, ... as on the box (periodic axes have no faces)."""
    dim = box.dim
    if dim not in (2, 3):
        raise ParameterError(f"meshing is available for 2D and 3D boxes; got {dim}D")
    h = _spacing(box, h)
    n = [max(int(math.ceil((b - a) / h)), 1) for a, b in zip(box.lo, box.hi)]
    axes = [np.linspace(a, b, k + 1) for a, b, k in zip(box.lo, box.hi, n)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    idx = np.arange(len(points)).reshape([k + 1 for k in n])
    corner = [idx[tuple(slice(o, o + k) for o, k in zip(off, n))].ravel() for off in _CORNERS[dim]]
    cells = [("quad" if dim == 2 else "hexahedron", np.stack(corner, axis=1))]
    boundary = {}
    for tag in box.boundary_tags:
        axis, side = box._tags[tag]
        face = np.take(idx, -1 if side > 0 else 0, axis=axis)  # (n_a + 1, n_b + 1) node grid
        if dim == 2:
            facets = np.stack([face[:-1], face[1:]], axis=1)
            boundary[tag] = [("line", facets)]
        else:
            quads = [face[:-1, :-1], face[1:, :-1], face[1:, 1:], face[:-1, 1:]]
            boundary[tag] = [("quad", np.stack([q.ravel() for q in quads], axis=1))]
    return MeshGeometry(points, cells, boundary, source=f"<mesh of {box!r}>")


#: index offsets of the corners of a cell in VTK order (quad 0-1-2-3; hex bottom then top)
_CORNERS = {
    2: [(0, 0), (1, 0), (1, 1), (0, 1)],
    3: [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)],
}
