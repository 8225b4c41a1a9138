"""Simplex geometry used by meshes: splitting cells, measures, faces, normals, uniform sampling.

Node orderings follow VTK/meshio: a quad is 0-1-2-3 around its perimeter; a hexahedron is the
quad 0-1-2-3 below the quad 4-5-6-7 (vertex 4 above 0).
"""

from __future__ import annotations

import math

import numpy as np

#: volume cells by spatial dimension, and the facet cell types that bound them
VOLUME_TYPES = {2: ("triangle", "quad"), 3: ("tetra", "hexahedron")}
FACET_TYPES = {2: ("line",), 3: ("triangle", "quad")}
#: nodes per cell type
NODES = {"line": 2, "triangle": 3, "quad": 4, "tetra": 4, "hexahedron": 8}

#: each cell type split into simplices of the same dimension (local vertex indices).
#: A hexahedron is cut into six tetrahedra around its diagonal 0-6; a quad into two triangles
#: along 0-2. Exact for cells with planar faces.
_SPLIT = {
    "line": np.array([[0, 1]]),
    "triangle": np.array([[0, 1, 2]]),
    "quad": np.array([[0, 1, 2], [0, 2, 3]]),
    "tetra": np.array([[0, 1, 2, 3]]),
    "hexahedron": np.array(
        [[0, 1, 2, 6], [0, 2, 3, 6], [0, 3, 7, 6], [0, 7, 4, 6], [0, 4, 5, 6], [0, 5, 1, 6]]
    ),
}

#: faces of each volume cell type (local vertex indices), grouped by face type
_FACES = {
    "triangle": {"line": np.array([[0, 1], [1, 2], [2, 0]])},
    "quad": {"line": np.array([[0, 1], [1, 2], [2, 3], [3, 0]])},
    "tetra": {"triangle": np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [0, 2, 3]])},
    "hexahedron": {
        "quad": np.array(
            [
                [0, 1, 2, 3],
                [4, 5, 6, 7],
                [0, 1, 5, 4],
                [1, 2, 6, 5],
                [2, 3, 7, 6],
                [3, 0, 4, 7],
            ]
        )
    },
}


def split(cell_type: str, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simplices covering ``cells`` of ``cell_type`` and, for each, the index of its cell."""
    local = _SPLIT[cell_type]
    simplices = cells[:, local].reshape(-1, local.shape[1])
    parent = np.repeat(np.arange(len(cells)), len(local))
    return simplices, parent


def faces(cell_type: str, cells: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Faces of ``cells``: ``{face_type: (face vertices (m, k), owning cell index (m,))}``."""
    out = {}
    for face_type, local in _FACES[cell_type].items():
        verts = cells[:, local].reshape(-1, local.shape[1])
        owner = np.repeat(np.arange(len(cells)), len(local))
        out[face_type] = (verts, owner)
    return out


def signed_volumes(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Signed measure of full-dimensional simplices, det T / d! with T the edges from vertex 0:
    positive for VTK's node order (a counter-clockwise triangle; a tetrahedron whose vertex 3
    lies on the side of triangle 0-1-2 that its right-hand normal points to)."""
    vert = points[simplices]
    edges = vert[:, 1:] - vert[:, :1]
    d = edges.shape[1]
    return np.linalg.det(edges) / math.factorial(d)


def volumes(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Measure (length, area, volume) of full-dimensional simplices: ``|det T| / d!``."""
    return np.abs(signed_volumes(points, simplices))


def facet_measures(points: np.ndarray, facets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Measure and unit normal (sign arbitrary) of codimension-one simplices.

    In 2D a facet is a segment (a, b) with normal perp(b - a); in 3D a triangle (a, b, c) with
    normal (b - a) x (c - a).
    """
    vert = points[facets]
    d = points.shape[1]
    if d == 2:
        t = vert[:, 1] - vert[:, 0]
        normal = np.stack([t[:, 1], -t[:, 0]], axis=1)
        measure = np.linalg.norm(normal, axis=1)
    elif d == 3:
        normal = np.cross(vert[:, 1] - vert[:, 0], vert[:, 2] - vert[:, 0])
        measure = np.linalg.norm(normal, axis=1) / 2.0
    else:
        raise ValueError(f"facets are defined in 2D and 3D; got {d}D points")
    length = np.linalg.norm(normal, axis=1)
    return measure, normal / np.where(length > 0, length, 1.0)[:, None]


def uniform_barycentric(u: np.ndarray) -> np.ndarray:
    """Map points of the unit cube [0, 1)^d to barycentric coordinates uniform on a d-simplex.

    The spacings of the sorted coordinates, (u_(1), u_(2) - u_(1), ..., 1 - u_(d)), are uniformly
    distributed on the simplex when u is uniform on the cube (Devroye 1986, *Non-Uniform Random
    Variate Generation*, ch. V, thm. 2.2). The map is measure preserving up to the d! to 1
    folding of the sort, so quasi-random inputs stay well spread.
    """
    n, d = u.shape
    s = np.sort(u, axis=1)
    edges = np.concatenate([np.zeros((n, 1)), s, np.ones((n, 1))], axis=1)
    return np.diff(edges, axis=1)


def pick_weighted(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights`` by inverting the CDF at ``u``.

    ``u`` in [0, 1) (one coordinate of a uniform or quasi-random sample), so the stratification
    of a quasi-random sequence carries over to the choice of index.
    """
    cdf = np.cumsum(weights)
    idx = np.searchsorted(cdf, u * cdf[-1], side="right")
    return np.minimum(idx, len(weights) - 1)
