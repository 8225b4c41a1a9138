"""The fields accessor: the one interface through which every PDE residual is written.

A problem writes its residual once, as a function of a :class:`Fields` object ``f``::

    f["u"]              # the value of field u at the evaluation points
    f.d("u", "x")       # du/dx
    f.d("u", "xx")      # d2u/dx2
    f.d("u", "xt")      # d2u/dxdt (mixed derivatives commute: "tx" is the same request)
    f.laplacian("u")    # u_xx + u_yy (+ u_zz): the spatial Laplacian, one request
    f.coord("x")        # the x coordinate of the evaluation points

Engines (subclasses) decide where the numbers come from: nested autograd
(:class:`AutogradFields`), forward Taylor propagation through a network, finite-difference
stencils on a grid, or FFTs on a periodic grid.  All of them answer the same calls and return
torch tensors, so a residual never knows which engine it runs on.

A derivative is named by a *spec*: a string of single-letter coordinate names (``"xx"``,
``"xy"``) or a tuple of coordinate names (``("x", "x")``) for multi-letter coordinates.
Specs are canonicalised to a sorted tuple of coordinate indices, so ``"xt"`` and ``"tx"`` are
the same derivative.

The Laplacian over the spatial coordinates (every coordinate but ``t``) is the spec
``"laplacian"``.  Engines that can carry it as one quantity do (the Taylor engine propagates
the sum instead of each pure second derivative: the "forward Laplacian" of Li et al. 2023,
arXiv 2307.08214); the others add the pure second derivatives.

Problems declare the derivatives their residual needs (``derivatives = {"u": ("t", "x", "xx")}``);
an engine built with that declaration computes only those and raises
:class:`UndeclaredDerivativeError` for any other request, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

Spec = str | Sequence[str]
Key = tuple[int, ...]

#: spec of the spatial Laplacian (sum of the pure second derivatives along every coordinate
#: but ``t``)
LAPLACIAN_SPEC = "laplacian"
#: its key: a second-order key no coordinate pair can produce
LAPLACIAN: Key = (-1, -1)


def spatial_axes(coordinates: Sequence[str]) -> tuple[int, ...]:
    """Indices of the spatial coordinates (all but ``t``), the axes of :data:`LAPLACIAN`."""
    return tuple(i for i, c in enumerate(coordinates) if c != "t")


class UndeclaredDerivativeError(KeyError):
    """A residual asked for a derivative that its problem did not declare."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


def parse_spec(spec: Spec, coordinates: Sequence[str]) -> Key:
    """Canonical key of a derivative spec: sorted coordinate indices, one per differentiation.

    >>> parse_spec("xt", ("x", "t"))
    (0, 1)
    >>> parse_spec(("t", "x"), ("x", "t"))
    (0, 1)
    """
    index = {c: i for i, c in enumerate(coordinates)}
    if isinstance(spec, str):
        if spec == LAPLACIAN_SPEC and spec not in index:
            if not spatial_axes(coordinates):
                raise ValueError(f"the Laplacian needs a spatial coordinate; got {coordinates}")
            return LAPLACIAN
        if spec in index:  # a single (possibly multi-letter) coordinate
            names: Sequence[str] = (spec,)
        elif all(len(c) == 1 for c in coordinates):
            names = tuple(spec)
        else:
            raise ValueError(
                f"derivative spec {spec!r} is ambiguous for coordinates {tuple(coordinates)}; "
                "pass a tuple of coordinate names"
            )
    else:
        names = tuple(spec)
    if not names:
        raise ValueError("empty derivative spec")
    try:
        return tuple(sorted(index[n] for n in names))
    except KeyError as exc:
        raise ValueError(
            f"derivative spec {spec!r} names coordinate {exc.args[0]!r}; "
            f"the coordinates are {tuple(coordinates)}"
        ) from None


def spec_name(key: Key, coordinates: Sequence[str]) -> str:
    """Human-readable name of a derivative key (``(0, 0)`` -> ``"xx"``)."""
    if key == LAPLACIAN:
        return LAPLACIAN_SPEC
    return "".join(coordinates[i] for i in key)


def declared_keys(
    declared: Mapping[str, Iterable[Spec]] | None, coordinates: Sequence[str]
) -> dict[str, frozenset[Key]] | None:
    """Canonicalise a problem's derivative declaration (None: everything allowed)."""
    if declared is None:
        return None
    return {
        f: frozenset(parse_spec(s, coordinates) for s in specs) for f, specs in declared.items()
    }


