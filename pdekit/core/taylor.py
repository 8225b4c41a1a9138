"""Forward Taylor propagation: value, first and chosen second derivatives through a network.

A :class:`Jet` carries, at n points and for h features, the value ``v``, the first derivatives
``v_i`` along k input directions and the second derivatives ``v_ij`` for an explicit list of m
pairs (i, j), stacked into one tensor of shape ``(1 + k + m, n, h)``.  Propagating a jet through
the layers of a network is the forward mode of automatic differentiation truncated at second
order ("Taylor mode"; Griewank & Walther 2008, "Evaluating Derivatives", ch. 13), with the
rules, for an affine map ``y = W x + b`` and an elementwise function ``s``:

    y = W v + b,            y_i = W v_i,             y_ij = W v_ij
    z = s(v),               z_i = s'(v) v_i,         z_ij = s'(v) v_ij + s''(v) v_i v_j

Because the derivative slots are stacked, each affine layer is one matrix product over all
``(1 + k + m) n`` rows.  Only the requested second-derivative pairs are carried, so the cost is
set by what the residual declares.  Gradients with respect to the network parameters come from
ordinary reverse mode through these operations (no nested ``autograd.grad``, so the whole
forward-and-backward step can also be traced by ``torch.compile``).

A network supports the engine by implementing ``forward_taylor(jet) -> jet`` with these ops;
:class:`TaylorFields` then serves the fields accessor from one such propagation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch.nn import functional as F

from pdekit.core.fields import Fields, Key, Spec, declared_keys, spec_name
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


#: elementwise functions with their exact first and second derivatives: name -> z -> (s, s', s'')
ELEMENTWISE = {"tanh": _tanh, "sin": _sin, "cos": _cos, "gelu": _gelu, "softplus": _softplus}


class Jet:
    """Value, first derivatives and selected second derivatives of h features at n points.

    Attributes
    ----------
    data:
        Tensor ``(1 + k + m, n, h)``: slot 0 the value, slots 1..k the first derivatives along
        the k directions, then one slot per second-derivative pair.
    nfirst:
        k, the number of first-derivative directions.
    pairs:
        The m pairs (a, b), a <= b, of first-derivative slots (0-based) whose mixed second
        derivative is carried.
    """

    __slots__ = ("data", "nfirst", "pairs", "_ia", "_ib")

    def __init__(self, data: torch.Tensor, nfirst: int, pairs: Sequence[tuple[int, int]]):
        self.data = data
        self.nfirst = nfirst
        self.pairs = tuple((int(a), int(b)) for a, b in pairs)
        self._ia = [a for a, _ in self.pairs]
        self._ib = [b for _, b in self.pairs]

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def input(
        cls, points: torch.Tensor, directions: Sequence[int], pairs: Sequence[tuple[int, int]]
    ) -> Jet:
        """The jet of the identity map at ``points`` (n, d): unit first derivatives along the
        coordinates ``directions`` and zero second derivatives for the slot ``pairs``."""
        n, d = points.shape
        eye = torch.eye(d, dtype=points.dtype, device=points.device)
        first = eye[list(directions)][:, None, :].expand(len(directions), n, d)
        second = points.new_zeros(len(pairs), n, d)
        return cls(torch.cat([points[None], first, second]), len(directions), pairs)

    def like(self, data: torch.Tensor) -> Jet:
        out = Jet.__new__(Jet)
        out.data, out.nfirst, out.pairs, out._ia, out._ib = (
            data,
            self.nfirst,
            self.pairs,
            self._ia,
            self._ib,
        )
        return out

    # -- views -------------------------------------------------------------------------------
    @property
    def value(self) -> torch.Tensor:
        return self.data[0]

    @property
    def first(self) -> torch.Tensor:
        return self.data[1 : 1 + self.nfirst]

    @property
    def second(self) -> torch.Tensor:
        return self.data[1 + self.nfirst :]

    @property
    def width(self) -> int:
        return self.data.shape[-1]

    # -- linear operations -------------------------------------------------------------------
    def linear(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Jet:
        """``x W^T + b`` (``torch.nn.Linear`` convention): one matmul over all slots."""
        out = torch.matmul(self.data, weight.t())
        if bias is not None:
            out[0].add_(bias)  # the bias enters the value only; matmul keeps no output for backward
        return self.like(out)

    def affine(self, scale, shift=None) -> Jet:
        """Featurewise ``scale * x + shift`` (scale, shift broadcast over the feature axis)."""
        out = self.data * scale
        if shift is not None:
            out[0].add_(shift)
        return self.like(out)

    def select(self, columns: Sequence[int]) -> Jet:
        """The features ``columns`` (a copy)."""
        return self.like(self.data[..., list(columns)])

    def narrow(self, start: int, length: int) -> Jet:
        """The features ``start .. start + length - 1`` (a view)."""
        return self.like(self.data.narrow(-1, start, length))

    def __add__(self, other: Jet) -> Jet:
        return self.like(self.data + other.data)

    def __sub__(self, other: Jet) -> Jet:
        return self.like(self.data - other.data)

    def __neg__(self) -> Jet:
        return self.like(-self.data)

    def add_constant(self, c) -> Jet:
        """``x + c``: the value shifts, derivatives do not."""
        out = self.data.clone()
        out[0].add_(c)
        return self.like(out)

    # -- nonlinear operations ----------------------------------------------------------------
    def apply(self, name: str) -> Jet:
        """Elementwise function ``name`` (tanh, sin, cos, gelu, softplus) by the chain rule."""
        try:
            fn = ELEMENTWISE[name]
        except KeyError:
            raise UnknownNameError("Taylor-mode elementwise function", name, ELEMENTWISE) from None
        s0, s1, s2 = fn(self.data[0])
        rest = s1 * self.data[1:]
        if self.pairs:
            g = self.first
            rest[self.nfirst :].add_(s2 * g[self._ia] * g[self._ib])
        return self.like(torch.cat([s0[None], rest]))

    def __mul__(self, other: Jet) -> Jet:
        """Elementwise product by the Leibniz rule."""
        a, b = self.data, other.data
        k = self.nfirst
        va, vb = a[0], b[0]
        rest = a[1:] * vb + va * b[1:]
        if self.pairs:
            ga, gb = a[1 : 1 + k], b[1 : 1 + k]
            rest[k:].add_(ga[self._ia] * gb[self._ib] + ga[self._ib] * gb[self._ia])
        return self.like(torch.cat([(va * vb)[None], rest]))


def concat(jets: Sequence[Jet]) -> Jet:
    """Features of several jets side by side (same points, directions and pairs)."""
    return jets[0].like(torch.cat([j.data for j in jets], dim=-1))


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
        self.directions, self.pairs = plan(declared_keys(declared, self.coordinates), d)
        self._slot = {(a,): 1 + i for i, a in enumerate(self.directions)}
        k = len(self.directions)
        for j, (a, b) in enumerate(self.pairs):
            self._slot[(self.directions[a], self.directions[b])] = 1 + k + j
        self._out: torch.Tensor | None = None

    @staticmethod
    def supports(model) -> bool:
        """Whether ``model`` can be evaluated by this engine."""
        return supports(model)

    def _outputs(self) -> torch.Tensor:
        if self._out is None:
            jet = Jet.input(self.points, self.directions, self.pairs)
            out = self.model.forward_taylor(jet)
            if out.width != len(self.fields):
                raise ValueError(f"model has {out.width} outputs but fields are {self.fields}")
            self._out = out.data
        return self._out

    def _value(self, field: str) -> torch.Tensor:
        return self._outputs()[0, :, self.fields.index(field)]

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        slot = self._slot.get(key)
        if slot is None:  # only reachable without a declaration limiting requests
            raise ParameterError(
                f"TaylorFields was not set up for d{field}/d{spec_name(key, self.coordinates)}"
            )
        return self._outputs()[slot, :, self.fields.index(field)]

    def _coord(self, index: int) -> torch.Tensor:
        return self.points[:, index]


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
