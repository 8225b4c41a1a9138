"""Shared networks: input embeddings and multilayer perceptrons.

Networks take raw physical coordinates; the :class:`CoordinateEmbedding` in front maps them to
the network's input features (affine scaling to [-1, 1], exact periodic features on periodic
axes), so derivatives of the output are derivatives in the physical coordinates.  An optional
:class:`FourierFeatures` layer maps those features to random Fourier features.

Every network here also implements ``forward_taylor(jet) -> jet`` with the ops of
:class:`pdekit.core.taylor.Jet`, so :class:`pdekit.core.taylor.TaylorFields` can propagate the
value and the declared derivatives forward through it, one matmul per layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pdekit.core.taylor import Jet, concat
from pdekit.core.taylor import supports as taylor_supports
from pdekit.errors import UnknownNameError

ACTIVATIONS = {
    "tanh": torch.tanh,
    "sin": torch.sin,
    "gelu": nn.functional.gelu,
    "softplus": nn.functional.softplus,
}


NETWORK_KINDS = ("mlp", "modified_mlp")


def activation(name: str):
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise UnknownNameError("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


@dataclass
class NetworkConfig:
    """The network of a PINN-type solver."""

    #: hidden width (neurons per hidden layer)
    width: int = 64
    #: number of hidden layers
    depth: int = 4
    #: elementwise activation: tanh, sin, gelu, softplus
    activation: str = "tanh"
    #: harmonics m of the exact periodic embedding [cos(k w x), sin(k w x)], k = 1..m, on
    #: periodic axes (0: treat periodic axes like bounded ones and enforce periodicity by a loss)
    periodic_harmonics: int = 1
    #: architecture: "mlp" (plain) or "modified_mlp" (two gating encoders, Wang et al. 2021)
    kind: str = "mlp"
    #: number of random Fourier features [cos(B e), sin(B e)] on the embedded inputs e (0: off)
    fourier_features: int = 0
    #: standard deviation of the Gaussian frequency matrix B of the Fourier features
    fourier_scale: float = 1.0
    #: random weight factorization of every linear layer, W = diag(exp(s)) V (Wang et al. 2022;
    #: used by jaxpi, the causal PINN authors' later code): off when False
    factorization: bool = False
    #: mean mu of the initial log-scales s ~ N(mu, sigma^2) (jaxpi's Allen-Cahn: 1.0)
    factorization_mean: float = 1.0
    #: standard deviation sigma of the initial log-scales (jaxpi: 0.1)
    factorization_std: float = 0.1

    def __post_init__(self):
        from pdekit.solvers.config import check

        check(self, "width", self.width, low=1, high=4096, kind=int)
        check(self, "depth", self.depth, low=1, high=64, kind=int)
        check(self, "periodic_harmonics", self.periodic_harmonics, low=0, high=64, kind=int)
        activation(self.activation)
        check(self, "kind", self.kind, choices=NETWORK_KINDS)
        check(self, "fourier_features", self.fourier_features, low=0, high=4096, kind=int)
        check(self, "fourier_scale", self.fourier_scale, low=1e-6, high=1e4)
        check(self, "factorization_mean", self.factorization_mean, low=-10.0, high=10.0)
        check(self, "factorization_std", self.factorization_std, low=0.0, high=10.0)

    @property
    def factorize(self) -> tuple[float, float] | None:
        """(mean, std) of the weight factorization, None when it is off."""
        if not self.factorization:
            return None
        return (self.factorization_mean, self.factorization_std)


class CoordinateEmbedding(nn.Module):
    """Map physical coordinates to network features.

    Bounded axis with bounds [lo, hi]: ``2 (x - lo)/(hi - lo) - 1``. Periodic axis of period P
    (when ``harmonics`` > 0): ``cos(k w x), sin(k w x)`` for k = 1..harmonics, w = 2 pi / P
    (Dong & Ni 2021), which makes the network exactly periodic in that axis.
    """

    def __init__(self, bounds: np.ndarray, periodic: Sequence[bool], harmonics: int = 1):
        super().__init__()
        bounds = np.asarray(bounds, dtype=float)
        self.in_dim = bounds.shape[1]
        per = [bool(p) and harmonics > 0 for p in periodic]
        lo, hi = bounds[0], bounds[1]
        self.register_buffer("scale", torch.tensor(2.0 / (hi - lo)), persistent=False)
        self.register_buffer("shift", torch.tensor(-2.0 * lo / (hi - lo) - 1.0), persistent=False)
        self.bounded = [i for i in range(self.in_dim) if not per[i]]
        self.periodic_axes = [i for i in range(self.in_dim) if per[i]]
        omega = [2 * math.pi / (hi[i] - lo[i]) for i in self.periodic_axes]
        k = torch.arange(1, harmonics + 1, dtype=torch.float64)
        freqs = torch.stack([w * k for w in omega]) if omega else torch.zeros(0, harmonics)
        self.register_buffer("freqs", freqs, persistent=False)  # (n_periodic, harmonics)
        self.harmonics = harmonics
        self.out_dim = len(self.bounded) + 2 * harmonics * len(self.periodic_axes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.bounded:
            b = self.bounded
            parts.append(x[:, b] * self.scale[b].to(x.dtype) + self.shift[b].to(x.dtype))
        for j, i in enumerate(self.periodic_axes):
            arg = x[:, i : i + 1] * self.freqs[j].to(x.dtype)
            parts += [torch.cos(arg), torch.sin(arg)]
        return torch.cat(parts, dim=1)

    def forward_taylor(self, jet: Jet) -> Jet:
        """:meth:`forward` on a jet: affine columns, then cos/sin of the scaled periodic ones."""
        dtype = jet.data.dtype
        parts = []
        if self.bounded:
            b = self.bounded
            parts.append(jet.select(b).affine(self.scale[b].to(dtype), self.shift[b].to(dtype)))
        for j, i in enumerate(self.periodic_axes):
            arg = jet.select([i]).linear(self.freqs[j].to(dtype)[:, None])
            parts += [arg.apply("cos"), arg.apply("sin")]
        return concat(parts)


class FourierFeatures(nn.Module):
    """Random Fourier features after an embedding: ``[cos(B e), sin(B e)]``, e = embedding(x).

    B (features x embedding width) has i.i.d. N(0, scale^2) entries, drawn once from torch's
    global generator and stored as a buffer (saved with the model, not trained).  Tancik et al.
    2020, "Fourier features let networks learn high frequency functions in low dimensional
    domains"; Wang, Wang & Perdikaris 2021, "On the eigenvector bias of Fourier feature networks".
    """

    def __init__(self, embedding: nn.Module, features: int, scale: float = 1.0):
        super().__init__()
        self.embedding = embedding
        self.register_buffer("B", scale * torch.randn(features, embedding.out_dim))
        self.out_dim = 2 * features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arg = self.embedding(x) @ self.B.to(x.dtype).t()
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)

    def forward_taylor(self, jet: Jet) -> Jet:
        arg = self.embedding.forward_taylor(jet).linear(self.B.to(jet.data.dtype))
        return concat([arg.apply("cos"), arg.apply("sin")])


class FactorizedLinear(nn.Module):
    """A linear layer with random weight factorization (RWF): ``W = diag(exp(s)) V``.

    Wang, Wang, Wang & Perdikaris 2022, "Random weight factorization improves the training of
    continuous neural representations" (arXiv 2210.01274): each output neuron's weight vector
    is a trainable scale ``exp(s_k)`` times a trainable direction ``v_k``. The network computes
    the same function as with ``W`` itself, but gradient descent on (s, V) moves the scales and
    directions at different rates. Made from an initialised :class:`torch.nn.Linear`: s is drawn
    from N(mean, std^2) and V = W / exp(s), so the initial function is unchanged. ``weight``
    is the product, so code that reads ``layer.weight`` (the Taylor engine) works unchanged.
    """

    def __init__(self, linear: nn.Linear, mean: float, std: float):
        super().__init__()
        w = linear.weight.detach()
        s = mean + std * torch.randn(w.shape[0], dtype=w.dtype)
        self.log_scale = nn.Parameter(s)
        self.direction = nn.Parameter(w / torch.exp(s)[:, None])
        self.bias = nn.Parameter(linear.bias.detach().clone())

    @property
    def weight(self) -> torch.Tensor:
        return torch.exp(self.log_scale)[:, None] * self.direction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


def _factorized(layers: Sequence[nn.Linear], factorize: tuple[float, float] | None):
    """``layers`` as :class:`FactorizedLinear` (in order) when ``factorize`` is (mean, std)."""
    if factorize is None:
        return list(layers)
    return [FactorizedLinear(lin, *factorize) for lin in layers]


class MLP(nn.Module):
    """Fully connected network: embedding -> (Linear -> activation) x depth -> Linear.

    Weights Glorot-normal, biases zero (the PINN literature's default initialisation).
    """

    def __init__(
        self,
        embedding: nn.Module,
        out_dim: int,
        width: int = 64,
        depth: int = 4,
        activation_name: str = "tanh",
        factorize: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.embedding = embedding
        self.activation_name = activation_name
        self.act = activation(activation_name)
        dims = [embedding.out_dim] + [width] * depth + [out_dim]
        layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
        for lin in layers:
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.layers = nn.ModuleList(_factorized(layers, factorize))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embedding(x)
        for lin in self.layers[:-1]:
            h = self.act(lin(h))
        return self.layers[-1](h)

    def forward_taylor(self, jet: Jet) -> Jet:
        """:meth:`forward` on a jet (value, first and chosen second derivatives)."""
        h = self.embedding.forward_taylor(jet)
        for lin in self.layers[:-1]:
            h = h.linear(lin.weight, lin.bias).apply(self.activation_name)
        last = self.layers[-1]
        return h.linear(last.weight, last.bias)


class ModifiedMLP(nn.Module):
    """The modified MLP of Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient
    flow pathologies in physics-informed neural networks" (SIAM J. Sci. Comput. 43), eq. (3.5)::

        U = s(X W_u + b_u),  V = s(X W_v + b_v),  H_0 = X
        Z_l = s(H_{l-1} W_l + b_l),  H_l = Z_l * U + (1 - Z_l) * V,   l = 1..depth
        f = H_depth W + b

    X are the embedded inputs.  Glorot-normal weights, zero biases.  Two differences from the
    printed equations, both those of the authors' code (their ``GradientPathologiesPINNs``
    ``forward_pass`` and jaxpi's ``ModifiedMlp``), which this follows:

    * the gate is Z * U + (1 - Z) * V where the paper prints (1 - Z) * U + Z * V: the same
      family of networks with the two encoders exchanged;
    * every hidden layer is gated, from H_0 = X; the paper starts from an ungated
      H_1 = s(X W_1 + b_1), so for the same ``depth`` this network has one gate more.

    ``tests/solvers/test_networks.py`` checks the forward pass against these equations written
    out in numpy, and against a case worked by hand.
    """

    def __init__(
        self,
        embedding: nn.Module,
        out_dim: int,
        width: int = 64,
        depth: int = 4,
        activation_name: str = "tanh",
        factorize: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.embedding = embedding
        self.activation_name = activation_name
        self.act = activation(activation_name)
        din = embedding.out_dim
        dims = [din] + [width] * depth + [out_dim]
        lins = [nn.Linear(din, width), nn.Linear(din, width)]
        lins += [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
        for lin in lins:
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.encoder_u, self.encoder_v, *layers = _factorized(lins, factorize)
        self.layers = nn.ModuleList(layers)
        self.width = width

    def _first(self):
        """Encoders and first hidden layer share their input: one stacked weight and bias."""
        lins = (self.encoder_u, self.encoder_v, self.layers[0])
        return torch.cat([m.weight for m in lins]), torch.cat([m.bias for m in lins])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self._first()
        u, v, z = self.act(nn.functional.linear(self.embedding(x), w, b)).split(self.width, 1)
        h = v + z * (u - v)
        for lin in self.layers[1:-1]:
            z = self.act(lin(h))
            h = v + z * (u - v)
        return self.layers[-1](h)

    def forward_taylor(self, jet: Jet) -> Jet:
        w, b = self._first()
        uvz = self.embedding.forward_taylor(jet).linear(w, b).apply(self.activation_name)
        width = self.width
        u, v, z = (uvz.narrow(i * width, width) for i in range(3))
        diff = u - v
        h = v + z * diff
        for lin in self.layers[1:-1]:
            z = h.linear(lin.weight, lin.bias).apply(self.activation_name)
            h = v + z * diff
        last = self.layers[-1]
        return h.linear(last.weight, last.bias)


def build_mlp(
    config: NetworkConfig, bounds: np.ndarray, periodic: Sequence[bool], out_dim: int
) -> MLP | ModifiedMLP:
    """The network of ``config`` (kind, embeddings) for a domain with these bounds and axes."""
    emb: nn.Module = CoordinateEmbedding(bounds, periodic, config.periodic_harmonics)
    if config.fourier_features:
        emb = FourierFeatures(emb, config.fourier_features, config.fourier_scale)
    cls = {"mlp": MLP, "modified_mlp": ModifiedMLP}[config.kind]
    return cls(emb, out_dim, config.width, config.depth, config.activation, config.factorize)


class ExactDirichletNetwork(nn.Module):
    """A network whose outputs satisfy a problem's Dirichlet conditions by construction::

        f(x) = lift_f(x) + distance_f(x) N_f(x)

    for every field ``f`` with a form in ``exact`` (a
    :class:`~pdekit.problems.base.ExactDirichlet`); the other outputs are ``N``'s unchanged.
    ``N`` is the wrapped network.
    The forms are written with arithmetic only, so the same functions give the values here and
    their derivatives in :meth:`forward_taylor` (Taylor mode through the products and
    quotients of the coordinates' jets).
    """

    def __init__(self, net: nn.Module, exact, fields: Sequence[str]):
        super().__init__()
        unknown = sorted(set(exact.forms) - set(fields))
        if unknown:
            raise UnknownNameError("field of the exact Dirichlet forms", unknown[0], fields)
        self.net = net
        self.exact = exact
        self.fields = tuple(fields)
        self.taylor_supported = taylor_supports(net)

    def _combine(self, coords, raw, column, join):
        out = []
        values: dict = {}  # each form function evaluated once per call (fields share them)

        def value(fn):
            if fn not in values:
                values[fn] = fn(*coords)
            return values[fn]

        for j, name in enumerate(self.fields):
            n = column(raw, j)
            form = self.exact.forms.get(name)
            if form is None:
                out.append(n)
            else:
                lift, distance = form
                out.append(value(lift) + value(distance) * n)
        return join(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coords = [x[:, i : i + 1] for i in range(x.shape[1])]
        return self._combine(
            coords,
            self.net(x),
            lambda t, j: t[:, j : j + 1],
            lambda cols: torch.cat(cols, dim=1),
        )

    def forward_taylor(self, jet: Jet) -> Jet:
        coords = [jet.select([i]) for i in range(jet.width)]
        return self._combine(
            coords, self.net.forward_taylor(jet), lambda t, j: t.select([j]), concat
        )
