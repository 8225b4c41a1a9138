"""Unstructured meshes as geometries: sampling, tagged boundaries, point location, interpolation.

A :class:`MeshGeometry` holds the volume cells of a 2D (triangles, quads) or 3D (tetrahedra,
hexahedra) mesh and its boundary facets with named tags. Every cell is cut into simplices once;
all sampling, location and interpolation work on those simplices:

* interior points: a simplex drawn with probability proportional to its volume, then a point
  uniform in it, so the points are uniform in the domain;
* boundary points: a facet drawn proportionally to its area, a point uniform on it, and the
  facet's outward unit normal;
* location: a numba bounding-volume-grid kernel (:mod:`pdekit.core.locate`), then barycentric
  (piecewise-linear) interpolation of nodal fields, exact for linear fields.

Hexahedra and quads are split into simplices, which is exact when their faces are planar; a
warped hexahedron is represented by its six tetrahedra.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from pdekit.core.locate import SimplexLocator, interpolate_barycentric, row_keys
from pdekit.errors import MeshError, ParameterError, UnknownNameError
from pdekit.geometries import simplex
from pdekit.geometries.mesh_read import convert, read_meshio
from pdekit.geometries.sampling import DENSITIES, unit_samples

#: name of the tag holding the boundary facets that no tag in the file names
UNTAGGED = "untagged"

#: pyvista/VTK cell type ids of the supported cells
_VTK_TYPES = {"line": 3, "triangle": 5, "quad": 9, "tetra": 10, "hexahedron": 12}


class MeshGeometry:
    """A domain given by a conforming mesh of triangles/quads (2D) or tetrahedra/hexahedra (3D).

    Parameters
    ----------
    points:
        (n, dim) node coordinates, dim 2 or 3.
    cells:
        volume cell blocks: a sequence of ``(cell_type, vertices)`` or a mapping
        ``{cell_type: vertices}``, cell types ``"triangle"``, ``"quad"``, ``"tetra"``,
        ``"hexahedron"`` with VTK node ordering.
    boundary:
        ``{tag: [(facet_type, vertices), ...]}``: named parts of the boundary, each a set of
        facets (``"line"`` in 2D; ``"triangle"``/``"quad"`` in 3D) that must be faces of the
        cells. Boundary facets in no tag form the tag ``"untagged"``.
    source:
        where the mesh came from (a file name), used in error messages.

    Raises
    ------
    MeshError
        naming ``source`` and the problem: unsupported cells, indices out of range, non-finite
        coordinates, cells of zero volume, inverted cells (a signed volume opposite to the
        other cells'), non-manifold faces, tagged facets that are not faces.
    """

    def __init__(
        self,
        points: np.ndarray,
        cells: Sequence[tuple[str, np.ndarray]] | Mapping[str, np.ndarray],
        boundary: Mapping[str, Sequence[tuple[str, np.ndarray]]] | None = None,
        *,
        source: str = "<arrays>",
    ):
        self.source = source
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise MeshError(f"mesh {source!r}: points must be (n, 2) or (n, 3); got {points.shape}")
        if not np.all(np.isfinite(points)):
            raise MeshError(f"mesh {source!r}: non-finite node coordinates")
        self.points = points
        self.dim = points.shape[1]
        blocks = list(cells.items()) if isinstance(cells, Mapping) else list(cells)
        self.cells = [(t, self._check_block(t, c, simplex.VOLUME_TYPES)) for t, c in blocks]
        self.cells = [(t, c) for t, c in self.cells if len(c)]
        if not self.cells:
            raise MeshError(f"mesh {source!r}: no volume cells")
        self._build_simplices()
        self._build_boundary(boundary or {})
        self._locator: SimplexLocator | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        tag_key: str | None = None,
        tag_names: Mapping[str, int] | None = None,
    ) -> MeshGeometry:
        """Read any mesh format meshio reads (gmsh ``.msh`` 2/4, ``.vtu``, ``.xdmf``, ...).

        Parameters
        ----------
        tag_key:
            cell-data array holding boundary ids on facet cells (default: named cell sets, else
            ``gmsh:physical`` or another known key).
        tag_names:
            ``{name: id}`` for files that store ids without names (``.vtu``/``.xdmf`` written by
            meshio from gmsh files); by default the file's gmsh physical names, else the ids.
        """
        source = os.fspath(path)
        mesh = read_meshio(source)
        return cls.from_meshio(mesh, source=source, tag_key=tag_key, tag_names=tag_names)

    @classmethod
    def from_meshio(
        cls,
        mesh,
        source: str = "<meshio.Mesh>",
        tag_key: str | None = None,
        tag_names: Mapping[str, int] | None = None,
    ) -> MeshGeometry:
        """Build from a ``meshio.Mesh`` (tags as in :meth:`from_file`)."""
        points, cells, boundary = convert(mesh, source, tag_key, tag_names)
        return cls(points, cells, boundary, source=source)

    @classmethod
    def from_pyvista(
        cls,
        mesh,
        tag_key: str | None = None,
        tag_names: Mapping[str, int] | None = None,
    ) -> MeshGeometry:
        """Build from a pyvista dataset (any dataset pyvista can cast to an unstructured grid).

        Boundary tags come from an integer cell array on its facet cells, as in
        :meth:`from_file`.
        """
        import pyvista as pv

        if not isinstance(mesh, pv.UnstructuredGrid):
            mesh = mesh.cast_to_unstructured_grid()
        source = f"<pyvista {type(mesh).__name__}>"
        return cls.from_meshio(pv.to_meshio(mesh), source, tag_key, tag_names)

    def _check_block(self, cell_type, cells, allowed):
        if cell_type not in allowed[self.dim]:
            raise MeshError(
                f"mesh {self.source!r}: cell type {cell_type!r} in a {self.dim}D mesh; "
                f"supported: {', '.join(allowed[self.dim])}"
            )
        cells = np.asarray(cells)
        nv = simplex.NODES[cell_type]
        if cells.ndim != 2 or cells.shape[1] != nv or not np.issubdtype(cells.dtype, np.integer):
            raise MeshError(
                f"mesh {self.source!r}: {cell_type} cells need an integer array (m, {nv}); "
                f"got {cells.dtype} {cells.shape}"
            )
        if cells.size and (cells.min() < 0 or cells.max() >= len(self.points)):
            raise MeshError(
                f"mesh {self.source!r}: {cell_type} cells refer to nodes outside "
                f"0..{len(self.points) - 1} (min {cells.min()}, max {cells.max()})"
            )
        return cells.astype(np.int64)

    def _build_simplices(self):
        parts, parents, offset = [], [], 0
        for cell_type, cells in self.cells:
            s, p = simplex.split(cell_type, cells)
            parts.append(s)
            parents.append(p + offset)
            offset += len(cells)
        self.n_cells = offset
        self.simplices = np.concatenate(parts)
        self.simplex_cell = np.concatenate(parents)
        signed = simplex.signed_volumes(self.points, self.simplices)
        self.simplex_volume = np.abs(signed)
        used = self.points[np.unique(self.simplices)]
        self._bounds = np.stack([used.min(axis=0), used.max(axis=0)])
        scale = float(np.max(self._bounds[1] - self._bounds[0]))
        with np.errstate(over="ignore", invalid="ignore"):
            measure = np.float64(scale) ** self.dim
        if not (np.isfinite(measure) and np.all(np.isfinite(self.simplex_volume))):
            raise MeshError(
                f"mesh {self.source!r}: node coordinates too large (extent {scale:.3g}): "
                "cell sizes overflow float64; rescale the mesh"
            )
        tiny = self.simplex_volume <= 1e-12 * measure
        if np.any(tiny):
            bad = np.unique(self.simplex_cell[tiny])
            raise MeshError(
                f"mesh {self.source!r}: {bad.size} cells of zero volume (degenerate), "
                f"first cell indices: {bad[:5].tolist()}"
            )
        self._check_orientation(signed)
        self.cell_volume = np.bincount(
            self.simplex_cell, weights=self.simplex_volume, minlength=self.n_cells
        )

    def _check_orientation(self, signed: np.ndarray) -> None:
        """Refuse inverted cells: simplices whose signed volume (VTK node order) has the sign
        opposite to the mesh's, which is the sign of the total. A folded or tangled mesh (a node
        moved across a face), a cell numbered the wrong way round, or a twisted hexahedron has
        some; a mesh numbered consistently the other way (every triangle clockwise, as gmsh
        writes a surface whose normal points to -z; a mirrored 3D mesh) has none and is
        accepted, since volumes, sampling and outward normals do not depend on the sign."""
        orientation = 1.0 if signed.sum() >= 0 else -1.0
        flipped = orientation * signed < 0
        if np.any(flipped):
            bad = np.unique(self.simplex_cell[flipped])
            raise MeshError(
                f"mesh {self.source!r}: {bad.size} of {self.n_cells} cells are inverted "
                "(signed volume in VTK node order opposite to the other cells': a folded or "
                f"tangled mesh, or cells numbered the wrong way round), first cell indices: "
                f"{bad[:5].tolist()}"
            )

    def _build_boundary(self, boundary):
        centroids = self._cell_centroids()
        # all faces of all cells, grouped by face type; a boundary face belongs to one cell
        faces: dict[str, list] = {}
        offset = 0
        for cell_type, cells in self.cells:
            for face_type, (verts, owner) in simplex.faces(cell_type, cells).items():
                faces.setdefault(face_type, []).append((verts, owner + offset))
            offset += len(cells)
        b_faces, b_owner, b_type = [], [], []
        self._face_keys: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        n_boundary = 0
        for face_type, chunks in faces.items():
            verts = np.concatenate([v for v, _ in chunks])
            owner = np.concatenate([o for _, o in chunks])
            keys = row_keys(verts)
            uniq, first, inverse, counts = np.unique(
                keys, return_index=True, return_inverse=True, return_counts=True
            )
            if np.any(counts > 2):
                raise MeshError(
                    f"mesh {self.source!r}: {int(np.sum(counts > 2))} faces shared by more than "
                    "two cells (non-manifold mesh)"
                )
            on_boundary = first[counts == 1]
            b_faces.append(verts[on_boundary])
            b_owner.append(owner[on_boundary])
            b_type += [face_type] * len(on_boundary)
            # sorted unique keys of all faces -> boundary face number or -1 (interior)
            number = np.full(len(uniq), -1)
            number[counts == 1] = n_boundary + np.arange(len(on_boundary))
            self._face_keys[face_type] = (uniq, number, counts)
            n_boundary += len(on_boundary)
        # boundary faces -> simplex facets with outward normals
        facets, facet_face, offset = [], [], 0
        for face_type, verts in zip(faces, b_faces):
            s, p = simplex.split(face_type, verts)
            facets.append(s)
            facet_face.append(p + offset)
            offset += len(verts)
        self.facets = np.concatenate(facets)
        self.facet_face = np.concatenate(facet_face)
        owner = np.concatenate(b_owner)[self.facet_face]
        self.facet_area, normal = simplex.facet_measures(self.points, self.facets)
        outward = np.einsum(
            "ij,ij->i", self.points[self.facets].mean(axis=1) - centroids[owner], normal
        )
        self.facet_normal = normal * np.where(outward < 0, -1.0, 1.0)[:, None]
        self._tags = self._resolve_tags(boundary, n_boundary)

    def _resolve_tags(self, boundary, n_boundary):
        """{tag: boundary face numbers}; warns about tagged interior faces."""
        tags, tagged = {}, np.zeros(n_boundary, bool)
        for name, blocks in boundary.items():
            found = []
            for facet_type, verts in blocks:
                verts = np.asarray(verts)
                if facet_type not in simplex.FACET_TYPES[self.dim]:
                    raise MeshError(
                        f"mesh {self.source!r}: tag {name!r} has {facet_type} cells; boundary "
                        f"facets in {self.dim}D are {', '.join(simplex.FACET_TYPES[self.dim])}"
                    )
                verts = self._check_block(facet_type, verts, simplex.FACET_TYPES)
                if facet_type not in self._face_keys:
                    raise MeshError(
                        f"mesh {self.source!r}: tag {name!r} has {facet_type} facets but no "
                        f"cell has {facet_type} faces"
                    )
                uniq, number, _ = self._face_keys[facet_type]
                keys = row_keys(verts)
                pos = np.clip(np.searchsorted(uniq, keys), 0, len(uniq) - 1)
                missing = uniq[pos] != keys
                if np.any(missing):
                    raise MeshError(
                        f"mesh {self.source!r}: {int(missing.sum())} facets of tag {name!r} are "
                        "not faces of any cell"
                    )
                num = number[pos]
                if np.any(num < 0):
                    warnings.warn(
                        f"mesh {self.source!r}: {int(np.sum(num < 0))} facets of tag {name!r} "
                        "are interior faces; they are not part of the boundary tag",
                        stacklevel=4,
                    )
                found.append(num[num >= 0])
            faces = np.unique(np.concatenate(found)) if found else np.zeros(0, int)
            if faces.size:
                tags[str(name)] = faces
                tagged[faces] = True
        if tags and not tagged.all():
            tags[UNTAGGED] = np.flatnonzero(~tagged)
        return tags

    def _cell_centroids(self):
        out = np.empty((self.n_cells, self.dim))
        offset = 0
        for _, cells in self.cells:
            out[offset : offset + len(cells)] = self.points[cells].mean(axis=1)
            offset += len(cells)
        return out

    # -- Geometry protocol ---------------------------------------------------------------------
    @property
    def bounds(self) -> np.ndarray:
        return self._bounds.copy()

    @property
    def periodic(self) -> tuple[bool, ...]:
        return (False,) * self.dim

    @property
    def boundary_tags(self) -> tuple[str, ...]:
        return tuple(self._tags)

    def volume(self) -> float:
        return float(self.simplex_volume.sum())

    def boundary_area(self, tag: str | None = None) -> float:
        """Length (2D) or area (3D) of the boundary, or of one tagged part of it."""
        return float(self.facet_area[self._facet_mask(tag)].sum())

    def contains(self, x: np.ndarray) -> np.ndarray:
        return self.locate(x) >= 0

    #: the interior point densities :meth:`sample_interior` offers
    densities = DENSITIES

    def sample_interior(
        self, n: int, rng=None, method: str = "sobol", density: str = "uniform"
    ) -> np.ndarray:
        """``n`` points in the domain: a simplex of the cells picked with probability ∝ its
        volume (``density="uniform"``: uniform in the domain) or with equal probability
        (``"mesh"``: as dense as the mesh's simplices, finer where it was refined; a quad
        counts as its two triangles, a hexahedron as its tetrahedra), then uniform in it."""
        _check_count(n)
        if density not in self.densities:
            raise UnknownNameError("interior point density", density, self.densities)
        u = unit_samples(n, self.dim + 1, method, rng)
        weights = self.simplex_volume if density == "uniform" else np.ones(len(self.simplices))
        which = simplex.pick_weighted(u[:, 0], weights)
        bary = simplex.uniform_barycentric(u[:, 1:])
        return np.einsum("ij,ijk->ik", bary, self.points[self.simplices[which]])

    def sample_boundary(
        self, n: int, tag: str | None = None, rng=None, method: str = "sobol"
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` boundary points uniform by area, with outward unit normals.

        ``tag`` selects one named part (``"inlet"``); None samples the whole boundary.
        """
        _check_count(n)
        facets = np.flatnonzero(self._facet_mask(tag))
        u = unit_samples(n, self.dim, method, rng)
        which = facets[simplex.pick_weighted(u[:, 0], self.facet_area[facets])]
        bary = simplex.uniform_barycentric(u[:, 1:])
        points = np.einsum("ij,ijk->ik", bary, self.points[self.facets[which]])
        return points, self.facet_normal[which].copy()

    def _facet_mask(self, tag):
        if tag is None:
            return np.ones(len(self.facets), bool)
        if tag not in self._tags:
            raise UnknownNameError("boundary tag", tag, self._tags)
        return np.isin(self.facet_face, self._tags[tag])

    # -- location and interpolation ------------------------------------------------------------
    @property
    def locator(self) -> SimplexLocator:
        """The point locator over this mesh's simplices (built on first use)."""
        if self._locator is None:
            self._locator = SimplexLocator(self.points, self.simplices)
        return self._locator

    def locate(self, x: np.ndarray) -> np.ndarray:
        """Index of the cell holding each point (-1 outside), numbering cells block by block."""
        index, _ = self.locator.locate(self._as_points(x))
        out = np.full(len(index), -1, dtype=np.int64)
        out[index >= 0] = self.simplex_cell[index[index >= 0]]
        return out

    def interpolate(self, values, x: np.ndarray):
        """Barycentric interpolation of nodal values at points ``x`` (NaN outside the mesh).

        ``values``: an array (n_nodes,) or (n_nodes, k), or a mapping of such arrays (then a
        dict is returned). Piecewise linear on the simplices, so exact for linear fields.
        """
        x = self._as_points(x)
        if isinstance(values, Mapping):
            index, bary = self.locator.locate(x)
            return {
                k: interpolate_barycentric(np.asarray(v, float), self.simplices, index, bary)
                for k, v in values.items()
            }
        values = np.asarray(values, dtype=float)
        if values.shape[0] != len(self.points):
            raise ParameterError(
                f"nodal values need {len(self.points)} rows (one per node); got {values.shape}"
            )
        index, bary = self.locator.locate(x)
        return interpolate_barycentric(values, self.simplices, index, bary)

    def _as_points(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if x.shape[1] != self.dim:
            raise ParameterError(f"points must have {self.dim} columns; got shape {x.shape}")
        return x

    # -- pyvista -------------------------------------------------------------------------------
    def to_pyvista(self):
        """The volume cells as a ``pyvista.UnstructuredGrid`` (2D meshes get z = 0)."""
        import pyvista as pv

        pts = self.points
        if self.dim == 2:
            pts = np.column_stack([pts, np.zeros(len(pts))])
        cells = {_VTK_TYPES[t]: c for t, c in _merge_blocks(self.cells).items()}
        return pv.UnstructuredGrid(cells, pts)

    def nodes(self) -> np.ndarray:
        """Node coordinates (n, dim): where :meth:`to_pyvista` puts its point data."""
        return self.points.copy()

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(c)} {t}" for t, c in self.cells)
        tags = ", ".join(self._tags) or "none"
        return f"MeshGeometry({self.source!r}, {self.dim}D, {counts}; boundary tags: {tags})"