class Fields:
    """Base accessor: values, derivatives and coordinates of fields at a set of points.

    Subclasses implement :meth:`_value` and :meth:`_derivative`; this class does the spec
    parsing, the declaration check and the caching, so every engine behaves the same.
    """

    def __init__(
        self,
        coordinates: Sequence[str],
        fields: Sequence[str],
        declared: Mapping[str, Iterable[Spec]] | None = None,
    ):
        self.coordinates = tuple(coordinates)
        self.fields = tuple(fields)
        self._declared = declared_keys(declared, self.coordinates)
        self._cache: dict[tuple[str, Key], torch.Tensor] = {}

    # -- public face -------------------------------------------------------------------------
    def __getitem__(self, field: str) -> torch.Tensor:
        self._check_field(field)
        key = (field, ())
        if key not in self._cache:
            self._cache[key] = self._value(field)
        return self._cache[key]

    def d(self, field: str, spec: Spec) -> torch.Tensor:
        """Derivative of ``field`` named by ``spec``: ``"x"``, ``"xx"``, ``"xy"``."""
        self._check_field(field)
        key = parse_spec(spec, self.coordinates)
        if self._declared is not None and key not in self._declared.get(field, frozenset()):
            declared = sorted(
                spec_name(k, self.coordinates) for k in self._declared.get(field, frozenset())
            )
            raise UndeclaredDerivativeError(
                f"derivative d{field}/d{spec_name(key, self.coordinates)} was not declared; "
                f"declared derivatives of {field!r}: {declared or 'none'}. "
                "Add it to the problem's `derivatives`."
            )
        ck = (field, key)
        if ck not in self._cache:
            self._cache[ck] = (
                self._laplacian(field) if key == LAPLACIAN else self._derivative(field, key)
            )
        return self._cache[ck]

    def laplacian(self, field: str) -> torch.Tensor:
        """Spatial Laplacian of ``field`` (declared as ``"laplacian"``)."""
        return self.d(field, LAPLACIAN_SPEC)

    def coord(self, name: str) -> torch.Tensor:
        """The coordinate ``name`` of the evaluation points."""
        if name not in self.coordinates:
            raise ValueError(f"unknown coordinate {name!r}; coordinates are {self.coordinates}")
        return self._coord(self.coordinates.index(name))

    def grad(self, field: str) -> list[torch.Tensor]:
        """First derivatives of ``field`` in coordinate order (spatial and temporal)."""
        return [self.d(field, (c,)) for c in self.coordinates]

    # -- engine hooks --------------------------------------------------------------------------
    def _value(self, field: str) -> torch.Tensor:
        raise NotImplementedError

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        raise NotImplementedError

    def _coord(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def _laplacian(self, field: str) -> torch.Tensor:
        """The sum of the pure second derivatives (engines with a cheaper way override it)."""
        axes = spatial_axes(self.coordinates)
        out = self._derivative(field, (axes[0], axes[0]))
        for a in axes[1:]:
            out = out + self._derivative(field, (a, a))
        return out

    # -- helpers -------------------------------------------------------------------------------
    def _check_field(self, field: str) -> None:
        if field not in self.fields:
            raise KeyError(f"unknown field {field!r}; fields are {self.fields}")


class AutogradFields(Fields):
    """Derivatives by nested ``torch.autograd.grad``: the universal engine for any network.

    Parameters
    ----------
    points:
        Tensor (n, d) of evaluation points, with ``requires_grad=True``.
    values:
        Mapping field -> tensor (n,) computed from ``points`` (any differentiable function).
    coordinates, declared:
        Coordinate names (columns of ``points``) and the problem's derivative declaration.

    The graph of every derivative is kept, so a loss built from them back-propagates to the
    network parameters.
    Each (field, derivative) is computed once per evaluation and cached; a second derivative
    reuses the cached first derivative, so ``u_xx`` and ``u_xy`` share ``u_x``.
    """

    def __init__(
        self,
        points: torch.Tensor,
        values: Mapping[str, torch.Tensor],
        coordinates: Sequence[str],
        declared: Mapping[str, Iterable[Spec]] | None = None,
    ):
        super().__init__(coordinates, tuple(values), declared)
        if points.ndim != 2 or points.shape[1] != len(self.coordinates):
            raise ValueError(
                f"points must have shape (n, {len(self.coordinates)}); got {tuple(points.shape)}"
            )
        if not points.requires_grad:
            raise ValueError("AutogradFields needs points with requires_grad=True")
        self.points = points
        self._values = dict(values)

    def _value(self, field: str) -> torch.Tensor:
        return self._values[field]

    def _coord(self, index: int) -> torch.Tensor:
        return self.points[:, index]

    def _gradient(self, y: torch.Tensor) -> torch.Tensor:
        if not y.requires_grad:  # e.g. a field that does not depend on the inputs
            return torch.zeros_like(self.points)
        (g,) = torch.autograd.grad(
            y,
            self.points,
            grad_outputs=torch.ones_like(y),
            create_graph=True,
            retain_graph=True,
        )
        return g

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        lower = key[:-1]
        base = self[field] if not lower else self._cached_or_compute(field, lower)
        grads_key = (field, ("grad",) + lower)  # full gradient of the lower derivative, cached
        if grads_key not in self._cache:
            self._cache[grads_key] = self._gradient(base)
        return self._cache[grads_key][:, key[-1]]

    def _cached_or_compute(self, field: str, key: Key) -> torch.Tensor:
        ck = (field, key)
        if ck not in self._cache:  # intermediate derivatives need not be declared
            self._cache[ck] = self._derivative(field, key)
        return self._cache[ck]
