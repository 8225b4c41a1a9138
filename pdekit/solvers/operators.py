"""Operator networks on uniform grids: spectral convolution, Fourier neural operator, U-Net.

These networks map gridded fields to gridded fields, channels first: an input of shape
``(batch, channels, *grid)`` gives an output of shape ``(batch, out_channels, *grid)``. They learn
an operator from many instances of a problem (a family of initial conditions or parameters)
rather than one solution, and are the networks of the operator backends.

- :class:`SpectralConv`: the Fourier integral operator of Li et al. 2021 in 1, 2 or 3 dimensions
  (real FFT, truncation to the lowest modes, a learned complex matrix per mode, inverse FFT).
- :class:`FNO` (config :class:`FNOConfig`): lifting, Fourier layers, projection; 1D, 2D and 3D
  (2D space + time as the paper's FNO-3D).
- :class:`UNet2d` (config :class:`UNet2dConfig`): a small 2D U-Net.

Only torch is used here; neuraloperator (the field's FNO library) is the baseline the tests
compare :class:`SpectralConv` against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pdekit.errors import ParameterError

NORMS = ("group", "batch", "none")
PADDINGS = ("zeros", "circular")
#: the paper's modes per axis when FNOConfig.modes is empty (Li et al. 2021, section 5)
PAPER_MODES = {1: 16, 2: 12, 3: 8}


def _positive_ints(label: str, values, low: int = 1) -> tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        values = (values,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ParameterError(f"{label} must be integers >= {low}; got {values!r}")
    return values


def _keep(xf: torch.Tensor, axis: int, m: int) -> torch.Tensor:
    """Frequencies -(m-1)..(m-1), in that (centred) order, of a full-FFT axis."""
    n = xf.shape[axis]
    return torch.cat([xf.narrow(axis, n - (m - 1), m - 1), xf.narrow(axis, 0, m)], dim=axis)


def _place(yf: torch.Tensor, axis: int, m: int, n: int) -> torch.Tensor:
    """Inverse of :func:`_keep`: centred frequencies back to FFT order, zeros elsewhere."""
    shape = list(yf.shape)
    shape[axis] = n - (2 * m - 1)
    zeros = yf.new_zeros(shape)
    neg, pos = yf.narrow(axis, 0, m - 1), yf.narrow(axis, m - 1, m)
    return torch.cat([pos, zeros, neg], dim=axis)


class SpectralConv(nn.Module):
    r"""Spectral convolution (the Fourier integral operator of an FNO layer) in 1, 2 or 3 dims.

    For an input :math:`v` of shape (batch, in_channels, n_1, ..., n_d),

    .. math::
        (K v)_o(x) = \operatorname{Re} \sum_{k \in \mathcal K} c_k
            \Big(\sum_i R_{i o}(k)\, \hat v_i(k)\Big) e^{2\pi i\, k \cdot x},
        \qquad \mathcal K = \{k : |k_j| < m_j,\ k_d \ge 0\},

    :math:`\hat v` the DFT over the trailing d axes divided by :math:`n_1 \cdots n_d`, :math:`c_k`
    = 1 on the plane :math:`k_d = 0` and 2 elsewhere (the real FFT stores one of each pair
    :math:`\pm k`; on the plane :math:`k_d = 0` the weights act through their Hermitian part).
    Computed as ``irfftn(R * rfftn(v))`` with an einsum over channels, at the input's resolution.

    Modes: ``modes[j] = m`` keeps the frequencies :math:`|k_j| < m` on every axis: both signs
    (2m - 1 of them) on all axes but the last, 0..m-1 (the real-FFT half) on the last. Every
    axis needs at least 2m - 1 points, so that no kept frequency aliases and none is a Nyquist
    frequency; then the layer is the same operator at every resolution (a band-limited input
    gives the band-limited output sampled on the grid). The paper's code also keeps k = -m on
    the non-last axes; we drop it so that the kept set is symmetric.

    Weights: ``weight`` is a real parameter of shape (in_channels, out_channels, 2 m_1 - 1, ...,
    2 m_{d-1} - 1, m_d, 2), the last axis (real, imaginary): real so that an HDF5 checkpoint
    (h5py) stores it as a plain float dataset and every DDP backend (gloo, NCCL) all-reduces it.
    Non-last mode axes are in centred order, index j for frequency j - (m - 1); the last mode
    axis index j is frequency j. This is neuraloperator 2.x's ``SpectralConv`` layout:
    ``SpectralConv(in, out, n_modes=(2m_1 - 1, ..., 2m_d - 1), bias=False)`` computes the same
    map with ``weight.tensor = torch.view_as_complex(our weight)``.

    Initialisation (neuraloperator 2.x's default, ``init_std="auto"``): real and imaginary parts
    i.i.d. N(0, s^2 / 2) with s^2 = 2 / (in_channels + out_channels), so E|R|^2 = s^2. (The
    paper's code draws both parts uniform on [0, 1 / (in_channels out_channels)).)
    No bias: the FNO layer's pointwise linear skip carries it.

    Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart & Anandkumar 2021, "Fourier neural
    operator for parametric partial differential equations", ICLR 2021, eq. (4)-(5).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int]):
        super().__init__()
        (in_channels,) = _positive_ints("SpectralConv in_channels", in_channels)
        (out_channels,) = _positive_ints("SpectralConv out_channels", out_channels)
        self.modes = _positive_ints("SpectralConv modes", modes)
        if not 1 <= len(self.modes) <= 3:
            raise ParameterError(
                f"SpectralConv modes: one count per grid axis, 1 to 3 axes; got {self.modes!r}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.dim = len(self.modes)
        shape = [2 * m - 1 for m in self.modes[:-1]] + [self.modes[-1]]
        std = math.sqrt(2.0 / (in_channels + out_channels) / 2.0)
        self.weight = nn.Parameter(std * torch.randn(in_channels, out_channels, *shape, 2))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"

    def min_size(self) -> tuple[int, ...]:
        """Fewest grid points per axis this layer takes: 2 m - 1."""
        return tuple(2 * m - 1 for m in self.modes)

    def check_resolution(self, shape: Sequence[int], what: str = "SpectralConv input") -> None:
        """ParameterError naming the first grid axis too small for the kept modes."""
        for j, (n, m) in enumerate(zip(shape, self.modes)):
            if n < 2 * m - 1:
                raise ParameterError(
                    f"{what}: grid axis {j} has {n} points; {m} modes need at least "
                    f"{2 * m - 1} (2 * modes - 1)"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dim
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ParameterError(
                f"SpectralConv expects (batch, {self.in_channels}, {d} grid axes); "
                f"got shape {tuple(x.shape)}"
            )
        grid = tuple(x.shape[2:])
        self.check_resolution(grid)
        axes = tuple(range(2, d + 2))
        xf = torch.fft.rfftn(x, dim=axes)
        for axis, m in zip(axes[:-1], self.modes[:-1]):
            xf = _keep(xf, axis, m)
        xf = xf.narrow(-1, 0, self.modes[-1])
        yf = torch.einsum("bi...,io...->bo...", xf, torch.view_as_complex(self.weight))
        for axis, m, n in zip(axes[:-1], self.modes[:-1], grid[:-1]):
            yf = _place(yf, axis, m, n)
        return torch.fft.irfftn(yf, s=grid, dim=axes)


class PointwiseLinear(nn.Module):
    """A linear map of the channels at every grid point (a 1x1 convolution), channels first.

    PyTorch's ``nn.Linear`` initialisation (uniform on [-1/sqrt(in), 1/sqrt(in)] for weights
    and bias), as the paper's 1x1 ``nn.Conv`` and ``nn.Linear`` layers.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.movedim(1, -1)).movedim(-1, 1)


def grid_coordinates(batch: int, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Channels ``(batch, len(shape), *shape)``: coordinate j runs over linspace(0, 1, n_j).

    The FNO paper's positional input (``get_grid`` in its code): both end points included.
    """
    axes = [torch.linspace(0.0, 1.0, n, dtype=like.dtype, device=like.device) for n in shape]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return mesh.expand(batch, *mesh.shape)


@dataclass
class FNOConfig:
    """A Fourier neural operator (Li et al., ICLR 2021); defaults are the paper's.

    The paper's Navier-Stokes FNO-3D (2D space + time): dim 3, 10 input steps broadcast over
    time as channels, width 20, modes 8, 4 layers, projection 128, time padded by 6 cells.
    Its FNO-2D: dim 2, width 20 (32 for Darcy flow), modes 12, 4 layers.
    """

    #: number of grid axes: 1, 2, or 3 (2D space + time, the paper's FNO-3D)
    dim: int = 2
    #: channels of the input field (the paper's Navier-Stokes FNO-3D: 10 input time steps)
    in_channels: int = 1
    #: channels of the output field
    out_channels: int = 1
    #: channels of the hidden Fourier layers (the paper: 20; 32 for Darcy flow)
    width: int = 20
    #: kept modes m per grid axis (frequencies ``|k| < m``), one value for all axes or one per
    #: axis; empty: the paper's 12 for dim 2, 8 for dim 3 (16 for dim 1)
    modes: tuple[int, ...] = ()
    #: number of Fourier layers (spectral convolution + pointwise linear skip)
    layers: int = 4
    #: hidden channels of the lifting; 0: one pointwise linear layer (the paper's fc0), > 0: a
    #: two-layer pointwise MLP with GELU (neuraloperator 2.x: 2 * width)
    lifting_channels: int = 0
    #: hidden channels of the two-layer pointwise projection (the paper's fc1/fc2: 128)
    projection_channels: int = 128
    #: append the grid coordinates linspace(0, 1, n) per axis as input channels (the paper)
    positional_embedding: bool = True
    #: zero cells appended at the end of each grid axis after lifting and removed before
    #: projection, for non-periodic axes (the FFT treats every axis as periodic); one value
    #: per axis, or empty for none (the paper's FNO-3D: (0, 0, 6), time only; Darcy: 9 each)
    padding: tuple[int, ...] = ()

    def __post_init__(self):
        from pdekit.solvers.config import check

        check(self, "dim", self.dim, low=1, high=3, kind=int)
        check(self, "in_channels", self.in_channels, low=1, high=4096, kind=int)
        check(self, "out_channels", self.out_channels, low=1, high=4096, kind=int)
        check(self, "width", self.width, low=1, high=4096, kind=int)
        check(self, "layers", self.layers, low=1, high=64, kind=int)
        check(self, "lifting_channels", self.lifting_channels, low=0, high=4096, kind=int)
        check(self, "projection_channels", self.projection_channels, low=1, high=4096, kind=int)
        self.modes = _positive_ints("FNOConfig.modes", self.modes)
        self.padding = _positive_ints("FNOConfig.padding", self.padding, low=0)
        if len(self.modes) not in (0, 1, self.dim):
            raise ParameterError(
                f"FNOConfig.modes needs 0, 1 or dim={self.dim} values; got {self.modes!r}"
            )
        if len(self.padding) not in (0, self.dim):
            raise ParameterError(
                f"FNOConfig.padding needs 0 or dim={self.dim} values; got {self.padding!r}"
            )

    @property
    def axis_modes(self) -> tuple[int, ...]:
        """Kept modes per grid axis (the paper's default filled in)."""
        modes = self.modes or (PAPER_MODES[self.dim],)
        return modes * self.dim if len(modes) == 1 else modes

    @property
    def axis_padding(self) -> tuple[int, ...]:
        return self.padding or (0,) * self.dim


class FNO(nn.Module):
    r"""Fourier neural operator: lifting P, L Fourier layers, projection Q.

    .. math::
        v_0 = P([a, x]),\qquad v_{l+1} = \sigma(K_l v_l + W_l v_l),\qquad u = Q(v_L),

    :math:`a` the input field (channels first), :math:`x` the grid coordinates (when
    ``positional_embedding``), :math:`K_l` a :class:`SpectralConv`, :math:`W_l` a pointwise
    linear map with bias, :math:`\sigma` = GELU on all but the last layer (as the paper's code),
    Q = pointwise linear, GELU, pointwise linear. Li et al. 2021, ICLR, eq. (2).

    Takes any resolution with at least 2 m - 1 points per axis (padding included); trained at
    one resolution, it evaluates at another (zero-shot super-resolution, the paper's section 5.4).
    """

    def __init__(self, config: FNOConfig | None = None):
        super().__init__()
        self.config = config = config or FNOConfig()
        c_in = config.in_channels + (config.dim if config.positional_embedding else 0)
        w = config.width
        if config.lifting_channels:
            h = config.lifting_channels
            self.lifting = nn.Sequential(PointwiseLinear(c_in, h), nn.GELU(), PointwiseLinear(h, w))
        else:
            self.lifting = PointwiseLinear(c_in, w)
        self.spectral = nn.ModuleList(
            SpectralConv(w, w, config.axis_modes) for _ in range(config.layers)
        )
        self.skips = nn.ModuleList(PointwiseLinear(w, w) for _ in range(config.layers))
        p = config.projection_channels
        self.projection = nn.Sequential(
            PointwiseLinear(w, p), nn.GELU(), PointwiseLinear(p, config.out_channels)
        )

    def check_input(self, x: torch.Tensor) -> None:
        """ParameterError naming a wrong shape, channel count or too small a grid."""
        cfg = self.config
        if x.ndim != cfg.dim + 2:
            raise ParameterError(
                f"FNO (dim={cfg.dim}) expects input (batch, channels, {cfg.dim} grid axes); "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != cfg.in_channels:
            raise ParameterError(
                f"FNO expects {cfg.in_channels} input channels (FNOConfig.in_channels); got "
                f"{x.shape[1]} in input of shape {tuple(x.shape)}"
            )
        for j, (n, m, pad) in enumerate(zip(x.shape[2:], cfg.axis_modes, cfg.axis_padding)):
            if n + pad < 2 * m - 1:
                need = 2 * m - 1 - pad
                raise ParameterError(
                    f"FNO input grid axis {j} has {n} points; {m} modes need at least {need} "
                    f"(2 * modes - 1 = {2 * m - 1}, minus padding {pad})"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        cfg = self.config
        grid = x.shape[2:]
        if cfg.positional_embedding:
            x = torch.cat([x, grid_coordinates(x.shape[0], grid, x)], dim=1)
        v = self.lifting(x)
        pads = cfg.axis_padding
        if any(pads):
            v = nn.functional.pad(v, [q for p in reversed(pads) for q in (0, p)])
        for l, (spec, skip) in enumerate(zip(self.spectral, self.skips)):
            v = spec(v) + skip(v)
            if l < len(self.spectral) - 1:
                v = nn.functional.gelu(v)
        if any(pads):
            v = v[(slice(None), slice(None), *(slice(0, n) for n in grid))]
        return self.projection(v)


@dataclass
class UNet2dConfig:
    """A small 2D U-Net (Ronneberger, Fischer & Brox 2015) for fields on a 2D grid.

    Each level: two (3x3 convolution, normalisation, GELU) blocks; down by 2x2 average pooling,
    up by a 2x2 stride-2 transposed convolution, skip connections concatenated; a final 1x1
    convolution. Grid sizes must be divisible by 2**depth.
    """

    #: channels of the input field
    in_channels: int = 1
    #: channels of the output field
    out_channels: int = 1
    #: channels at the finest level; level i has width * 2**i
    width: int = 32
    #: number of 2x down-samplings (levels below the finest)
    depth: int = 3
    #: normalisation after each convolution: "group" (GroupNorm, per sample, the same in training
    #: and evaluation and under DDP: PDEArena's U-Nets), "batch" (BatchNorm: batch statistics in
    #: training, running ones in evaluation; needs SyncBatchNorm under DDP), "none".
    #: Normalised networks are nearly blind to the input's overall amplitude: normalise the data
    norm: str = "group"
    #: number of GroupNorm groups (reduced to a divisor of each layer's channels)
    groups: int = 8
    #: padding of the 3x3 convolutions: "zeros", or "circular" for periodic grids
    padding: str = "zeros"

    def __post_init__(self):
        from pdekit.solvers.config import check

        check(self, "in_channels", self.in_channels, low=1, high=4096, kind=int)
        check(self, "out_channels", self.out_channels, low=1, high=4096, kind=int)
        check(self, "width", self.width, low=1, high=1024, kind=int)
        check(self, "depth", self.depth, low=0, high=8, kind=int)
        check(self, "norm", self.norm, choices=NORMS)
        check(self, "groups", self.groups, low=1, high=1024, kind=int)
        check(self, "padding", self.padding, choices=PADDINGS)


def _norm(kind: str, channels: int, groups: int, dim: int = 2) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    if kind == "batch":
        return (nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d)(channels)
    return nn.Identity()


#: (convolution, transposed convolution, average pooling) per grid dimension
_LAYERS = {
    2: (nn.Conv2d, nn.ConvTranspose2d, nn.functional.avg_pool2d),
    3: (nn.Conv3d, nn.ConvTranspose3d, nn.functional.avg_pool3d),
}


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, cfg: UNet2dConfig, dim: int = 2):
        layers: list[nn.Module] = []
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers += [
                _LAYERS[dim][0](a, b, 3, padding=1, padding_mode=cfg.padding),
                _norm(cfg.norm, b, cfg.groups, dim),
                nn.GELU(),
            ]
        super().__init__(*layers)


class UNet2d(nn.Module):
    """A 2D U-Net on (batch, channels, n_x, n_y) fields; see :class:`UNet2dConfig`.

    PyTorch's default initialisation of the convolutions; GroupNorm/BatchNorm start as identity.
    """

    #: grid dimension (:class:`UNet3d`: 3, the same network with 3x3x3 convolutions)
    dim = 2

    def __init__(self, config: UNet2dConfig | None = None):
        super().__init__()
        self.config = cfg = config or UNet2dConfig()
        d = self.dim
        conv, up, _ = _LAYERS[d]
        widths = [cfg.width * 2**i for i in range(cfg.depth + 1)]
        self.down = nn.ModuleList([_Block(cfg.in_channels, widths[0], cfg, d)])
        self.down.extend(_Block(a, b, cfg, d) for a, b in zip(widths[:-1], widths[1:]))
        self.upsample = nn.ModuleList(
            up(b, a, 2, stride=2) for a, b in zip(widths[:-1], widths[1:])
        )
        self.up = nn.ModuleList(_Block(2 * a, a, cfg, d) for a in widths[:-1])
        self.out = conv(widths[0], cfg.out_channels, 1)

    def check_input(self, x: torch.Tensor) -> None:
        """ParameterError naming a wrong shape, channel count or grid size."""
        cfg = self.config
        name = type(self).__name__
        if x.ndim != 2 + self.dim:
            raise ParameterError(
                f"{name} expects input (batch, channels, {self.dim} grid axes); got shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[1] != cfg.in_channels:
            raise ParameterError(
                f"{name} expects {cfg.in_channels} input channels (UNet2dConfig.in_channels); "
                f"got {x.shape[1]} in input of shape {tuple(x.shape)}"
            )
        f = 2**cfg.depth
        for j, n in enumerate(x.shape[2:]):
            if n % f or n < f:
                raise ParameterError(
                    f"{name} input grid axis {j} has {n} points; depth {cfg.depth} needs a "
                    f"positive multiple of 2**depth = {f}"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skips = []
        h = x
        for i, block in enumerate(self.down):
            if i:
                h = _LAYERS[self.dim][2](h, 2)
            h = block(h)
            skips.append(h)
        skips.pop()
        for up, block in zip(reversed(self.upsample), reversed(self.up)):
            h = block(torch.cat([skips.pop(), up(h)], dim=1))
        return self.out(h)


class UNet3d(UNet2d):
    """:class:`UNet2d` on 3D fields (batch, channels, n_x, n_y, n_z): 3x3x3 convolutions,
    2x2x2 pooling and up-sampling; configured by a :class:`UNet2dConfig`."""

    dim = 3
