"""Reading meshes through meshio: volume cells, and boundary tags by name.

Boundary tags are taken, in this order, from

1. named cell sets on facet cells (gmsh 4 physical groups as meshio reads them, Abaqus/MED sets);
2. an integer cell-data array on facet cells (``gmsh:physical`` in gmsh 2/4 files and in
   ``.vtu``/``.xdmf`` files converted from them, ``medit:ref``, ``cell_tags``, ...), each id named
   by ``tag_names``, else by the file's field data (gmsh ``$PhysicalNames``), else by its number.

Facet cells are lines in 2D and triangles/quads in 3D.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
from collections.abc import Mapping

import numpy as np

from pdekit.errors import MeshError
from pdekit.geometries.simplex import FACET_TYPES, VOLUME_TYPES

#: integer cell-data arrays that commonly carry boundary ids, in order of preference
TAG_KEYS = ("gmsh:physical", "medit:ref", "cell_tags", "boundary_id", "boundary", "tags")
#: lower-dimensional cell types that carry no volume and no boundary, by mesh dimension
_IGNORED = {2: ("vertex",), 3: ("vertex", "line")}


def read_meshio(path: str | os.PathLike):
    """``meshio.read(path)``, with every failure turned into a MeshError naming the file.

    meshio prints its messages and calls ``sys.exit(1)`` when no reader accepts a file
    (meshio 5.3, ``_helpers._read_file``); both are captured here and become the MeshError.
    """
    import meshio

    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "a directory, not a file" if os.path.isdir(path) else "no such file"
        raise MeshError(f"mesh file {path!r}: {what}")
    suffixes = "".join(pathlib.Path(path).suffixes).lower()
    if not any(suffixes.endswith(ext) for ext in meshio.extension_to_filetypes):
        known = ", ".join(sorted(meshio.extension_to_filetypes))
        raise MeshError(
            f"mesh file {path!r}: unsupported format {suffixes!r}; meshio reads {known}"
        )
    if suffixes.endswith(".msh"):
        check_gmsh_node_tags(path)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return meshio.read(path)
    except (Exception, SystemExit) as exc:  # a corrupt file fails deep inside a format reader
        detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SystemExit) else ""
        said = " ".join(chatter.getvalue().split())
        problem = "; ".join(p for p in (detail, said) if p) or "no reader accepted it"
        raise MeshError(f"mesh file {path!r}: corrupt or unreadable ({problem})") from exc


def check_gmsh_node_tags(path: str) -> None:
    """Refuse an ASCII gmsh file whose elements name a node tag that ``$Nodes`` does not list.

    meshio looks node tags up without a bounds check, so a tag 0 becomes the last node (an
    element ``0 1 2`` loads as ``[2, 0, 1]``). Formats 2.x, 4.0 and 4.1 are checked; binary
    files, and files too damaged to parse here, are left to meshio.

    Raises MeshError naming the element and the tag.
    """
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return
    try:
        bad = _unknown_node_tag(text.split("\n"))
    except (ValueError, IndexError, TypeError):  # too damaged for this check: meshio reports it
        return
    if bad is not None:
        element, tag = bad
        why = "non-positive" if tag <= 0 else "not listed in $Nodes"
        raise MeshError(
            f"mesh file {path!r}: element {element} refers to node tag {tag} ({why}); "
            "gmsh node tags start at 1"
        )


def _section(lines: list[str], name: str) -> list[list[int | float]] | None:
    """The number rows of the gmsh section ``$name`` (None when absent)."""
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == f"${name}")
    except StopIteration:
        return None
    rows = []
    for line in lines[start + 1 :]:
        if line.strip() == f"$End{name}":
            return rows
        rows.append([float(w) if ("." in w or "e" in w.lower()) else int(w) for w in line.split()])
    raise ValueError(f"${name} is not closed")


def _unknown_node_tag(lines: list[str]) -> tuple[int, int] | None:
    """(element tag, node tag) of the first element naming a node tag absent from $Nodes."""
    fmt = _section(lines, "MeshFormat")
    nodes, elements = _section(lines, "Nodes"), _section(lines, "Elements")
    if not fmt or nodes is None or elements is None or fmt[0][1] != 0:  # absent, or binary
        return None
    version = float(fmt[0][0])
    tags: set[int] = set()
    if version < 4:
        tags = {int(row[0]) for row in nodes[1:]}
        cells = [(row[0], row[3 + row[2] :]) for row in elements[1:]]
    else:
        i = 1
        for _ in range(int(nodes[0][0])):
            count = int(nodes[i][3])
            if version >= 4.1:
                tags.update(int(r[0]) for r in nodes[i + 1 : i + 1 + count])
                i += 1 + 2 * count
            else:
                tags.update(int(r[0]) for r in nodes[i + 1 : i + 1 + count])
                i += 1 + count
        cells, i = [], 1
        for _ in range(int(elements[0][0])):
            count = int(elements[i][3])
            cells += [(r[0], r[1:]) for r in elements[i + 1 : i + 1 + count]]
            i += 1 + count
    for element, node_tags in cells:
        for tag in node_tags:
            if tag not in tags:
                return int(element), int(tag)
    return None


def spatial_dimension(mesh, source: str) -> int:
    """2 if the mesh's highest cells are triangles/quads, 3 for tetrahedra/hexahedra."""
    types = {block.type for block in mesh.cells if len(block.data)}
    known = {"vertex", "line"} | set(VOLUME_TYPES[2]) | set(VOLUME_TYPES[3])
    for cell_type in sorted(types - known):
        raise MeshError(
            f"mesh {source!r}: unsupported cell type {cell_type!r}; supported: "
            f"{', '.join(sorted(known))} (first-order cells)"
        )
    for dim in (3, 2):
        if types & set(VOLUME_TYPES[dim]):
            return dim
    raise MeshError(
        f"mesh {source!r}: no 2D or 3D cells (found {sorted(types) or 'none'}); "
        f"supported volume cells: {', '.join(VOLUME_TYPES[2] + VOLUME_TYPES[3])}"
    )


