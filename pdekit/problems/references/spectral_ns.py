"""Pseudo-spectral solver of 2D incompressible Navier-Stokes in vorticity form on a periodic square.

On [0, L)^2 with velocity (u, v) = (psi_y, -psi_x), vorticity w = v_x - u_y = -lap psi:

    w_t + u w_x + v w_y = nu lap w + f(x, y, t)

Space: Fourier pseudo-spectral on an n x n grid, products in physical space, 2/3-rule
dealiasing (every Fourier mode with |k_x| >= n/3 or |k_y| >= n/3 is zeroed in the state and in
the nonlinear term, so quadratic products alias only onto discarded modes). Spatial error:
spectral (exponentially small in n for analytic solutions; round-off on Taylor-Green, tested).

Time: ETDRK4 (:mod:`~pdekit.problems.references.etdrk4`) with the viscous term as the exact
linear part and advection plus forcing as the explicit nonlinear part; fourth order in the time
step (measured in the tests on a forced solution whose advection term does not vanish). Stability
of the explicit part needs an advective CFL number ``max(|u|,|v|) dt / dx`` below about 2
(the stability region of RK4 on the imaginary axis reaches 2.8); :func:`solve` records the largest
CFL number met (checked at about 50 points of the run) so the caller can check it.

The operators are pure functions of a :class:`SpectralGrid`; :func:`solve` composes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from pdekit.problems.references import etdrk4

#: the time order of :func:`solve` (ETDRK4)
TIME_ORDER = etdrk4.ORDER

Forcing = torch.Tensor | Callable[[float], torch.Tensor] | None


@dataclass(frozen=True)
class SpectralGrid:
    """An n x n periodic grid on [0, length)^2 and its rfft2 wavenumbers.

    Arrays are indexed [i, j] with x = i h along axis 0 and y = j h along axis 1 ('ij').
    In Fourier space axis 0 holds all kx, axis 1 the non-negative ky (``torch.fft.rfft2``).
    """

    n: int
    length: float
    dtype: torch.dtype = torch.float64
    device: str | torch.device = "cpu"

    def __post_init__(self):
        if self.n < 4 or self.n % 2:
            raise ValueError(f"grid size must be even and >= 4; got {self.n}")

    @property
    def h(self) -> float:
        return self.length / self.n

    def axis(self) -> np.ndarray:
        """The node coordinates 0, h, ..., length - h."""
        return self.length * np.arange(self.n) / self.n

    @cached_property
    def _int_wavenumbers(self) -> tuple[torch.Tensor, torch.Tensor]:
        kx = torch.fft.fftfreq(self.n, 1.0 / self.n, dtype=self.dtype, device=self.device)
        ky = torch.fft.rfftfreq(self.n, 1.0 / self.n, dtype=self.dtype, device=self.device)
        return kx[:, None], ky[None, :]

    @cached_property
    def wavenumbers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Angular wavenumbers (kx (n, 1), ky (1, n//2 + 1)) = 2 pi m / length."""
        kx, ky = self._int_wavenumbers
        scale = 2 * math.pi / self.length
        return kx * scale, ky * scale

    @cached_property
    def odd_wavenumbers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The wavenumbers of odd derivatives: the Nyquist mode |m| = n/2 set to zero, so the
        derivative of a real field stays real."""
        return tuple(
            torch.where(m.abs() == self.n // 2, torch.zeros_like(k), k)
            for m, k in zip(self._int_wavenumbers, self.wavenumbers)
        )

    @cached_property
    def laplacian_symbol(self) -> torch.Tensor:
        """The Fourier symbol -|k|^2 of the Laplacian, shape (n, n//2 + 1)."""
        kx, ky = self.wavenumbers
        return -(kx**2 + ky**2)

    @cached_property
    def dealias_mask(self) -> torch.Tensor:
        """2/3 rule: True for the modes kept, |m_x| < n/3 and |m_y| < n/3."""
        kx, ky = self._int_wavenumbers
        return (kx.abs() < self.n / 3) & (ky.abs() < self.n / 3)

    @cached_property
    def advection_symbols(self) -> torch.Tensor:
        """Fourier multipliers (4, n, n//2 + 1) taking w to (u, v, w_x, w_y) = (psi_y, -psi_x,
        w_x, w_y) with -lap psi = w (the mean mode maps to zero)."""
        kx, ky = self.odd_wavenumbers
        k2 = -self.laplacian_symbol
        inv = torch.where(k2 == 0, torch.zeros_like(k2), 1 / torch.where(k2 == 0, 1, k2))
        return torch.stack(
            torch.broadcast_tensors(
                1j * ky * inv, -1j * kx * inv, 1j * kx + 0 * ky, 1j * ky + 0 * kx
            )
        )


def derivative(w_hat: torch.Tensor, grid: SpectralGrid, axis: int) -> torch.Tensor:
    """Fourier coefficients of d/dx (axis 0) or d/dy (axis 1) of a field given by ``w_hat``."""
    return 1j * grid.odd_wavenumbers[axis] * w_hat


def streamfunction(w_hat: torch.Tensor, grid: SpectralGrid) -> torch.Tensor:
    """psi_hat with -lap psi = w and zero mean (the mean of w must vanish on the torus)."""
    k2 = -grid.laplacian_symbol
    psi = w_hat / torch.where(k2 == 0, torch.ones_like(k2), k2)
    psi[..., 0, 0] = 0
    return psi


def velocity(w_hat: torch.Tensor, grid: SpectralGrid) -> tuple[torch.Tensor, torch.Tensor]:
    """Fourier coefficients of (u, v) = (psi_y, -psi_x) from the vorticity's."""
    psi = streamfunction(w_hat, grid)
    return derivative(psi, grid, 1), -derivative(psi, grid, 0)


def advection(w_hat: torch.Tensor, grid: SpectralGrid) -> torch.Tensor:
    """Dealiased Fourier coefficients of u w_x + v w_y (products in physical space).

    One stacked inverse transform of (u, v, w_x, w_y) = (psi_y, -psi_x, w_x, w_y), one forward
    transform of the product: 5 real FFTs of size n x n.
    """
    phys = torch.fft.irfft2(grid.advection_symbols * w_hat, s=(grid.n, grid.n))
    return grid.dealias_mask * torch.fft.rfft2(phys[0] * phys[2] + phys[1] * phys[3])


def max_speed(w_hat: torch.Tensor, grid: SpectralGrid) -> float:
    """max(|u|, |v|) over the grid nodes."""
    u_hat, v_hat = velocity(w_hat, grid)
    return float(torch.fft.irfft2(torch.stack([u_hat, v_hat]), s=(grid.n, grid.n)).abs().max())


def to_fourier(w: torch.Tensor, grid: SpectralGrid) -> torch.Tensor:
    """Dealiased Fourier coefficients of a physical field (n, n)."""
    return grid.dealias_mask * torch.fft.rfft2(w.to(grid.dtype))


def to_physical(w_hat: torch.Tensor, grid: SpectralGrid) -> torch.Tensor:
    return torch.fft.irfft2(w_hat, s=(grid.n, grid.n))


@dataclass
class Solution:
    """Output of :func:`solve`: snapshot times, vorticity snapshots (nt, n, n), max CFL number."""

    times: np.ndarray
    w: np.ndarray
    max_cfl: float


def solve(
    w0: torch.Tensor,
    grid: SpectralGrid,
    nu: float,
    t_end: float,
    n_steps: int,
    save_every: int = 0,
    forcing: Forcing = None,
) -> Solution:
    """Integrate the vorticity equation from ``w0`` (physical, (n, n)) over [0, t_end].

    Parameters
    ----------
    w0:
        Initial vorticity on the grid nodes; it is projected onto the dealiased modes and its mean
        is removed (the mean vorticity of a periodic flow is zero).
    nu:
        Kinematic viscosity.
    n_steps, save_every:
        Number of equal ETDRK4 steps; snapshots after every ``save_every`` steps (0: only the
        initial and final state).
    forcing:
        None, a physical (n, n) tensor (steady), or ``f(t)`` returning one.
    """
    w_hat0 = to_fourier(torch.as_tensor(w0, device=grid.device), grid)
    w_hat0[0, 0] = 0
    L = nu * grid.laplacian_symbol
    steady = None if forcing is None or callable(forcing) else to_fourier(forcing, grid)

    def N(w_hat: torch.Tensor, t: float) -> torch.Tensor:
        out = -advection(w_hat, grid)
        if steady is not None:
            return out + steady
        if forcing is not None:
            return out + to_fourier(forcing(t), grid)
        return out

    h = t_end / n_steps
    check = max(1, n_steps // 50)
    cfl = [max_speed(w_hat0, grid) * h / grid.h]

    def monitor(w_hat: torch.Tensor, t: float) -> None:
        k = round(t / h)
        if k % check and k != n_steps:
            return
        speed = max_speed(w_hat, grid)
        if not math.isfinite(speed):
            raise FloatingPointError(
                f"vorticity solver blew up by t = {t:g} (n = {grid.n}, {n_steps} steps)"
            )
        cfl.append(speed * h / grid.h)

    times, snaps = etdrk4.integrate(w_hat0, L, N, 0.0, t_end, n_steps, save_every, monitor)
    w = torch.fft.irfft2(snaps, s=(grid.n, grid.n))
    return Solution(times.numpy(), w.cpu().numpy(), max(cfl))


def velocity_from_vorticity(w: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Physical (u, v) from physical vorticity snapshots (..., n, n) on [0, length)^2 (spectral)."""
    wt = torch.as_tensor(np.asarray(w, dtype=np.float64))
    grid = SpectralGrid(wt.shape[-1], length)
    if wt.shape[-2] != grid.n:
        raise ValueError(f"vorticity must be square in its last two axes; got {tuple(wt.shape)}")
    u_hat, v_hat = velocity(torch.fft.rfft2(wt), grid)
    n = grid.n
    return (
        torch.fft.irfft2(u_hat, s=(n, n)).numpy(),
        torch.fft.irfft2(v_hat, s=(n, n)).numpy(),
    )
