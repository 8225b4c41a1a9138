"""Round primitives, polygons and constructive solid geometry (union, difference, intersection).

Every domain here is described by a signed distance function ``sdf(x)`` (negative inside), so
membership of the *closed* domain is ``sdf(x) <= tol`` and set operations are exact in sign
(Ricci 1973, "A constructive geometry for computer graphics"):

    union: min(a, b)        intersection: max(a, b)        difference A \\ B: max(a, -b).

Sampling, with the caller's ``numpy.random.Generator`` and any method of
:func:`~pdekit.geometries.sampling.unit_samples`:

* interior of a primitive: a measure-preserving map of the unit cube (polar maps for balls);
  interior of a CSG domain: rejection from its bounding box;
* boundary of a CSG domain: each primitive samples its own boundary parts by area, and a
  point ``p`` with the primitive's outward normal ``n`` is kept iff the domain holds
  ``p - eps n`` but not ``p + eps n``; the domain's outward normal is then ``n`` (or ``-n``
  where the orders are reversed, as on the hole of a difference). Points drawn uniformly on the
  parts and kept by this test are uniform on the domain's boundary.

Boundary tags pass through the set operations by name (``Disk(..., tag="cylinder")``); parts
with the same name are one tag. :meth:`Domain.rename` maps names (``{"xmin": "inlet"}``),
several names onto one if wanted. ``domain.mesh(h)`` triangulates a 2D/3D domain
(:mod:`pdekit.geometries.meshing`) so that results on it can be written on a real mesh.

Axis-aligned boxes (:class:`~pdekit.geometries.primitives.Hyperrectangle`) take part as they
are: ``Rectangle([0, 0], [2.2, 0.41]) - Disk([0.2, 0.2], 0.05, tag="cylinder")``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries.sampling import split_counts, unit_samples

#: relative tolerance of membership (times the domain's diameter)
TOL = 1e-12
#: relative size of the step along the normal that decides whether a primitive's boundary
#: point lies on the domain's boundary (times the domain's diameter)
EPS = 1e-7
#: quasi-random points per scramble, and scrambles, of the volume estimate of CSG domains
VOLUME_POINTS, VOLUME_SCRAMBLES = 2**15, 8


class CSGOperators:
    """``a | b`` (union), ``a & b`` (intersection), ``a - b`` (difference) for domains."""

    def __or__(self, other):
        return Union(self, other)

    def __and__(self, other):
        return Intersection(self, other)

    def __sub__(self, other):
        return Difference(self, other)


class Domain(CSGOperators):
    """Base of the domains in this module: membership, sampling and meshing from an sdf.

    Subclasses define ``dim``, ``bounds``, ``signed_distance``, ``volume``, and either
    ``_pieces`` (composite domains) or the leaf boundary methods ``boundary_tags``,
    ``boundary_area(tag)``, ``sample_boundary``, ``boundary_nodes(h)``.
    """

    dim: int
    convex = False

    @property
    def periodic(self) -> tuple[bool, ...]:
        return (False,) * self.dim

    @property
    def diameter(self) -> float:
        lo, hi = self.bounds
        return float(np.linalg.norm(hi - lo))

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Which points lie in the closed domain (to a tolerance of 1e-12 of its diameter)."""
        return self.signed_distance(_points(x, self.dim)) <= TOL * self.diameter

    def sample_interior(self, n: int, rng=None, method: str = "sobol") -> np.ndarray:
        """``n`` points uniform in the domain, by rejection from the bounding box."""
        rng = np.random.default_rng(rng)
        lo, hi = self.bounds
        fraction = max(self.volume() / float(np.prod(hi - lo)), 1e-3)
        out, have = [], 0
        while have < n:
            m = int(math.ceil((n - have) / fraction * 1.1)) + 64
            x = lo + (hi - lo) * unit_samples(m, self.dim, method, rng)
            x = x[self.signed_distance(x) <= 0.0]
            out.append(x)
            have += len(x)
        return np.concatenate(out)[:n] if out else np.zeros((0, self.dim))

    def rename(self, mapping: Mapping[str, str]) -> Domain:
        """The same domain with boundary tags renamed (several names may map to one)."""
        return Tagged(self, mapping)

    def mesh(self, h: float | None = None):
        """A conforming simplicial :class:`~pdekit.geometries.mesh.MeshGeometry` of the domain
        with node spacing about ``h`` (default: diameter / 50), boundary tags carried over."""
        from pdekit.geometries.meshing import mesh_domain

        return mesh_domain(self, h)

    def to_pyvista(self, h: float | None = None):
        """The domain's mesh (:meth:`mesh`) as a ``pyvista.UnstructuredGrid``."""
        return self.mesh(h).to_pyvista()