def convert(
    mesh,
    source: str,
    tag_key: str | None = None,
    tag_names: Mapping[str, int] | None = None,
):
    """Points, volume cell blocks and named boundary facets of a ``meshio.Mesh``.

    Returns
    -------
    points: (n, dim) array; a 2D mesh stored with a constant z column loses it.
    cells: list of (cell_type, vertex array) volume blocks.
    boundary: {tag name: list of (facet_type, vertex array)}.
    """
    dim = spatial_dimension(mesh, source)
    points = np.asarray(mesh.points, dtype=float)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or points.shape[1] < dim:
        raise MeshError(f"mesh {source!r}: points of shape {points.shape} for a {dim}D mesh")
    if dim == 2 and points.shape[1] == 3:
        z = points[:, 2]
        scale = max(float(np.ptp(points[:, :2])), 1.0)
        if z.size and float(np.ptp(z)) > 1e-12 * scale:
            raise MeshError(
                f"mesh {source!r}: a 2D mesh whose z coordinates vary (a surface in 3D); "
                "only flat 2D meshes and 3D volume meshes are supported"
            )
        points = points[:, :2]
    # vertices, and edges of a 3D mesh, carry neither volume nor boundary: skipped
    allowed = set(VOLUME_TYPES[dim]) | set(FACET_TYPES[dim]) | set(_IGNORED[dim])
    cells = []
    for block in mesh.cells:
        if block.type in VOLUME_TYPES[dim]:
            cells.append((block.type, np.asarray(block.data, dtype=np.int64)))
        if block.type in VOLUME_TYPES[dim] or block.type in FACET_TYPES[dim]:
            _check_indices(block, len(points), source)
        elif block.type not in allowed:
            raise MeshError(
                f"mesh {source!r}: unsupported cell type {block.type!r}; supported: "
                f"{', '.join(VOLUME_TYPES[dim] + FACET_TYPES[dim])} (first-order cells)"
            )
    boundary = _boundary_tags(mesh, dim, source, tag_key, tag_names)
    return points, cells, boundary


def _check_indices(block, n_points: int, source: str) -> None:
    """Every vertex index of a cell block must name a point (0 <= index < n_points)."""
    data = np.asarray(block.data)
    if data.size == 0:
        return
    bad = np.flatnonzero(((data < 0) | (data >= n_points)).any(axis=-1))
    if bad.size:
        row = data[bad[0]]
        raise MeshError(
            f"mesh {source!r}: {block.type} cell {int(bad[0])} refers to point indices "
            f"{row.tolist()}, outside 0..{n_points - 1}"
        )


def _boundary_tags(mesh, dim, source, tag_key, tag_names):
    facet_types = FACET_TYPES[dim]
    blocks = [(i, b) for i, b in enumerate(mesh.cells) if b.type in facet_types]
    tags: dict[str, list] = {}
    if tag_key is None:
        for name, per_block in mesh.cell_sets.items():
            if name.startswith("gmsh:"):  # meshio's bookkeeping, not a user set
                continue
            for i, block in blocks:
                idx = per_block[i] if i < len(per_block) else None
                if idx is not None and len(idx):
                    tags.setdefault(name, []).append((block.type, block.data[np.asarray(idx)]))
        if tags:
            return tags
    key = tag_key if tag_key is not None else _find_tag_key(mesh, blocks)
    if key is None:
        return tags
    if key not in mesh.cell_data:
        raise MeshError(
            f"mesh {source!r}: no cell data {key!r} to read boundary tags from; "
            f"cell data present: {', '.join(mesh.cell_data) or '(none)'}"
        )
    names = _id_names(mesh, dim, tag_names)
    for i, block in blocks:
        ids = np.asarray(mesh.cell_data[key][i])
        if not np.issubdtype(ids.dtype, np.integer):
            if not np.all(ids == np.round(ids)):
                raise MeshError(f"mesh {source!r}: boundary ids {key!r} are not integers")
            ids = ids.astype(np.int64)
        for tag_id in np.unique(ids):
            name = names.get(int(tag_id), str(int(tag_id)))
            tags.setdefault(name, []).append((block.type, block.data[ids == tag_id]))
    return tags


def _find_tag_key(mesh, blocks):
    if not blocks:
        return None
    for key in TAG_KEYS:
        if key in mesh.cell_data:
            return key
    integer = [
        k
        for k, arrays in mesh.cell_data.items()
        if all(np.issubdtype(np.asarray(arrays[i]).dtype, np.integer) for i, _ in blocks)
    ]
    return integer[0] if len(integer) == 1 else None


def _id_names(mesh, dim, tag_names):
    if tag_names is not None:
        return {int(v): k for k, v in tag_names.items()}
    names = {}
    for name, value in mesh.field_data.items():
        value = np.asarray(value).reshape(-1)
        # gmsh $PhysicalNames: [id, dimension]; keep the names of (dim - 1)-dimensional groups
        if value.size == 2 and int(value[1]) == dim - 1:
            names[int(value[0])] = name
    return names
