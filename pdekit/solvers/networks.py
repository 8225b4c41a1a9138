"""Shared networks: input embeddings and multilayer perceptrons.

Networks take raw physical coordinates; the :class:`CoordinateEmbedding` in front maps them to
the network's input features (affine scaling to [-1, 1], exact periodic features on periodic
axes), so derivatives of the output are derivatives in the physical coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pdekit.errors import UnknownNameError

ACTIVATIONS = {
    "tanh": torch.tanh,
    "sin": torch.sin,
    "gelu": nn.functional.gelu,
    "softplus": nn.functional.softplus,
}


def activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise UnknownNameError("activation", name, ACTIVATIONS) from None


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

    def __post_init__(self):
        from pdekit.solvers.config import check

        check(self, "width", self.width, low=1, high=4096, kind=int)
        check(self, "depth", self.depth, low=1, high=64, kind=int)
        check(self, "periodic_harmonics", self.periodic_harmonics, low=0, high=64, kind=int)
        activation(self.activation)


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


class MLP(nn.Module):
    """Fully connected network: embedding -> (Linear -> activation) x depth -> Linear.

    Weights Glorot-normal, biases zero (the PINN literature's default initialisation).
    """

    def __init__(
        self,
        embedding: CoordinateEmbedding,
        out_dim: int,
        width: int = 64,
        depth: int = 4,
        activation_name: str = "tanh",
    ):
        super().__init__()
        self.embedding = embedding
        self.activation_name = activation_name
        self.act = activation(activation_name)
        dims = [embedding.out_dim] + [width] * depth + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for lin in self.layers:
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embedding(x)
        for lin in self.layers[:-1]:
            h = self.act(lin(h))
        return self.layers[-1](h)


def build_mlp(
    config: NetworkConfig, bounds: np.ndarray, periodic: Sequence[bool], out_dim: int
) -> MLP:
    """The MLP of ``config`` for a domain with these bounds and periodic axes."""
    emb = CoordinateEmbedding(bounds, periodic, config.periodic_harmonics)
    return MLP(emb, out_dim, config.width, config.depth, config.activation)