def _merge_blocks(blocks):
    merged: dict[str, list] = {}
    for t, c in blocks:
        merged.setdefault(t, []).append(c)
    return {t: np.concatenate(c) for t, c in merged.items()}


def _check_count(n):
    if int(n) != n or n < 0:
        raise ParameterError(f"number of points must be an integer >= 0; got {n}")


# -- meshes named by the user: cached reads and what a problem requires of them -------------------
@functools.lru_cache(maxsize=16)
def _read_once(source: str, real: str, mtime_ns: int, size: int) -> MeshGeometry:
    return MeshGeometry.from_file(source)


def cached_mesh(path: str | os.PathLike) -> MeshGeometry:
    """:meth:`MeshGeometry.from_file`, read once per version of the file.

    Problems with a ``mesh`` parameter are frozen dataclasses that build their domain on every
    call of ``domain()``; the mesh is cached on its path as given, its resolved path, its
    modification time and its size, so an edited file is read again. Every caller gets the same
    MeshGeometry: treat it as read-only. A file that cannot be read raises MeshError each time.
    """
    source = os.fspath(path)
    try:
        stat = os.stat(source)
        real = os.path.realpath(source)
    except (OSError, ValueError):  # missing, or no usable path: from_file's MeshError says which
        return MeshGeometry.from_file(source)
    return _read_once(source, real, stat.st_mtime_ns, stat.st_size)


