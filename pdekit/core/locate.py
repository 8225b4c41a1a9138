"""Point location in simplicial meshes: the simplex holding a point, and its barycentrics.

A :class:`SimplexLocator` hashes every simplex (segment, triangle, tetrahedron) into the cells
of a uniform grid laid over the mesh's bounding box (a bounding-volume grid: each simplex is
listed in every grid cell its bounding box overlaps). A query point looks up its grid cell and
tests only the simplices listed there, so locating ``m`` points in an ``N``-simplex mesh costs
about ``O(N + m)`` for meshes of bounded cell-size variation, instead of the ``O(N m)`` of a
loop over all cells per point (Akenine-Möller et al., *Real-Time Rendering*, 4th ed., §22.4:
uniform grids for spatial queries).

A simplex with vertices ``v_0 .. v_d`` holds ``x`` when every barycentric coordinate

    lambda_{1..d} = T^{-1} (x - v_0),   T = [v_1 - v_0, ..., v_d - v_0],   lambda_0 = 1 - sum,

is >= 0. The inverse maps are precomputed once per simplex.

The kernels are numba-compiled; the query runs in parallel over points (``parallel=True``,
thread count from ``NUMBA_NUM_THREADS``). This module imports nothing else of pdekit.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: barycentric tolerance: a point whose smallest barycentric coordinate is >= -BARY_TOL in some
#: simplex is located there (it lies on the closed simplex up to round-off of the affine map)
BARY_TOL = 1e-10
#: longest walk before falling back to testing every simplex of the point's grid cell
MAX_STEPS = 64


@numba.njit(cache=True)
def _bin_range(lo_c, hi_c, lo, inv_h, nb):
    """Per-axis index ranges [a, b] of the grid cells overlapped by the box [lo_c, hi_c]."""
    d = lo.size
    a = np.empty(d, np.int64)
    b = np.empty(d, np.int64)
    for k in range(d):
        ia = int(math.floor((lo_c[k] - lo[k]) * inv_h[k]))
        ib = int(math.floor((hi_c[k] - lo[k]) * inv_h[k]))
        a[k] = min(max(ia, 0), nb[k] - 1)
        b[k] = min(max(ib, 0), nb[k] - 1)
    return a, b


@numba.njit(cache=True)
def _build_bins(cell_lo, cell_hi, lo, inv_h, nb):
    """CSR lists of the simplices overlapping each grid cell: (offsets, members)."""
    n, d = cell_lo.shape
    strides = np.ones(d, np.int64)
    for k in range(d - 2, -1, -1):
        strides[k] = strides[k + 1] * nb[k + 1]
    total = strides[0] * nb[0]
    counts = np.zeros(total + 1, np.int64)
    for s in range(n):
        a, b = _bin_range(cell_lo[s], cell_hi[s], lo, inv_h, nb)
        m = 1
        for k in range(d):
            m *= b[k] - a[k] + 1
        for j in range(m):
            rem = j
            flat = 0
            for k in range(d - 1, -1, -1):
                span = b[k] - a[k] + 1
                flat += (a[k] + rem % span) * strides[k]
                rem //= span
            counts[flat + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    members = np.empty(offsets[-1], np.int64)
    for s in range(n):
        a, b = _bin_range(cell_lo[s], cell_hi[s], lo, inv_h, nb)
        m = 1
        for k in range(d):
            m *= b[k] - a[k] + 1
        for j in range(m):
            rem = j
            flat = 0
            for k in range(d - 1, -1, -1):
                span = b[k] - a[k] + 1
                flat += (a[k] + rem % span) * strides[k]
                rem //= span
            members[fill[flat]] = s
            fill[flat] += 1
    return offsets, members, strides


@numba.njit(inline="always")
def _barycentric(x, s, origin, inverse, lam):
    """Barycentric coordinates of x in simplex s (into lam); returns the smallest."""
    d = x.size
    total = 0.0
    smallest = np.inf
    for r in range(d):
        acc = 0.0
        for c in range(d):
            acc += inverse[s, r, c] * (x[c] - origin[s, c])
        lam[r + 1] = acc
        total += acc
        smallest = min(smallest, acc)
    lam[0] = 1.0 - total
    return min(smallest, lam[0])


@numba.njit(parallel=True, cache=True)
def _locate(
    points, lo, hi, inv_h, nb, strides, offsets, members, start, neighbors, origin, inverse, tol
):
    """Simplex index (-1 outside) and barycentric coordinates of every point.

    First a visibility walk (Lawson 1977; Devillers, Pion & Teillaud 2002) from the simplex
    nearest the centre of the point's grid cell: step across the face opposite the most
    negative barycentric coordinate until none is negative. It stops at the mesh boundary or
    after MAX_STEPS steps; then every simplex listed in the grid cell is tested.
    """
    n, d = points.shape
    found = np.full(n, -1, np.int64)
    bary = np.full((n, d + 1), np.nan)
    for p in numba.prange(n):
        x = points[p]
        flat = 0
        outside = False
        for k in range(d):
            if not (x[k] >= lo[k] and x[k] <= hi[k]):  # also rejects NaN
                outside = True
                break
            i = int(math.floor((x[k] - lo[k]) * inv_h[k]))
            flat += min(i, nb[k] - 1) * strides[k]
        if outside or start[flat] < 0:
            continue
        lam = np.empty(d + 1)
        s = start[flat]
        for _ in range(MAX_STEPS):
            smallest = _barycentric(x, s, origin, inverse, lam)
            if smallest >= -tol:
                found[p] = s
                bary[p] = lam
                break
            worst = 0
            for r in range(1, d + 1):
                if lam[r] < lam[worst]:
                    worst = r
            nxt = neighbors[s, worst]
            if nxt < 0:
                break
            s = nxt
        if found[p] >= 0:
            continue
        best = -1
        best_min = -np.inf
        best_lam = np.empty(d + 1)
        for j in range(offsets[flat], offsets[flat + 1]):
            s = members[j]
            smallest = _barycentric(x, s, origin, inverse, lam)
            if smallest > best_min and smallest >= -tol:
                best_min = smallest
                best = s
                best_lam[:] = lam
                if smallest >= 0.0:
                    break
        if best >= 0:
            found[p] = best
            bary[p] = best_lam
    return found, bary


@numba.njit(cache=True)
def _nearest_members(offsets, members, centroid, lo, inv_h, nb):
    """For each grid cell, its listed simplex with the centroid nearest the cell centre."""
    d = lo.size
    start = np.full(offsets.size - 1, -1, np.int64)
    centre = np.empty(d)
    for b in range(offsets.size - 1):
        rem = b
        for k in range(d - 1, -1, -1):  # C-order unravel of the flat grid-cell index
            centre[k] = lo[k] + (rem % nb[k] + 0.5) / inv_h[k]
            rem //= nb[k]
        best = np.inf
        for j in range(offsets[b], offsets[b + 1]):
            s = members[j]
            dist = 0.0
            for k in range(d):
                dist += (centroid[s, k] - centre[k]) ** 2
            if dist < best:
                best = dist
                start[b] = s
    return start


def row_keys(rows: np.ndarray) -> np.ndarray:
    """One comparable key per row of integers, independent of the order of its entries.

    Rows of small non-negative integers are packed into one int64 (fast to sort); otherwise each
    row becomes one opaque byte string.
    """
    rows = np.ascontiguousarray(np.sort(rows, axis=1).astype(np.int64))
    bits = min(63 // max(rows.shape[1], 1), 62)
    if rows.size and rows.min() >= 0 and rows.max() < 2**bits:
        weights = (2**bits) ** np.arange(rows.shape[1] - 1, -1, -1, dtype=np.int64)
        return rows @ weights
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)


def face_neighbors(simplices: np.ndarray) -> np.ndarray:
    """(n, d + 1): the simplex across the face opposite each vertex (-1 on the boundary)."""
    n, k = simplices.shape
    opposite = np.array([[j for j in range(k) if j != i] for i in range(k)])
    faces = simplices[:, opposite].reshape(-1, k - 1)  # face i of simplex s at row s * k + i
    keys = row_keys(faces)
    order = np.argsort(keys, kind="stable")
    same = keys[order[1:]] == keys[order[:-1]]
    a, b = order[:-1][same], order[1:][same]
    neighbors = np.full(n * k, -1, dtype=np.int64)
    neighbors[a] = b // k
    neighbors[b] = a // k
    return neighbors.reshape(n, k)


class SimplexLocator:
    """Locate points in a simplicial mesh of dimension d (d + 1 vertices per simplex).

    Parameters
    ----------
    nodes:
        (n_nodes, d) vertex coordinates.
    simplices:
        (n_simplices, d + 1) vertex indices; every simplex must have nonzero volume.
    cells_per_bin:
        bounds the grid size: between ``n_simplices / cells_per_bin / 8`` and
        ``4 n_simplices / cells_per_bin`` grid cells, each about as large as the median
        bounding box of a simplex.
    """

    def __init__(self, nodes: np.ndarray, simplices: np.ndarray, cells_per_bin: float = 1.0):
        nodes = np.ascontiguousarray(nodes, dtype=np.float64)
        simplices = np.ascontiguousarray(simplices, dtype=np.int64)
        n, d = simplices.shape[0], nodes.shape[1]
        if simplices.shape[1] != d + 1:
            raise ValueError(f"need {d + 1} vertices per simplex in {d}D; got {simplices.shape}")
        if n == 0:
            raise ValueError("cannot locate points in a mesh without cells")
        vert = nodes[simplices]  # (n, d+1, d)
        self.origin = np.ascontiguousarray(vert[:, 0])
        edges = np.transpose(vert[:, 1:] - vert[:, :1], (0, 2, 1))  # columns v_i - v_0
        det = np.linalg.det(edges)
        scale = np.max(np.abs(edges), axis=(1, 2)) ** d
        if np.any(np.abs(det) <= 1e-14 * scale):
            bad = np.flatnonzero(np.abs(det) <= 1e-14 * scale)
            raise ValueError(f"{bad.size} degenerate simplices (zero volume), first: {bad[:5]}")
        self.inverse = np.ascontiguousarray(np.linalg.inv(edges))
        self.simplices, self.dim = simplices, d
        cell_lo, cell_hi = vert.min(axis=1), vert.max(axis=1)
        lo, hi = cell_lo.min(axis=0), cell_hi.max(axis=0)  # unused nodes do not count
        span = np.maximum(hi - lo, 1e-300)
        pad = 1e-9 * span  # points on the far faces fall in the last grid cell
        self.lo, self.hi = lo - pad, hi + pad
        span = self.hi - self.lo
        # grid cells about the size of a typical simplex's bounding box, so that each simplex
        # overlaps a few grid cells and each grid cell lists a few simplices
        typical = np.maximum(np.median(cell_hi - cell_lo, axis=0), 1e-12 * span.max())
        per_axis = span / typical
        total = np.prod(per_axis)
        budget = np.clip(total, n / cells_per_bin / 8.0, 4.0 * n / cells_per_bin)
        per_axis = per_axis * (budget / total) ** (1.0 / d)
        self.nb = np.clip(np.ceil(per_axis), 1, None).astype(np.int64)
        self.inv_h = self.nb / span
        # number simplices bin by bin (by the bin of their centroid), so that the candidates of
        # one grid cell lie close together in memory; `order` maps back to the caller's numbers
        centroid = vert.mean(axis=1)
        cell = np.minimum(((centroid - self.lo) * self.inv_h).astype(np.int64), self.nb - 1)
        self.order = np.argsort(np.ravel_multi_index(tuple(cell.T), tuple(self.nb)), kind="stable")
        self.origin = np.ascontiguousarray(self.origin[self.order])
        self.inverse = np.ascontiguousarray(self.inverse[self.order])
        self.offsets, self.members, self.strides = _build_bins(
            cell_lo[self.order], cell_hi[self.order], self.lo, self.inv_h, self.nb
        )
        rank = np.empty_like(self.order)
        rank[self.order] = np.arange(n)
        across = face_neighbors(simplices)[self.order]  # caller's numbers
        self.neighbors = np.ascontiguousarray(np.where(across >= 0, rank[across], -1))
        self.start = self._walk_starts(centroid[self.order])

    def _walk_starts(self, centroid):
        """Per grid cell: the listed simplex whose centroid is nearest the cell's centre."""
        return _nearest_members(self.offsets, self.members, centroid, self.lo, self.inv_h, self.nb)

    def locate(self, points: np.ndarray, tol: float = BARY_TOL) -> tuple[np.ndarray, np.ndarray]:
        """Simplex holding each point and its barycentric coordinates.

        Returns
        -------
        index:
            (m,) int64: the simplex holding the point, -1 where no simplex does. A point on a
            face shared by several simplices gets one of them.
        bary:
            (m, d + 1): barycentric coordinates in that simplex (NaN where index is -1).
        """
        pts = np.ascontiguousarray(np.atleast_2d(points), dtype=np.float64)
        if pts.shape[1] != self.dim:
            raise ValueError(f"points must have {self.dim} columns; got shape {pts.shape}")
        index, bary = _locate(
            pts,
            self.lo,
            self.hi,
            self.inv_h,
            self.nb,
            self.strides,
            self.offsets,
            self.members,
            self.start,
            self.neighbors,
            self.origin,
            self.inverse,
            float(tol),
        )
        inside = index >= 0
        index[inside] = self.order[index[inside]]
        return index, bary

    def interpolate(self, values: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Piecewise-linear (barycentric) interpolation of nodal ``values`` at ``points``.

        ``values`` has shape (n_nodes,) or (n_nodes, k); the result is NaN outside the mesh.
        Exact for fields linear in space.
        """
        index, bary = self.locate(points)
        return interpolate_barycentric(values, self.simplices, index, bary)


def interpolate_barycentric(
    values: np.ndarray, simplices: np.ndarray, index: np.ndarray, bary: np.ndarray
) -> np.ndarray:
    """sum_i lambda_i values[v_i] over the vertices v_i of each point's simplex (NaN if -1)."""
    values = np.asarray(values, dtype=np.float64)
    inside = index >= 0
    out = np.full((len(index),) + values.shape[1:], np.nan)
    verts = simplices[index[inside]]
    w = bary[inside]
    if values.ndim == 1:
        out[inside] = np.einsum("ij,ij->i", w, values[verts])
    else:
        out[inside] = np.einsum("ij,ijk->ik", w, values[verts])
    return out