class Composite(Domain):
    """A domain built from others: boundary sampling, tags and areas from their parts."""

    def _pieces(self) -> list[tuple[object, str, str]]:
        """(primitive, its tag, this domain's name for it) for every boundary part."""
        return [piece for part in self.parts for piece in pieces(part)]

    @property
    def boundary_tags(self) -> tuple[str, ...]:
        names = dict.fromkeys(name for _, _, name in self._pieces())
        return tuple(n for n in names if self.boundary_area(n) > 0)

    def boundary_area(self, tag: str | None = None) -> float:
        """Length/area of the boundary (or of one tag): each part's area times the fraction of
        its quasi-random points that lie on this boundary (exact when that fraction is 0 or 1,
        else a quasi-Monte Carlo estimate from 2^14 points)."""
        if not hasattr(self, "_area_cache"):
            self._area_cache = {}
            for i, (leaf, leaf_tag, name) in enumerate(self._pieces()):
                p, nrm = leaf.sample_boundary(2**14, leaf_tag, rng=i, method="sobol")
                keep, _ = self._on_boundary(p, nrm)
                area = leaf.boundary_area(leaf_tag) * keep.mean()
                self._area_cache[name] = self._area_cache.get(name, 0.0) + area
        if tag is None:
            return float(sum(self._area_cache.values()))
        if tag not in self._area_cache:
            raise UnknownNameError("boundary tag", tag, self._area_cache)
        return float(self._area_cache[tag])

    def _on_boundary(self, p, normal):
        """Keep-mask of primitive boundary points on this boundary, and its outward normals."""
        eps = EPS * self.diameter
        inner = self.signed_distance(p - eps * normal) < 0.0
        outer = self.signed_distance(p + eps * normal) < 0.0
        keep = inner != outer
        return keep, np.where(inner[:, None], normal, -normal)

    def sample_boundary(
        self, n: int, tag: str | None = None, rng=None, method: str = "sobol"
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points uniform on the boundary (or one tag) and their outward unit normals."""
        rng = np.random.default_rng(rng)
        chosen = [pc for pc in self._pieces() if tag is None or pc[2] == tag]
        if not chosen:
            raise UnknownNameError("boundary tag", str(tag), self.boundary_tags)
        areas = np.array([leaf.boundary_area(t) for leaf, t, _ in chosen])
        total = self.boundary_area(tag)
        if total <= 0:
            raise ParameterError(f"boundary tag {tag!r} has no part on this domain's boundary")
        fraction = max(total / areas.sum(), 1e-3)
        pts, nrms, have = [], [], 0
        while have < n:
            m = int(math.ceil((n - have) / fraction * 1.1)) + 64
            counts = split_counts(m, areas / areas.sum(), rng)
            for (leaf, leaf_tag, _), k in zip(chosen, counts):
                p, nrm = leaf.sample_boundary(int(k), leaf_tag, rng, method)
                keep, outward = self._on_boundary(p, nrm)
                pts.append(p[keep])
                nrms.append(outward[keep])
                have += int(keep.sum())
        p, nrm = np.concatenate(pts), np.concatenate(nrms)
        pick = rng.permutation(len(p))[:n]  # parts were drawn in blocks: shuffle, then cut
        return p[pick], nrm[pick]

    def volume(self) -> float:
        """Exact where the parts allow it (nested or disjoint), else a randomised quasi-Monte
        Carlo estimate (8 scrambles of 2^15 Sobol points; its standard error is
        ``volume_error()``)."""
        return self._volume()[0]

    def volume_error(self) -> float:
        """Standard error of :meth:`volume` (0 where it is exact)."""
        return self._volume()[1]

    def _volume(self):
        if not hasattr(self, "_volume_cache"):
            exact = self._exact_volume()
            self._volume_cache = (exact, 0.0) if exact is not None else _qmc_volume(self)
        return self._volume_cache

    def _exact_volume(self) -> float | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(p) for p in self.parts)})"


class Union(Composite):
    """The union of domains (sdf: the minimum of theirs)."""

    def __init__(self, *parts):
        self.parts = _check_parts(parts, "Union")
        self.dim = self.parts[0].dim

    @property
    def bounds(self) -> np.ndarray:
        b = np.stack([p.bounds for p in self.parts])
        return np.stack([b[:, 0].min(axis=0), b[:, 1].max(axis=0)])

    def signed_distance(self, x):
        return np.min([p.signed_distance(x) for p in self.parts], axis=0)

    def _exact_volume(self):
        if _pairwise_disjoint_boxes(self.parts):
            return float(sum(p.volume() for p in self.parts))
        return None


class Intersection(Composite):
    """The intersection of domains (sdf: the maximum of theirs)."""

    def __init__(self, *parts):
        self.parts = _check_parts(parts, "Intersection")
        self.dim = self.parts[0].dim
        self.convex = all(getattr(p, "convex", False) for p in self.parts)

    @property
    def bounds(self) -> np.ndarray:
        b = np.stack([p.bounds for p in self.parts])
        lo, hi = b[:, 0].max(axis=0), b[:, 1].min(axis=0)
        if np.any(hi <= lo):
            raise ParameterError("the intersection is empty: the bounding boxes do not overlap")
        return np.stack([lo, hi])

    def signed_distance(self, x):
        return np.max([p.signed_distance(x) for p in self.parts], axis=0)

    def _exact_volume(self):
        for inner in self.parts:  # one part inside all others: the intersection is that part
            if all(o is inner or _inside(inner, o) for o in self.parts):
                return inner.volume()
        return None


class Difference(Composite):
    """``a`` with ``b`` cut out (sdf: max(a, -b)); ``b``'s boundary inside ``a`` becomes
    boundary, with normals pointing into ``b``."""

    def __init__(self, a, b):
        self.parts = _check_parts((a, b), "Difference")
        self.dim = a.dim

    @property
    def bounds(self) -> np.ndarray:
        return self.parts[0].bounds

    def signed_distance(self, x):
        a, b = self.parts
        return np.maximum(a.signed_distance(x), -b.signed_distance(x))

    def _exact_volume(self):
        a, b = self.parts
        if _inside(b, a):
            return a.volume() - b.volume()
        if _pairwise_disjoint_boxes(self.parts):
            return a.volume()
        return None


class Tagged(Composite):
    """A domain with its boundary tags renamed by ``mapping`` (names not in it are kept)."""

    def __init__(self, part, mapping: Mapping[str, str]):
        self.parts = _check_parts((part,), "rename")
        self.dim = part.dim
        self.mapping = dict(mapping)
        unknown = set(self.mapping) - {name for _, _, name in pieces(part)}
        if unknown:
            raise UnknownNameError("boundary tag", sorted(unknown)[0], part.boundary_tags)

    @property
    def bounds(self) -> np.ndarray:
        return self.parts[0].bounds

    def signed_distance(self, x):
        return self.parts[0].signed_distance(x)

    def _pieces(self):
        return [(leaf, t, self.mapping.get(name, name)) for leaf, t, name in pieces(self.parts[0])]

    def _exact_volume(self):
        return self.parts[0].volume()

    def __repr__(self) -> str:
        return f"{self.parts[0]!r}.rename({self.mapping!r})"


# -- primitives ------------------------------------------------------------------------------------
class Ball(Domain):
    """The closed ball ``|x - c| <= r`` in 2D (a disk) or 3D; its boundary is one tag.

    Interior points: radius r u^(1/d) and a uniform direction (2D: angle 2 pi u; 3D: height
    z = 1 - 2u and angle 2 pi u', uniform on the sphere by Archimedes' hat-box theorem), a
    measure-preserving map of the unit cube, so quasi-random points stay well spread.
    """

    convex = True

    def __init__(self, center: Sequence[float], radius: float, tag: str = "boundary"):
        center = np.asarray(center, dtype=float).reshape(-1)
        if center.size not in (2, 3) or not np.all(np.isfinite(center)):
            raise ParameterError(f"center must be a finite 2D or 3D point; got {center}")
        if not (np.isfinite(radius) and radius > 0):
            raise ParameterError(f"radius must be finite and > 0; got {radius}")
        self.center, self.radius, self.tag = center, float(radius), str(tag)
        self.dim = center.size

    @property
    def bounds(self) -> np.ndarray:
        return np.stack([self.center - self.radius, self.center + self.radius])

    @property
    def boundary_tags(self) -> tuple[str, ...]:
        return (self.tag,)

    def signed_distance(self, x):
        return np.linalg.norm(x - self.center, axis=1) - self.radius

    def volume(self) -> float:
        return math.pi * self.radius**2 if self.dim == 2 else 4 / 3 * math.pi * self.radius**3

    def boundary_area(self, tag: str | None = None) -> float:
        self._check_tag(tag)
        r = self.radius
        return 2 * math.pi * r if self.dim == 2 else 4 * math.pi * r**2

    def _directions(self, u):
        if self.dim == 2:
            phi = 2 * math.pi * u[:, 0]
            return np.stack([np.cos(phi), np.sin(phi)], axis=1)
        z, phi = 1 - 2 * u[:, 0], 2 * math.pi * u[:, 1]
        s = np.sqrt(np.maximum(1 - z**2, 0.0))
        return np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=1)

    def sample_interior(self, n: int, rng=None, method: str = "sobol") -> np.ndarray:
        u = unit_samples(n, self.dim, method, rng)
        r = self.radius * u[:, -1:] ** (1.0 / self.dim)
        return self.center + r * self._directions(u[:, :-1])

    def sample_boundary(self, n: int, tag: str | None = None, rng=None, method: str = "sobol"):
        self._check_tag(tag)
        d = self._directions(unit_samples(n, max(self.dim - 1, 1), method, rng))
        return self.center + self.radius * d, d

    def boundary_nodes(self, h: float, tag: str | None = None):
        """Nodes spaced ~h on the circle (equal angles) or sphere (Fibonacci lattice)."""
        self._check_tag(tag)
        if self.dim == 2:
            k = max(int(math.ceil(2 * math.pi * self.radius / h)), 8)
            u = (np.arange(k)[:, None] + 0.5) / k
        else:
            k = max(int(math.ceil(self.boundary_area() / (math.sqrt(3) / 2 * h * h))), 20)
            i = np.arange(k) + 0.5
            golden = (1 + math.sqrt(5)) / 2
            u = np.stack([i / k, (i / golden) % 1.0], axis=1)
        d = self._directions(u)
        return self.center + self.radius * d, d

    def _check_tag(self, tag):
        if tag is not None and tag != self.tag:
            raise UnknownNameError("boundary tag", tag, (self.tag,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.center.tolist()}, {self.radius}, tag={self.tag!r})"


class Disk(Ball):
    """The closed disk ``|x - c| <= r`` in the plane."""

    def __init__(self, center: Sequence[float], radius: float, tag: str = "boundary"):
        if len(center) != 2:
            raise ParameterError(f"a Disk needs a 2D center; got {center}")
        super().__init__(center, radius, tag)


#: DeepXDE's name for the solid ball
Sphere = Ball


class Polygon(Domain):
    """A simple polygon (vertices in order, either orientation; no self-intersections).

    ``tags``: one name for the whole boundary, or one name per edge, edge i joining vertex i to
    vertex i + 1 (in the order given). Membership by the even-odd rule; the signed distance
    is the distance to the nearest edge.
    """

    dim = 2

    def __init__(self, vertices, tags: str | Sequence[str] = "boundary"):
        v = np.asarray(vertices, dtype=float)
        if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3 or not np.all(np.isfinite(v)):
            raise ParameterError(f"vertices must be (m >= 3, 2) finite values; got {v.shape}")
        edge_tags = [tags] * len(v) if isinstance(tags, str) else [str(t) for t in tags]
        if len(edge_tags) != len(v):
            raise ParameterError(f"need one tag per edge ({len(v)}); got {len(edge_tags)}")
        x, y = v[:, 0], v[:, 1]
        signed = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        if abs(signed) <= 1e-14 * np.ptp(v, axis=0).prod():
            raise ParameterError("the polygon has zero area")
        if signed < 0:  # make it counter-clockwise; edge i (v_i -> v_i+1) becomes reversed
            v = v[::-1]
            edge_tags = edge_tags[-2::-1] + edge_tags[-1:]
        self.vertices, self.edge_tags = v, edge_tags
        self._a, self._b = v, np.roll(v, -1, axis=0)
        t = self._b - self._a
        self._length = np.linalg.norm(t, axis=1)
        if np.any(self._length <= 0):
            raise ParameterError("the polygon has repeated consecutive vertices")
        self._normal = np.stack([t[:, 1], -t[:, 0]], axis=1) / self._length[:, None]
        _check_simple(self._a, self._b)
        turns = _cross2(t, np.roll(t, -1, axis=0))
        self.convex = bool(np.all(turns >= -1e-14 * self._length.max() ** 2))
        self._area = abs(signed)

    @property
    def bounds(self) -> np.ndarray:
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @property
    def boundary_tags(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.edge_tags))

    def volume(self) -> float:
        return float(self._area)

    def signed_distance(self, x):
        x = np.asarray(x, dtype=float)
        dist = np.full(len(x), np.inf)
        inside = np.zeros(len(x), bool)
        for a, b, t, length in zip(self._a, self._b, self._b - self._a, self._length):
            s = np.clip(((x - a) @ t) / length**2, 0.0, 1.0)
            dist = np.minimum(dist, np.linalg.norm(x - (a + s[:, None] * t), axis=1))
            crosses = (a[1] > x[:, 1]) != (b[1] > x[:, 1])  # even-odd rule, ray towards +x
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = a[0] + (x[:, 1] - a[1]) * t[0] / t[1]
            inside ^= crosses & (x[:, 0] < xc)
        return np.where(inside, -dist, dist)

    def _edges(self, tag):
        if tag is None:
            return np.arange(len(self.edge_tags))
        edges = np.flatnonzero([t == tag for t in self.edge_tags])
        if edges.size == 0:
            raise UnknownNameError("boundary tag", tag, self.boundary_tags)
        return edges

    def boundary_area(self, tag: str | None = None) -> float:
        return float(self._length[self._edges(tag)].sum())

    def sample_boundary(self, n: int, tag: str | None = None, rng=None, method: str = "sobol"):
        edges = self._edges(tag)
        u = unit_samples(n, 2, method, rng)
        cdf = np.cumsum(self._length[edges])
        e = edges[np.minimum(np.searchsorted(cdf, u[:, 0] * cdf[-1], side="right"), len(cdf) - 1)]
        p = self._a[e] + u[:, 1:] * (self._b[e] - self._a[e])
        return p, self._normal[e].copy()

    def boundary_nodes(self, h: float, tag: str | None = None):
        pts, nrm = [], []
        for e in self._edges(tag):
            k = max(int(math.ceil(self._length[e] / h)), 1)
            s = np.arange(k + 1)[:, None] / k
            pts.append(self._a[e] + s * (self._b[e] - self._a[e]))
            nrm.append(np.repeat(self._normal[e][None], k + 1, axis=0))
        return np.concatenate(pts), np.concatenate(nrm)

    def __repr__(self) -> str:
        return f"Polygon({len(self.vertices)} vertices, tags={self.boundary_tags})"


# -- helpers ---------------------------------------------------------------------------------------
def pieces(geometry) -> list[tuple[object, str, str]]:
    """(primitive, its tag, name) for every boundary part of a domain or a primitive."""
    if isinstance(geometry, Composite):
        return geometry._pieces()
    return [(geometry, t, t) for t in geometry.boundary_tags]


def _points(x, dim):
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if x.shape[1] != dim:
        raise ParameterError(f"points must have {dim} columns; got shape {x.shape}")
    return x


def _check_parts(parts, what):
    if not parts:
        raise ParameterError(f"{what} needs at least one domain")
    dims = {p.dim for p in parts}
    if len(dims) != 1:
        raise ParameterError(f"{what} of domains of different dimensions {sorted(dims)}")
    if dims.pop() not in (2, 3):
        raise ParameterError(f"{what}: CSG is defined for 2D and 3D domains")
    for p in parts:
        if any(p.periodic):
            raise ParameterError(f"{what} of a periodic domain ({p!r}) is not supported")
        if not hasattr(p, "signed_distance"):
            raise ParameterError(f"{what}: {p!r} has no signed distance; it cannot be combined")
    return tuple(parts)


def _inside(inner, outer) -> bool:
    """True when ``inner`` is certainly inside ``outer``: a convex ``outer`` holding every
    corner of ``inner``'s bounding box holds the box, hence ``inner``."""
    if not getattr(outer, "convex", False):
        return False
    lo, hi = inner.bounds
    corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(len(lo), -1).T
    return bool(np.all(outer.signed_distance(corners) <= 0.0))


def _pairwise_disjoint_boxes(parts) -> bool:
    boxes = [p.bounds for p in parts]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            lo = np.maximum(boxes[i][0], boxes[j][0])
            hi = np.minimum(boxes[i][1], boxes[j][1])
            if np.all(hi > lo):
                return False
    return True


def _qmc_volume(domain) -> tuple[float, float]:
    """Randomised QMC estimate of a domain's volume and its standard error (Owen 1997)."""
    lo, hi = domain.bounds
    box = float(np.prod(hi - lo))
    rng = np.random.default_rng(0)
    est = []
    for _ in range(VOLUME_SCRAMBLES):
        x = lo + (hi - lo) * unit_samples(VOLUME_POINTS, domain.dim, "sobol", rng)
        est.append(box * np.mean(domain.signed_distance(x) <= 0.0))
    est = np.array(est)
    return float(est.mean()), float(est.std(ddof=1) / math.sqrt(len(est)))


def _cross2(a, b):
    """z-component of the cross product of 2D vectors."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _check_simple(a, b):
    """Raise if two non-adjacent edges of a polygon intersect."""
    m = len(a)
    if m > 2000:  # O(m^2) test: skipped for very fine polygons
        return
    t = b - a
    i, j = np.triu_indices(m, k=2)
    adjacent = (i == 0) & (j == m - 1)
    i, j = i[~adjacent], j[~adjacent]
    d = a[j] - a[i]
    denom = _cross2(t[i], t[j])
    with np.errstate(divide="ignore", invalid="ignore"):
        s = _cross2(d, t[j]) / denom
        u = _cross2(d, t[i]) / denom
    hit = (denom != 0) & (s >= 0) & (s <= 1) & (u >= 0) & (u <= 1)
    if np.any(hit):
        k = np.flatnonzero(hit)[0]
        raise ParameterError(f"the polygon is not simple: edges {i[k]} and {j[k]} intersect")
