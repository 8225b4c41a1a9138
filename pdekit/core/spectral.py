"""Fourier derivatives on periodic grids, and the 2/3-rule dealiasing of products.

A periodic axis of length L holds ``n`` equispaced samples ``origin + i L / n`` (the duplicate
endpoint left out).  Derivatives multiply Fourier coefficients by ``(i k)^m`` with angular
wavenumbers ``k = 2 pi j / L`` (Trefethen 2000, "Spectral Methods in MATLAB", ch. 3).  For an
odd derivative the unmatched Nyquist mode of an even ``n`` is set to zero, so derivatives of real
fields stay real and trigonometric fields below the Nyquist frequency are differentiated to
round-off.

The operators are pure functions of a real tensor whose trailing ``len(lengths)`` dimensions are
the periodic grid (any leading dimensions are a batch); all are differentiable in torch.

Dealiasing follows Orszag (1971), "On the elimination of aliasing in finite-difference schemes
by filtering high-wavenumber components", J. Atmos. Sci. 28: modes with ``|j| >= n/3`` are
zeroed, so the product of two filtered fields has no aliased contribution on the kept modes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from pdekit.core.fields import Fields, Key, Spec
from pdekit.core.stencil import Boundary, axis_derivative, per_axis
from pdekit.errors import ParameterError


def _dims(u: torch.Tensor, ndim: int) -> tuple[int, ...]:
    if u.ndim < ndim:
        raise ParameterError(f"need a tensor with at least {ndim} grid dimensions; got {u.ndim}")
    return tuple(range(u.ndim - ndim, u.ndim))


def wavenumbers(
    shape: Sequence[int], lengths: Sequence[float], *, dtype=torch.float64, device=None
) -> list[torch.Tensor]:
    """Angular wavenumbers of ``rfftn`` output per axis, shaped to broadcast against it.

    All axes but the last use the full ``fftfreq`` ordering; the last uses ``rfftfreq``.
    """
    d = len(shape)
    if len(lengths) != d:
        raise ParameterError(f"lengths needs one entry per axis ({d}); got {len(lengths)}")
    out = []
    for a, (n, length) in enumerate(zip(shape, lengths)):
        if a == d - 1:
            j = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=device)
        else:
            j = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device)
        view = [1] * d
        view[a] = j.numel()
        out.append((2 * math.pi / length * j).reshape(view))
    return out


def _nyquist_mask(n: int, k: torch.Tensor) -> torch.Tensor:
    """1 except on the unmatched Nyquist mode of an even-length axis."""
    if n % 2:
        return torch.ones_like(k)
    return (k.abs() < k.abs().max()).to(k.dtype) if k.numel() > 1 else torch.ones_like(k)


def multiplier(
    shape: Sequence[int], lengths: Sequence[float], orders: Sequence[int], *, dtype, device
) -> torch.Tensor:
    """The Fourier multiplier prod_a (i k_a)^(m_a) of a mixed derivative, for ``rfftn`` output."""
    ks = wavenumbers(shape, lengths, dtype=dtype, device=device)
    m = torch.ones((), dtype=torch.complex128 if dtype == torch.float64 else torch.complex64)
    m = m.to(device)
    for n, k, p in zip(shape, ks, orders):
        if p == 0:
            continue
        factor = (1j * k) ** p
        if p % 2:
            factor = factor * _nyquist_mask(n, k)
        m = m * factor
    return m


def derivative(u: torch.Tensor, orders: Sequence[int], lengths: Sequence[float]) -> torch.Tensor:
    """Mixed derivative of ``u``: ``orders[a]`` times along trailing grid axis a.

    ``lengths`` are the periods of the trailing axes; leading dimensions are a batch.
    """
    dims = _dims(u, len(lengths))
    shape = [u.shape[d] for d in dims]
    hat = torch.fft.rfftn(u, dim=dims)
    mult = multiplier(shape, lengths, orders, dtype=u.dtype, device=u.device)
    return torch.fft.irfftn(hat * mult, s=shape, dim=dims)


def gradient(u: torch.Tensor, lengths: Sequence[float]) -> list[torch.Tensor]:
    """[du/dx_1, ..., du/dx_d] over the trailing ``len(lengths)`` axes."""
    d = len(lengths)
    return [derivative(u, [int(a == b) for b in range(d)], lengths) for a in range(d)]


def laplacian(u: torch.Tensor, lengths: Sequence[float]) -> torch.Tensor:
    """sum_a d2u/dx_a^2."""
    dims = _dims(u, len(lengths))
    shape = [u.shape[d] for d in dims]
    ks = wavenumbers(shape, lengths, dtype=u.dtype, device=u.device)
    k2 = sum(k**2 for k in ks)
    return torch.fft.irfftn(-k2 * torch.fft.rfftn(u, dim=dims), s=shape, dim=dims)


def inverse_laplacian(f: torch.Tensor, lengths: Sequence[float]) -> torch.Tensor:
    """The zero-mean solution phi of ``laplacian(phi) = f - mean(f)`` on the periodic box."""
    dims = _dims(f, len(lengths))
    shape = [f.shape[d] for d in dims]
    ks = wavenumbers(shape, lengths, dtype=f.dtype, device=f.device)
    k2 = sum(k**2 for k in ks)
    inv = torch.where(k2 > 0, -1.0 / torch.where(k2 > 0, k2, torch.ones_like(k2)), 0.0)
    return torch.fft.irfftn(inv * torch.fft.rfftn(f, dim=dims), s=shape, dim=dims)


def curl(velocity: Sequence[torch.Tensor], lengths: Sequence[float]):
    """Vorticity: ``v_x - u_y`` in 2D (a tensor), ``nabla x u`` in 3D (a list of 3 tensors)."""
    d = len(lengths)
    if len(velocity) != d or d not in (2, 3):
        raise ParameterError(f"curl needs 2 or 3 velocity components matching {d} axes")

    def dd(c, a):
        return derivative(velocity[c], [int(a == b) for b in range(d)], lengths)

    if d == 2:
        return dd(1, 0) - dd(0, 1)
    return [dd(2, 1) - dd(1, 2), dd(0, 2) - dd(2, 0), dd(1, 0) - dd(0, 1)]


def velocity_from_vorticity(omega, lengths: Sequence[float]) -> list[torch.Tensor]:
    """Divergence-free, zero-mean velocity with the given vorticity, via the stream function.

    2D: ``laplacian(psi) = -omega``, ``u = psi_y``, ``v = -psi_x``.
    3D: ``laplacian(A) = -omega`` (vector potential), ``u = curl A``.
    The vorticity's mean (2D) is not representable on the periodic box and is discarded.
    """
    d = len(lengths)
    if d == 2:
        psi = -inverse_laplacian(omega, lengths)
        return [derivative(psi, [0, 1], lengths), -derivative(psi, [1, 0], lengths)]
    if d == 3:
        a = [-inverse_laplacian(w, lengths) for w in omega]
        return curl(a, lengths)
    raise ParameterError(f"velocity_from_vorticity works in 2 or 3 dimensions; got {d}")


def dealias_mask(shape: Sequence[int], *, dtype=torch.float64, device=None) -> torch.Tensor:
    """1 on the kept modes (``3 |j| < n`` on every axis), 0 on the top third, for rfftn output."""
    d = len(shape)
    mask = torch.ones((), dtype=dtype, device=device)
    for a, n in enumerate(shape):
        if a == d - 1:
            j = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=device)
        else:
            j = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device)
        view = [1] * d
        view[a] = j.numel()
        mask = mask * (3 * j.abs() < n).to(dtype).reshape(view)
    return mask


def dealias(u: torch.Tensor, ndim: int) -> torch.Tensor:
    """Zero the top third of Fourier modes of ``u`` on its trailing ``ndim`` axes."""
    dims = _dims(u, ndim)
    shape = [u.shape[d] for d in dims]
    mask = dealias_mask(shape, dtype=u.dtype, device=u.device)
    return torch.fft.irfftn(torch.fft.rfftn(u, dim=dims) * mask, s=shape, dim=dims)


def dealiased_product(a: torch.Tensor, b: torch.Tensor, ndim: int) -> torch.Tensor:
    """The 2/3-rule product: filter both factors, multiply on the grid, filter the result.

    On the kept modes this equals the exact (alias-free) product of the filtered factors.
    """
    return dealias(dealias(a, ndim) * dealias(b, ndim), ndim)


class SpectralFields(Fields):
    """Fields on a uniform grid, derivatives by FFT along the periodic axes.

    Parameters
    ----------
    values:
        Mapping field -> real tensor ``(*batch, *shape)``, one trailing dimension per
        coordinate.
    coordinates:
        Names of the grid axes.
    spacing:
        Sample spacing per axis (a number for all); a periodic axis has period ``n * spacing``.
    origin:
        Coordinate of the first sample per axis.
    periodic:
        Which axes are periodic (default all).  A non-periodic axis (typically time) holds
        samples ``origin + i * spacing`` including both ends, and is differentiated by the
        finite-difference stencil of ``order`` with one-sided ends
        (:func:`pdekit.core.stencil.axis_derivative`).
    order:
        Stencil order on non-periodic axes, 2 or 4.
    declared:
        The problem's derivative declaration.

    Results are grid-shaped like :class:`~pdekit.core.stencil.StencilFields`: fields
    ``(*batch, *shape)``, coordinates ``shape``.
    """

    def __init__(
        self,
        values: Mapping[str, torch.Tensor],
        coordinates: Sequence[str],
        spacing: float | Sequence[float],
        *,
        origin: float | Sequence[float] = 0.0,
        periodic: bool | Sequence[bool] = True,
        order: int = 4,
        declared: Mapping[str, Iterable[Spec]] | None = None,
    ):
        super().__init__(coordinates, tuple(values), declared)
        d = len(self.coordinates)
        self.spacing = [float(h) for h in per_axis(spacing, d, "spacing")]
        if any(not h > 0 for h in self.spacing):
            raise ParameterError(f"spacing must be positive; got {self.spacing}")
        self.origin = [float(o) for o in per_axis(origin, d, "origin")]
        self.periodic = [bool(p) for p in per_axis(periodic, d, "periodic")]
        self.order = order
        self._values = dict(values)
        shapes = {tuple(v.shape[v.ndim - d :]) for v in self._values.values()}
        if len(shapes) != 1 or any(v.ndim < d for v in self._values.values()):
            raise ParameterError(f"all fields must share one grid shape; got {sorted(shapes)}")
        self.shape = shapes.pop()
        self._spectral_axes = [a for a in range(d) if self.periodic[a]]
        self.lengths = [self.shape[a] * self.spacing[a] for a in self._spectral_axes]
        self._hat: dict[str, torch.Tensor] = {}

    def _value(self, field: str) -> torch.Tensor:
        return self._values[field]

    def _transform(self, field: str) -> torch.Tensor:
        if field not in self._hat:
            u = self._values[field]
            d = len(self.coordinates)
            dims = [u.ndim - d + a for a in self._spectral_axes]
            self._hat[field] = torch.fft.rfftn(u, dim=dims)
        return self._hat[field]

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        d = len(self.coordinates)
        counts = [key.count(a) for a in range(d)]
        u = self._values[field]
        spectral = [counts[a] for a in self._spectral_axes]
        if any(spectral):
            dims = [u.ndim - d + a for a in self._spectral_axes]
            shape = [self.shape[a] for a in self._spectral_axes]
            mult = multiplier(shape, self.lengths, spectral, dtype=u.dtype, device=u.device)
            full = [1] * d  # broadcast over the non-spectral grid axes
            for i, a in enumerate(self._spectral_axes):
                full[a] = mult.shape[i]
            mult = mult.reshape(full)
            u = torch.fft.irfftn(self._transform(field) * mult, s=shape, dim=dims)
        for a in range(d):
            if counts[a] and not self.periodic[a]:
                u = axis_derivative(
                    u,
                    u.ndim - d + a,
                    counts[a],
                    self.spacing[a],
                    order=self.order,
                    boundary=Boundary.free(),
                    source="node",
                )
        return u

    def _coord(self, index: int) -> torch.Tensor:
        v = next(iter(self._values.values()))
        n = self.shape[index]
        pos = self.origin[index] + self.spacing[index] * torch.arange(
            n, dtype=v.dtype, device=v.device
        )
        view = [1] * len(self.shape)
        view[index] = n
        return pos.reshape(view).expand(self.shape)
