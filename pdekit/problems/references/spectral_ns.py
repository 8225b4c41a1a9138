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

from pdekit.core import spectral
from pdekit.problems.references import etdrk4

#: the time order of :func:`solve` (ETDRK4)
TIME_ORDER = etdrk4.ORDER

Forcing = torch.Tensor | Callable[[float], torch.Tensor] | None


@dataclass(frozen=True)
class SpectralGrid:
    """An n x n periodic grid on [0, length)^2 and its Fourier multipliers (cached).

    Arrays are indexed [i, j] with x = i h along axis 0 and y = j h along axis 1 ('ij').
    In Fourier space axis 0 holds all kx, axis 1 the non-negative ky (``torch.fft.rfft2``).
    The multipliers come from the core's spectral operators (:mod:`pdekit.core.spectral`).
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

    @property
    def lengths(self) -> tuple[float, float]:
        return (self.length, self.length)

    def axis(self) -> np.ndarray:
        """The node coordinates 0, h, ..., length - h."""
        return self.length * np.arange(self.n) / self.n

    def _multiplier(self, orders: tuple[int, int]) -> torch.Tensor:
        return spectral.multiplier(
            (self.n, self.n), self.lengths, orders, dtype=self.dtype, device=self.device
        )

    @cached_property
    def laplacian_symbol(self) -> torch.Tensor:
        """The Fourier symbol -|k|^2 of the Laplacian, shape (n, n//2 + 1)."""
        kx, ky = spectral.wavenumbers(
            (self.n, self.n), self.lengths, dtype=self.dtype, device=self.device
        )
        return -(kx**2 + ky**2)

    @cached_property
    def dealias_mask(self) -> torch.Tensor:
        """2/3 rule (Orszag 1971): 1 on the kept modes |m_x|, |m_y| < n/3, else 0."""
        return spectral.dealias_mask((self.n, self.n), dtype=self.dtype, device=self.device)

    @cached_property
    def advection_symbols(self) -> torch.Tensor:
        """Fourier multipliers (4, n, n//2 + 1) taking w to (u, v, w_x, w_y) = (psi_y, -psi_x,
        w_x, w_y) with -lap psi = w (the mean mode maps to zero)."""
        k2 = -self.laplacian_symbol
        inv = torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, torch.ones_like(k2)), 0.0)
        dx, dy = self._multiplier((1, 0)), self._multiplier((0, 1))
        return torch.stack(torch.broadcast_tensors(dy * inv, -dx * inv, dx, dy))


def velocity(w_hat: torch.Tensor, grid: SpectralGrid) -> tuple[torch.Tensor, torch.Tensor]:
    """Fourier coefficients of (u, v) = (psi_y, -psi_x) from the vorticity's."""
    sym = grid.advection_symbols
    return sym[0] * w_hat, sym[1] * w_hat


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
    u, v = spectral.velocity_from_vorticity(wt, (length, length))
    return u.numpy(), v.numpy()
