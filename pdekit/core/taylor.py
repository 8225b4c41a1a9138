"""Forward Taylor propagation: value, first and chosen second derivatives through a network.

A :class:`Jet` carries, at n points and for h features, the value ``v``, the first derivatives
``v_i`` along k input directions and the second derivatives ``v_ij`` for an explicit list of m
pairs (i, j), stacked into one tensor of shape ``(1 + k + m, n, h)``.  Propagating a jet through
the layers of a network is the forward mode of automatic differentiation truncated at second
order ("Taylor mode"; Griewank & Walther 2008, "Evaluating Derivatives", ch. 13), with the
rules, for an affine map ``y = W x + b`` and an elementwise function ``s``:

    y = W v + b,            y_i = W v_i,             y_ij = W v_ij
    z = s(v),               z_i = s'(v) v_i,         z_ij = s'(v) v_ij + s''(v) v_i v_j

A jet may also carry the *Laplacian* ``L = sum_{i in S} v_ii`` over a set S of directions as
one slot instead of ``|S|`` pure second derivatives (the "forward Laplacian", Li, Ye, Wang et al.
2023, arXiv 2307.08214), with the rules ``y_L = W v_L`` and
``z_L = s'(v) v_L + s''(v) sum_{i in S} v_i^2``.

Because the derivative slots are stacked, each affine layer is one matrix product over all
``(1 + k + m [+ 1]) n`` rows.  Only the requested second-derivative pairs are carried, so the
cost is set by what the residual declares.  Gradients with respect to the network parameters
come from ordinary reverse mode through these operations (no nested ``autograd.grad``, so the
whole forward-and-backward step can also be traced by ``torch.compile``).

A network supports the engine by implementing ``forward_taylor(jet) -> jet`` with these ops;
:class:`TaylorFields` then serves the fields accessor from one such propagation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch.nn import functional as F

from pdekit.core.fields import (
    LAPLACIAN,
    Fields,
    Key,
    Spec,
    declared_keys,
    spatial_axes,
    spec_name,
)
from pdekit.errors import ParameterError, UnknownNameError

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SOFTPLUS_THRESHOLD = 20.0  # torch's softplus is the identity above it (and so is its derivative)


def _tanh(z):
    t = torch.tanh(z)
    d1 = 1.0 - t * t
    return t, d1, -2.0 * t * d1


def _sin(z):
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _cos(z):
    c = torch.cos(z)
    return c, -torch.sin(z), -c


def _gelu(z):
    # gelu(z) = z Phi(z); gelu' = Phi + z phi; gelu'' = phi (2 - z^2)   (exact erf form)
    cdf = 0.5 * (1.0 + torch.erf(z * _SQRT1_2))
    pdf = _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
    return F.gelu(z), cdf + z * pdf, pdf * (2.0 - z * z)


def _softplus(z):
    sig = torch.sigmoid(z)
    linear = z > _SOFTPLUS_THRESHOLD
    d1 = torch.where(linear, torch.ones_like(z), sig)
    d2 = torch.where(linear, torch.zeros_like(z), sig * (1.0 - sig))
    return F.softplus(z), d1, d2


def _reciprocal(z):
    r = 1.0 / z
    r2 = r * r
    return r, -r2, 2.0 * r2 * r


#: elementwise functions with their exact first and second derivatives: name -> z -> (s, s', s'')
ELEMENTWISE = {
    "tanh": _tanh,
    "sin": _sin,
    "cos": _cos,
    "gelu": _gelu,
    "softplus": _softplus,
    "reciprocal": _reciprocal,
}


class Jet:
    """Value, first derivatives and selected second derivatives of h features at n points.

    Attributes
    ----------
    data:
        Tensor ``(1 + k + m, n, h)``: slot 0 the value, slots 1..k the first derivatives along
        the k directions, then one slot per second-derivative pair.
    offset:
        None, or a feature vector (h,) still to be added to the value slot: an affine layer's
        bias is kept aside until the next elementwise function, so no full-size tensor is
        rewritten (or sliced in the backward pass) to add it.
    nfirst:
        k, the number of first-derivative directions.
    pairs:
        The m pairs (a, b), a <= b, of first-derivative slots (0-based) whose mixed second
        derivative is carried.
    lap:
        First-derivative slots (0-based, increasing) whose pure second derivatives are carried
        summed, in one last slot (the Laplacian); empty: no such slot.
    """

    __slots__ = ("data", "offset", "nfirst", "pairs", "lap", "_diag", "_lap_run")

    def __init__(
        self,
        data: torch.Tensor,
        nfirst: int,
        pairs: Sequence[tuple[int, int]],
        offset: torch.Tensor | None = None,
        lap: Sequence[int] = (),
    ):
        self.data = data
        self.offset = offset
        self.nfirst = nfirst
        self.pairs = tuple((int(a), int(b)) for a, b in pairs)
        self.lap = tuple(int(a) for a in lap)
        self._diag = _diagonal_run(self.pairs)
        self._lap_run = _diagonal_run(tuple((a, a) for a in self.lap))

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def input(
        cls,
        points: torch.Tensor,
        directions: Sequence[int],
        pairs: Sequence[tuple[int, int]],
        lap: Sequence[int] = (),
    ) -> Jet:
        """The jet of the identity map at ``points`` (n, d): unit first derivatives along the
        coordinates ``directions`` and zero second derivatives for the slot ``pairs`` (and the
        Laplacian over the direction slots ``lap``)."""
        n, d = points.shape
        eye = torch.eye(d, dtype=points.dtype, device=points.device)
        first = eye[list(directions)][:, None, :].expand(len(directions), n, d)
        second = points.new_zeros(len(pairs) + (1 if lap else 0), n, d)
        return cls(torch.cat([points[None], first, second]), len(directions), pairs, lap=lap)

    def like(self, data: torch.Tensor, offset: torch.Tensor | None = None) -> Jet:
        """A jet with the same directions and pairs holding ``data`` (+ ``offset``)."""
        out = Jet.__new__(Jet)
        out.data, out.offset, out.nfirst = data, offset, self.nfirst
        out.pairs, out._diag = self.pairs, self._diag
        out.lap, out._lap_run = self.lap, self._lap_run
        return out

    # -- views -------------------------------------------------------------------------------
    def parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(value (n, h), first (k, n, h), second (m, n, h)), the offset added to the value."""
        k = self.nfirst
        v, g, s = self.data.split([1, k, self.data.shape[0] - 1 - k])
        v = v.squeeze(0)  # a view: indexing v[0] would scatter into zeros in the backward
        return (v if self.offset is None else v + self.offset), g, s

    @property
    def value(self) -> torch.Tensor:
        return self.parts()[0]

    @property
    def first(self) -> torch.Tensor:
        return self.parts()[1]

    @property
    def second(self) -> torch.Tensor:
        """(m [+ 1], n, h): the carried pairs, then the Laplacian if carried."""
        return self.parts()[2]

    def stacked(self) -> torch.Tensor:
        """``data`` with the offset applied: (1 + k + m, n, h)."""
        if self.offset is None:
            return self.data
        v, rest = self.data.split([1, self.data.shape[0] - 1])
        return torch.cat([v + self.offset, rest])

    @property
    def width(self) -> int:
        return self.data.shape[-1]

    # -- linear operations -------------------------------------------------------------------
    def linear(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Jet:
        """``x W^T + b`` (``torch.nn.Linear`` convention): one matmul over all slots.

        ``W^T`` is made contiguous first (a copy of the small weight matrix): MKL's plain
        product of two row-major matrices measured faster here than its transposed-operand
        variant on these tall-skinny shapes (49152 x 100 by 100 x 100, one thread: 9.4 ms
        against 12-17 ms; NS training step, compiled: 205 against 218 ms of CPU time).
        """
        return self.like(torch.matmul(self.stacked(), weight.t().contiguous()), bias)

    def affine(self, scale, shift=None) -> Jet:
        """Featurewise ``scale * x + shift`` (scale, shift broadcast over the feature axis)."""
        offset = None if self.offset is None else self.offset * scale
        if shift is not None:
            offset = shift if offset is None else offset + shift
        return self.like(self.data * scale, offset)

    def select(self, columns: Sequence[int]) -> Jet:
        """The features ``columns`` (a copy)."""
        cols = list(columns)
        return self.like(self.data[..., cols], None if self.offset is None else self.offset[cols])

    def narrow(self, start: int, length: int) -> Jet:
        """The features ``start .. start + length - 1`` (a view)."""
        off = None if self.offset is None else self.offset.narrow(-1, start, length)
        return self.like(self.data.narrow(-1, start, length), off)

    def __add__(self, other: Jet | float) -> Jet:
        if not isinstance(other, Jet):
            return self.add_constant(_number(other))
        return self.like(self.data + other.data, _add(self.offset, other.offset))

    __radd__ = __add__

    def __sub__(self, other: Jet | float) -> Jet:
        if not isinstance(other, Jet):
            return self.add_constant(-_number(other))
        neg = None if other.offset is None else -other.offset
        return self.like(self.data - other.data, _add(self.offset, neg))

    def __rsub__(self, other: float) -> Jet:
        return (-self).add_constant(_number(other))

    def __neg__(self) -> Jet:
        return self.like(-self.data, None if self.offset is None else -self.offset)

    def add_constant(self, c) -> Jet:
        """``x + c`` for a number ``c``: the value shifts, derivatives do not (the shift is kept
        as a feature vector on the data's device, like a bias, so ``select`` and ``narrow``
        take it along)."""
        shift = torch.full((self.width,), float(c), dtype=self.data.dtype, device=self.data.device)
        return self.like(self.data, _add(self.offset, shift))

    # -- nonlinear operations ----------------------------------------------------------------
    def _pair_products(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``g_a * h_b`` for every carried pair (a, b), then ``sum_{a in lap} g_a * h_a`` if
        the Laplacian is carried: (m [+ 1], n, w)."""
        out = []
        if self.pairs:
            out.append(_products(g, h, self.pairs, self._diag))
        if self.lap:
            diag = tuple((a, a) for a in self.lap)
            out.append(_products(g, h, diag, self._lap_run).sum(0, keepdim=True))
        return out[0] if len(out) == 1 else torch.cat(out)

    @property
    def nsecond(self) -> int:
        """Second-order slots carried: pairs, plus one for the Laplacian."""
        return len(self.pairs) + (1 if self.lap else 0)

    def apply(self, name: str) -> Jet:
        """Elementwise function ``name`` (tanh, sin, cos, gelu, softplus, reciprocal) by the
        chain rule."""
        try:
            fn = ELEMENTWISE[name]
        except KeyError:
            raise UnknownNameError("Taylor-mode elementwise function", name, ELEMENTWISE) from None
        v, g, s = self.parts()
        s0, s1, s2 = fn(v)
        out = [s0[None], s1 * g]
        if self.nsecond:
            out.append(torch.addcmul(s1 * s, s2, self._pair_products(g, g)))
        return self.like(torch.cat(out))

    def reciprocal(self) -> Jet:
        """``1 / x`` elementwise (the value must not vanish)."""
        return self.apply("reciprocal")

    def __truediv__(self, other: Jet | float) -> Jet:
        if not isinstance(other, Jet):
            return self.affine(1.0 / _number(other))
        return self * other.reciprocal()

    def __rtruediv__(self, other: float) -> Jet:
        return self.reciprocal().affine(_number(other))

    def __rmul__(self, other: float) -> Jet:
        return self.affine(_number(other))

    def __pow__(self, exponent: int) -> Jet:
        """``x ** n`` for a whole n >= 1 (repeated products)."""
        if not isinstance(exponent, int) or isinstance(exponent, bool) or exponent < 1:
            raise ParameterError(f"a jet's power must be a whole number >= 1; got {exponent!r}")
        out = self
        for _ in range(exponent - 1):
            out = out * self
        return out

    def __mul__(self, other: Jet | float) -> Jet:
        """Elementwise product by the Leibniz rule (a number scales)."""
        if not isinstance(other, Jet):
            return self.affine(_number(other))
        va, ga, sa = self.parts()
        vb, gb, sb = other.parts()
        out = [(va * vb)[None], ga * vb + va * gb]
        if self.nsecond:
            cross = self._pair_products(ga, gb)
            # g_a h_b + g_b h_a = 2 g_a h_b when every carried pair is pure (a, a); the
            # Laplacian's sum of g_a h_a always is
            symmetric = self._diag is not None or not self.pairs
            cross = cross + (cross if symmetric else self._pair_products(gb, ga))
            out.append(sa * vb + va * sb + cross)
        return self.like(torch.cat(out))


def _number(value) -> float:
    """``value`` as a float, for arithmetic of a jet with a constant: only plain numbers (a
    tensor would be taken as a constant and its own derivatives lost)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(
            f"a jet combines with jets and plain numbers only; got {type(value).__name__}"
        )
    return float(value)


def _products(
    g: torch.Tensor, h: torch.Tensor, pairs: tuple[tuple[int, int], ...], diag: int | None
) -> torch.Tensor:
    """``g_a * h_b`` for the slot ``pairs`` (a, b): (len(pairs), n, w).  ``diag``: first slot
    when the pairs are the diagonal run (diag, diag), (diag+1, diag+1), ..."""
    if diag is not None:  # pure second derivatives of consecutive directions
        m = len(pairs)
        cut = [diag, m, g.shape[0] - diag - m]  # split: no slice-backward scatter
        gd = g.split(cut)[1]
        return gd * gd if h is g else gd * h.split(cut)[1]
    gs = g.unbind(0)
    hs = gs if h is g else h.unbind(0)
    return torch.stack([gs[a] * hs[b] for a, b in pairs])


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def _diagonal_run(pairs: tuple[tuple[int, int], ...]) -> int | None:
    """First slot a if pairs are (a, a), (a+1, a+1), ...; else None."""
    if not pairs or any(a != b for a, b in pairs):
        return None
    first = pairs[0][0]
    return first if all(p[0] == first + i for i, p in enumerate(pairs)) else None


def concat(jets: Sequence[Jet]) -> Jet:
    """Features of several jets side by side (same points, directions and pairs)."""
    return jets[0].like(torch.cat([j.stacked() for j in jets], dim=-1))


def supports(model) -> bool:
    """Whether ``model`` implements ``forward_taylor(jet) -> jet`` (and does not opt out)."""
    return callable(getattr(model, "forward_taylor", None)) and getattr(
        model, "taylor_supported", True
    )


class TaylorFields(Fields):
    """Fields of a network's outputs, derivatives by forward Taylor propagation.

    Parameters
    ----------
    model:
        A module with ``forward_taylor(jet) -> jet`` (see :func:`supports`) whose output
        features are ``fields`` in order; it maps points (n, d) to (n, len(fields)).
    points:
        Tensor (n, d) of evaluation points, columns named by ``coordinates``.
    coordinates, fields:
        Names of the input columns and of the output features.
    declared:
        The problem's derivative declaration.  Exactly these first derivatives (plus those a
        declared second derivative needs) and these second derivatives are propagated; the
        union over fields, since hidden layers are shared.  ``None`` propagates all first and
        second derivatives.  Derivatives of order above two are not supported.

    One propagation serves every request; results have shape (n,) and keep the graph to the
    network parameters, so ``loss.backward()`` is ordinary reverse mode.
    """

    def __init__(
        self,
        model,
        points: torch.Tensor,
        coordinates: Sequence[str],
        fields: Sequence[str],
        declared: Mapping[str, Iterable[Spec]] | None = None,
    ):
        super().__init__(coordinates, fields, declared)
        d = len(self.coordinates)
        if points.ndim != 2 or points.shape[1] != d:
            raise ValueError(f"points must have shape (n, {d}); got {tuple(points.shape)}")
        if not supports(model):
            raise ParameterError(
                f"{type(model).__name__} does not implement forward_taylor; use AutogradFields"
            )
        self.model = model
        self.points = points
        declared_ = declared_keys(declared, self.coordinates)
        #: direction slots whose pure second derivatives are carried summed (the Laplacian)
        self.lap: tuple[int, ...] = ()
        if declared_ is not None and any(LAPLACIAN in keys for keys in declared_.values()):
            self.directions, self.pairs, self.lap = plan_laplacian(
                declared_, spatial_axes(self.coordinates)
            )
        else:
            self.directions, self.pairs = plan(declared_, d)
        self._slot = {(a,): 1 + i for i, a in enumerate(self.directions)}
        k = len(self.directions)
        for j, (a, b) in enumerate(self.pairs):
            self._slot[(self.directions[a], self.directions[b])] = 1 + k + j
        if self.lap:
            self._slot[LAPLACIAN] = 1 + k + len(self.pairs)
        self._out: dict[str, tuple[torch.Tensor, ...]] | None = None

    @staticmethod
    def supports(model) -> bool:
        """Whether ``model`` can be evaluated by this engine."""
        return supports(model)

    def _outputs(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Per field, its slots (value, first..., second...) as (n,) tensors."""
        if self._out is None:
            jet = Jet.input(self.points, self.directions, self.pairs, self.lap)
            out = self.model.forward_taylor(jet)
            if out.width != len(self.fields):
                raise ValueError(f"model has {out.width} outputs but fields are {self.fields}")
            # unbind (not indexing): its backward stacks the used slots instead of scattering
            # each into a zero tensor of the full output size
            columns = out.stacked().unbind(-1)
            self._out = {f: c.unbind(0) for f, c in zip(self.fields, columns)}
        return self._out

    def _value(self, field: str) -> torch.Tensor:
        return self._outputs()[field][0]

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        slot = self._slot.get(key)
        if slot is None:  # only reachable without a declaration limiting requests
            raise ParameterError(
                f"TaylorFields was not set up for d{field}/d{spec_name(key, self.coordinates)}"
            )
        return self._outputs()[field][slot]

    def _laplacian(self, field: str) -> torch.Tensor:
        if not self.lap:  # everything propagated (no declaration): add the pure seconds
            return super()._laplacian(field)
        return self._outputs()[field][self._slot[LAPLACIAN]]

    def _coord(self, index: int) -> torch.Tensor:
        return self.points[:, index]


def plan_laplacian(
    declared: Mapping[str, frozenset[Key]], spatial: Sequence[int]
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Directions, pairs and Laplacian slots for a declaration that asks for the Laplacian.

    The Laplacian needs the first derivatives along every spatial axis; the pure second
    derivatives it sums are not carried on their own unless declared as well."""
    keys = set().union(*declared.values()) - {LAPLACIAN}
    dirs, pairs = plan({"": frozenset(keys | {(a,) for a in spatial})}, 0)
    index = {a: i for i, a in enumerate(dirs)}
    return dirs, pairs, tuple(index[a] for a in spatial)


def plan(
    declared: Mapping[str, frozenset[Key]] | None, ncoords: int
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Directions (coordinate indices) and second-derivative slot pairs to propagate."""
    if declared is None:
        keys = {(a,) for a in range(ncoords)}
        keys |= {(a, b) for a in range(ncoords) for b in range(a, ncoords)}
    else:
        keys = set().union(*declared.values()) if declared else set()
    if any(len(k) > 2 for k in keys):
        raise ParameterError(
            "TaylorFields propagates derivatives up to second order; the declaration asks for "
            + ", ".join(str(k) for k in sorted(keys) if len(k) > 2)
        )
    dirs = sorted({a for k in keys for a in k})
    index = {a: i for i, a in enumerate(dirs)}
    pairs = sorted({(index[k[0]], index[k[1]]) for k in keys if len(k) == 2})
    return tuple(dirs), tuple(pairs)