def require_dim(geometry, dim: int, what: str) -> None:
    """Raise MeshError unless ``geometry`` is ``dim``-dimensional; names both dimensions.

    ``what`` names who needs it (``"navier_stokes/beltrami"``).
    """
    if geometry.dim != dim:
        source = getattr(geometry, "source", repr(geometry))
        raise MeshError(f"mesh {source!r} is {geometry.dim}D; {what} needs a {dim}D mesh")


def require_tags(geometry, tags: Sequence[str], what: str) -> None:
    """Raise MeshError unless ``geometry`` has every boundary tag in ``tags``.

    The message names the missing tags and those present, e.g. for a mesh without physical
    groups: ``mesh 'channel.msh' lacks the boundary tags inlet, cylinder that
    navier_stokes/cylinder needs; it has: none (no boundary facets are tagged)``.
    """
    present = tuple(geometry.boundary_tags)
    missing = [t for t in tags if t not in present]
    if missing:
        source = getattr(geometry, "source", repr(geometry))
        noun = "tag" if len(missing) == 1 else "tags"
        has = ", ".join(present) or "none (no boundary facets are tagged)"
        raise MeshError(
            f"mesh {source!r} lacks the boundary {noun} {', '.join(missing)} that {what} needs; "
            f"it has: {has}"
        )
