"""Pseudo-spectral solver of 2D incompressible Navier-Stokes in vorticity form on a periodic box.

On a periodic :class:`~pdekit.geometries.Grid` over [x0, x0 + Lx) x [y0, y0 + Ly), with velocity
(u, v) = (psi_y, -psi_x) and vorticity w = v_x - u_y = -lap psi:

    w_t + u w_x + v w_y = nu lap w + f(x, y, t)

Space: Fourier pseudo-spectral on the grid's nodes (even n per axis), products in physical
space, 2/3-rule dealiasing (every Fourier mode with ``|m_x| >= n_x/3`` or ``|m_y| >= n_y/3`` is
zeroed in the state and in the nonlinear term, so quadratic products alias only onto discarded
modes).
Spatial error: spectral (exponentially small in n for analytic solutions; round-off on
Taylor-Green, tested). The velocity comes from :func:`pdekit.core.spectral.velocity_multipliers`,
the one definition of velocity from vorticity; the advection term is evaluated in Basdevant's
form (:func:`advection`), four real FFTs per evaluation.

Time: ETDRK4 (:mod:`~pdekit.problems.references.etdrk4`) with the viscous term as the exact
linear part and advection plus forcing as the explicit nonlinear part; fourth order in the time
step (measured in the tests on a forced solution whose advection term does not vanish). Stability
of the explicit part needs an advective CFL number ``max(|u|, |v|) dt / h`` below about 2 (the
stability region of RK4 on the imaginary axis reaches 2.8); :func:`solve` records the largest
CFL number met (checked at about 50 points of the run, max over the batch) and raises if the
state stops being finite.

Batches: :func:`solve` integrates B initial fields at once, ``(B, n_x, n_y)``, with one FFT
call per chunk of trajectories (:func:`default_chunk` on a CPU, the whole batch on a GPU); a
batch equals its members run one by one to round-off (tested). On the 2-core development CPU
at 64^2 a batch takes about 0.55 of the time of looping over its members (the step is already
FFT-bound at B = 1): ``benchmarks/references.py``, section ``batched_ns``.

The operators are pure functions of a :class:`~pdekit.geometries.Grid`; their Fourier symbols
are cached per (shape, lengths, dtype, device) by :func:`symbols`. :func:`stepper` composes them
into the ETDRK4 step and :func:`solve` runs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch

from pdekit.core import spectral
from pdekit.errors import ParameterError
from pdekit.problems.references import etdrk4
from pdekit.progress import progress_bar

#: the time order of :func:`solve` (ETDRK4)
TIME_ORDER = etdrk4.ORDER
#: largest advective CFL number for which the explicit part is trusted (RK4 on the imaginary
#: axis is stable to 2.8; the margin covers the speed changing between the CFL checks)
MAX_CFL = 2.0
#: bytes of one stacked transform per FFT call on a CPU (:func:`default_chunk`)
CHUNK_BYTES = 1 << 19

#: None, a physical field broadcasting against (B, n_x, n_y) (steady), or f(t) returning one
Forcing = torch.Tensor | Callable[[float], torch.Tensor] | None


class Symbols(NamedTuple):
    """Fourier symbols of a grid, on the ``rfft2`` half-spectrum ``(n_x, n_y // 2 + 1)``."""

    #: ``-|k|^2``, real
    laplacian: torch.Tensor
    #: 2/3 rule (Orszag 1971): 1 on the kept modes ``|m_x| < n_x/3``, ``|m_y| < n_y/3``, else 0;
    #: real
    dealias: torch.Tensor
    #: (2, n_x, n_y // 2 + 1) complex: w_hat -> the coefficients of (u, v)
    #: (:func:`pdekit.core.spectral.velocity_symbols`)
    velocity: torch.Tensor
    #: (2, n_x, n_y // 2 + 1) complex: the symbols of (d_xx - d_yy, d_xy), ky^2 - kx^2 and
    #: -kx ky, that take (uv, v^2 - u^2) to the advection term (:func:`advection`)
    products: torch.Tensor


def check_grid(grid) -> tuple[int, int]:
    """The grid's (n_x, n_y) if it is a 2D grid, periodic on both axes, with even n >= 4."""
    if grid.dim != 2 or not all(grid.periodic):
        raise ParameterError(f"the vorticity solver needs a 2D grid periodic on both axes; {grid}")
    if any(n < 4 or n % 2 for n in grid.n):
        raise ParameterError(f"grid sizes must be even and >= 4; got {list(grid.n)}")
    return grid.n


def symbols(grid, dtype: torch.dtype = torch.float64, device=None) -> Symbols:
    """The grid's :class:`Symbols` in real ``dtype`` on ``device`` (cached)."""
    shape = check_grid(grid)
    lengths = tuple(float(length) for length in grid.hi - grid.lo)
    return _symbols(shape, lengths, dtype, torch.device(device or "cpu"))


@functools.lru_cache(maxsize=16)
def _symbols(shape, lengths, dtype, device) -> Symbols:
    kx, ky = spectral.wavenumbers(shape, lengths, dtype=dtype, device=device)
    u, v = spectral.velocity_symbols(shape, lengths, dtype=dtype, device=device)
    complex_dtype = u.dtype  # products held complex: a real factor is cast on every use
    return Symbols(
        laplacian=-(kx**2 + ky**2),
        dealias=spectral.dealias_mask(shape, dtype=dtype, device=device),
        velocity=torch.stack([u, v]).contiguous(),
        products=torch.stack(torch.broadcast_tensors(ky**2 - kx**2, -kx * ky))
        .to(complex_dtype)
        .contiguous(),
    )


def _real(t: torch.Tensor) -> torch.dtype:
    return t.real.dtype if torch.is_complex(t) else t.dtype


def to_fourier(w: torch.Tensor, grid) -> torch.Tensor:
    """Dealiased ``rfft2`` coefficients of physical fields ``(..., n_x, n_y)`` (real)."""
    w = torch.as_tensor(w)
    if not torch.is_floating_point(w):
        w = w.to(torch.float64)
    return symbols(grid, w.dtype, w.device).dealias * torch.fft.rfft2(w)


def _products(w_hat: torch.Tensor, sym: Symbols, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Fourier coefficients of (uv, v^2 - u^2), not dealiased: one stacked inverse transform
    of (u, v), one stacked forward transform of the products."""
    u, v = torch.fft.irfft2(sym.velocity * w_hat.unsqueeze(-3), s=shape).unbind(-3)
    products = torch.empty_like(u.unsqueeze(-3).expand(*u.shape[:-2], 2, *shape))
    torch.mul(u, v, out=products[..., 0, :, :])
    torch.mul(v, v, out=products[..., 1, :, :]).addcmul_(u, u, value=-1)
    uv_hat, diff_hat = torch.fft.rfft2(products).unbind(-3)
    return uv_hat, diff_hat


def advection(w_hat: torch.Tensor, grid) -> torch.Tensor:
    """Dealiased Fourier coefficients of u w_x + v w_y (products in physical space).

    Written in Basdevant's (1983) form for a divergence-free velocity with w = v_x - u_y,

        u w_x + v w_y = (d_xx - d_yy)(u v) + d_xy (v^2 - u^2),

    which needs the physical velocity only (two inverse FFTs) and two products (two forward
    FFTs): four real FFTs of the grid's size per field where the form u w_x + v w_y needs five
    (u, v, w_x, w_y and the product). The two agree on the kept modes to round-off (tested
    against the direct form on a grid fine enough to hold the products exactly).

    ``w_hat``: ``(..., n_x, n_y // 2 + 1)`` coefficients, leading dimensions a batch.
    Basdevant, C. (1983), "Technical improvements for direct numerical simulation of
    homogeneous three-dimensional turbulence", J. Comput. Phys. 50:209-214.
    """
    sym = symbols(grid, _real(w_hat), w_hat.device)
    uv_hat, diff_hat = _products(w_hat, sym, grid.n)
    return sym.dealias * torch.addcmul(sym.products[0] * uv_hat, sym.products[1], diff_hat)


def max_speed(w_hat: torch.Tensor, grid) -> torch.Tensor:
    """``max(|u|, |v|)`` over the grid nodes, per field of the batch (shape
    ``w_hat.shape[:-2]``)."""
    sym = symbols(grid, _real(w_hat), w_hat.device)
    uv = torch.fft.irfft2(sym.velocity * w_hat.unsqueeze(-3), s=grid.n)
    return uv.abs().amax(dim=(-3, -2, -1))


def pressure(u: torch.Tensor, v: torch.Tensor, grid) -> torch.Tensor:
    """The zero-mean pressure of a divergence-free velocity: lap p = -div((u.grad) u).

    For div u = 0, div((u.grad) u) = d_i d_j (u_i u_j), so in Fourier space
    ``p_hat = -k_i k_j (u_i u_j)_hat / |k|^2`` (mean mode 0). The products are formed on the grid
    and their top third of modes dropped (2/3 rule), as the solver drops them from the advection:
    for velocities whose modes have ``|m| < n/3`` on each axis (the states :func:`solve` returns)
    the result is the exact pressure on the kept modes ``|m| < n/3``, its higher modes (which the
    grid cannot all hold) left out. Leading dimensions of ``u``, ``v`` are a batch;
    differentiable.
    """
    check_grid(grid)
    sym = symbols(grid, u.dtype, u.device)
    lengths = tuple(float(length) for length in grid.hi - grid.lo)
    kx, ky = spectral.wavenumbers(grid.n, lengths, dtype=u.dtype, device=u.device)
    k2 = -sym.laplacian
    inv = torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, torch.ones_like(k2)), 0.0)
    uu, uv, vv = torch.fft.rfft2(torch.stack([u * u, u * v, v * v])).unbind(0)
    p_hat = -sym.dealias * inv * (kx * kx * uu + 2 * kx * ky * uv + ky * ky * vv)
    return torch.fft.irfft2(p_hat, s=grid.n)


def steps_per_interval(times: Sequence[float], max_dt: float) -> np.ndarray:
    """The fewest equal steps no longer than ``max_dt`` in each interval between the ``times``
    (an interval longer than a whole number of ``max_dt`` by < 1e-12 relative is not split
    further, so ``times`` built as multiples of ``max_dt`` get exactly those multiples)."""
    if not max_dt > 0:
        raise ParameterError(f"max_dt must be positive; got {max_dt}")
    dt = np.diff(np.asarray(times, dtype=np.float64))
    return np.maximum(1, np.ceil(dt / max_dt * (1 - 1e-12))).astype(int)


@dataclass
class Solution:
    """Output of :func:`solve`."""

    #: the output times (nt,)
    times: np.ndarray
    #: vorticity snapshots (B, nt, n_x, n_y); (nt, n_x, n_y) when one field (n_x, n_y) went in
    w: np.ndarray
    #: largest advective CFL number met (max over the checks and the batch)
    max_cfl: float
    #: ETDRK4 steps taken (per trajectory)
    steps: int


def solve(
    w0: torch.Tensor,
    grid,
    nu: float,
    times: Sequence[float],
    steps: int | Sequence[int],
    forcing: Forcing = None,
    *,
    mean_velocity: torch.Tensor | Sequence[float] | None = None,
    progress: bool | None = None,
    chunk: int | None = None,
) -> Solution:
    """Integrate the vorticity equation from ``w0`` and record it at ``times``.

    Parameters
    ----------
    w0:
        Initial vorticity at the grid's nodes, ``(B, n_x, n_y)`` or ``(n_x, n_y)``. Each field is
        projected onto the dealiased modes and its mean removed (the mean vorticity of a
        periodic flow is zero), so the first snapshot is that projection.
    grid:
        A 2D :class:`~pdekit.geometries.Grid`, periodic on both axes, even n per axis.
    nu:
        Kinematic viscosity.
    times:
        Increasing output times; the first is the initial time.
    steps:
        Equal ETDRK4 steps in each interval between consecutive ``times`` (one number for all,
        or one per interval; :func:`steps_per_interval` derives them from a step bound).
        Intervals whose step sizes agree to 1e-12 relative share one set of ETDRK4
        coefficients (uniform ``times`` cost one set); each other size adds one (about the cost
        of one step).
    forcing:
        None, a physical field broadcasting against ``(B, n_x, n_y)`` (steady), or ``f(t)``
        returning one.
    mean_velocity:
        A constant mean velocity ``(2,)`` or ``(B, 2)`` (default zero). The vorticity
        determines the velocity only up to its mean, which a periodic, unforced flow keeps for
        all time and which only translates the flow: the solver integrates in the frame moving
        with it and translates each snapshot back, exactly (a phase shift of its modes).
        Not combinable with ``forcing`` (in the moving frame the forcing would move too).
    progress:
        Progress bar: None (default) follows :func:`pdekit.progress.progress_bar` (on a
        terminal, once the run has taken 2 s); True or False force it on or off.
    chunk:
        Trajectories per FFT call (:func:`stepper`).

    Raises
    ------
    FloatingPointError
        If a state stops being finite (naming the trajectories that blew up).
    """
    nx, ny = check_grid(grid)
    w0 = torch.as_tensor(w0)
    if not torch.is_floating_point(w0):
        w0 = w0.to(torch.float64)
    single = w0.ndim == 2
    if single:
        w0 = w0.unsqueeze(0)
    if w0.ndim != 3 or tuple(w0.shape[1:]) != (nx, ny):
        raise ParameterError(f"w0 must have shape (B, {nx}, {ny}) or ({nx}, {ny}); got {w0.shape}")
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if times.size < 1 or np.any(np.diff(times) <= 0) or not np.all(np.isfinite(times)):
        raise ParameterError("times must be a non-empty, finite, strictly increasing sequence")
    steps = np.broadcast_to(np.asarray(steps), (times.size - 1,)).astype(int)
    if np.any(steps < 1):
        raise ParameterError(f"steps per interval must be >= 1; got {steps.tolist()}")
    if mean_velocity is not None and forcing is not None:
        raise ParameterError("mean_velocity cannot be combined with forcing")

    dtype, device, shape = w0.dtype, w0.device, (nx, ny)
    sym = symbols(grid, dtype, device)
    w_hat = sym.dealias * torch.fft.rfft2(w0)
    w_hat[..., 0, 0] = 0
    batch = w_hat.shape[0]
    step = stepper(grid, nu, batch, forcing, dtype=dtype, device=device, chunk=chunk)

    h_grid = float(min(grid.spacing))
    dts = np.diff(times) / steps
    total = int(steps.sum())
    check_every = max(1, total // 50)
    cfl = [float(max_speed(w_hat, grid).max()) * (float(dts.max()) if total else 0.0) / h_grid]

    def monitor(v: torch.Tensor, t: float, dt: float, done: int) -> None:
        speed = max_speed(v, grid)
        finite = torch.isfinite(speed)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten().tolist()
            raise FloatingPointError(
                f"vorticity solver blew up by t = {t:g} in trajectories {bad[:10]} of "
                f"{w_hat.shape[0]} (grid {nx}x{ny}, step {dt:.3g}, {done} steps)"
            )
        cfl.append(float(speed.max()) * dt / h_grid)

    snaps, done = [w_hat], 0
    bar = progress_bar(
        total, desc=f"vorticity {nx}x{ny}, batch {w_hat.shape[0]}", unit="step", enabled=progress
    )
    parts = step.split(w_hat)
    with bar, torch.no_grad():
        for t0, k_steps, dt in zip(times[:-1], steps, dts):
            h = step.step_size(float(dt))
            for k in range(k_steps):
                parts = step(parts, t0 + k * h, h)
                done += 1
                if done % check_every == 0 or done == total:
                    monitor(step.join(parts), t0 + (k + 1) * h, h, done)
                bar.update()
            snaps.append(step.join(parts))
    hats = torch.stack(snaps, dim=1)  # (B, nt, nx, ny // 2 + 1)
    if mean_velocity is not None:
        hats = hats * _translation(mean_velocity, grid, times - times[0], dtype, device)
    w = torch.fft.irfft2(hats, s=shape).cpu().numpy()
    return Solution(times, w[0] if single else w, max(cfl), total)


class Stepper:
    """One ETDRK4 step of a batch of vorticity coefficients, held in chunks of trajectories:
    ``parts = step(parts, t, dt)``.

    Built by :func:`stepper`. :meth:`split` cuts coefficients ``(B, n_x, n_y // 2 + 1)``
    (dealiased, mean zero) into the chunks and :meth:`join` glues them back (the state stays
    split between steps: no copy per step); ``t`` is the time at the start of the step (for a
    forcing f(t)), ``dt`` the step. The ETDRK4 coefficients are computed once per step size:
    sizes within 1e-12 relative of one met before reuse it (:meth:`step_size` says which size
    a step of ``dt`` will take).
    """

    def __init__(self, grid, nu: float, batch: int, forcing: Forcing, dtype, device, chunk):
        nx, ny = check_grid(grid)
        self.sym = symbols(grid, dtype, device)
        self.L = nu * self.sym.laplacian
        self.cdtype = self.sym.velocity.dtype  # complex, of the state's precision
        if chunk is None:
            chunk = batch if torch.device(device).type != "cpu" else default_chunk(nx, ny, dtype)
        if chunk < 1:
            raise ParameterError(f"chunk must be >= 1; got {chunk}")
        self.chunk = min(int(chunk), batch)
        forcing_hat = _forcing_transform(forcing, grid, batch, dtype, device)
        sym, shape = self.sym, (nx, ny)
        minus_xx_yy, minus_xy = (-sym.products).unbind(0)

        def nonlinear(part: slice) -> etdrk4.NonlinearFn:
            def N(v: torch.Tensor, t: float) -> torch.Tensor:
                """f - (u w_x + v w_y) (Basdevant's form, see :func:`advection`); the
                dealiasing is folded into the ETDRK4 coefficients."""
                uv_hat, diff_hat = _products(v, sym, shape)
                f = forcing_hat(t)
                if f is None:
                    out = uv_hat.mul_(minus_xx_yy)
                else:
                    out = torch.addcmul(f if f.shape[0] == 1 else f[part], minus_xx_yy, uv_hat)
                return out.addcmul_(minus_xy, diff_hat)

            return N

        self.parts = [
            (slice(lo, lo + self.chunk), nonlinear(slice(lo, lo + self.chunk)))
            for lo in range(0, batch, self.chunk)
        ]
        self._coefficients: list[etdrk4.Coefficients] = []

    def coefficients(self, dt: float) -> etdrk4.Coefficients:
        for c in self._coefficients:
            if abs(c.h - dt) <= 1e-12 * dt:
                return c
        c = etdrk4.coefficients(self.L, dt)
        # complex copies (a real factor would be cast on every multiplication) with the
        # dealiasing of the nonlinear term folded into the factors that multiply it
        mask = self.sym.dealias
        c = replace(
            c,
            **{k: getattr(c, k).to(self.cdtype) for k in ("E", "E2")},
            **{k: (getattr(c, k) * mask).to(self.cdtype) for k in ("Q", "f1", "f2", "f3")},
        )
        self._coefficients.append(c)
        return c

    def step_size(self, dt: float) -> float:
        return self.coefficients(dt).h

    def split(self, w_hat: torch.Tensor) -> list[torch.Tensor]:
        return [w_hat[part] for part, _ in self.parts]

    def join(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def __call__(self, parts: list[torch.Tensor], t: float, dt: float) -> list[torch.Tensor]:
        c = self.coefficients(dt)
        return [etdrk4.step(w, t, N, c) for w, (_, N) in zip(parts, self.parts)]


def stepper(
    grid,
    nu: float,
    batch: int,
    forcing: Forcing = None,
    *,
    dtype: torch.dtype = torch.float64,
    device=None,
    chunk: int | None = None,
) -> Stepper:
    """The ETDRK4 step of :func:`solve` for ``batch`` trajectories (a :class:`Stepper`).

    Each stage evaluates the advection of :func:`advection` (4 real FFTs per trajectory) on
    ``chunk`` trajectories per FFT call: default the whole batch on a GPU and
    :func:`default_chunk` on a CPU (a batch whose transforms outgrow the cache runs slower per
    field); the result does not depend on the chunk beyond round-off.
    """
    return Stepper(grid, nu, batch, forcing, dtype, torch.device(device or "cpu"), chunk)


def default_chunk(nx: int, ny: int, dtype: torch.dtype = torch.float64) -> int:
    """Trajectories per FFT call on a CPU: as many as keep one stacked transform (2 real fields
    per trajectory: (u, v) back, (uv, v^2 - u^2) forward) within :data:`CHUNK_BYTES`; 8 at
    64^2 in float64.

    Why not the whole batch: a batched transform whose arrays outgrow the cache costs more per
    field. Measured on the 2-core development machine (torch 2.13 CPU, pocketfft, 1 thread,
    shared and loaded, fastest of the samples): the whole step at 64^2, float64, 32
    trajectories, in chunks of 1, 2, 4, 8, 16, 32 trajectories: 450, 340, 272, 246, 323,
    379 us per trajectory-step (``benchmarks/results/references.json``, ``batched_ns``,
    ``chunk_sweep``).
    """
    per_trajectory = 2 * nx * ny * torch.finfo(dtype).bits // 8
    return max(1, CHUNK_BYTES // per_trajectory)


def _forcing_transform(forcing: Forcing, grid, batch: int, dtype, device):
    """t -> dealiased coefficients (1 or batch, n_x, n_y // 2 + 1) of the forcing, or None;
    a forcing f(t) is transformed once per distinct stage time."""
    nx, m = grid.n[0], grid.n[1] // 2 + 1

    def transform(f) -> torch.Tensor:
        f_hat = to_fourier(torch.as_tensor(f, dtype=dtype, device=device), grid)
        f_hat = f_hat.reshape(-1, nx, m)
        if f_hat.shape[0] not in (1, batch):
            raise ParameterError(f"forcing must broadcast against ({batch}, {nx}, {grid.n[1]})")
        return f_hat

    if forcing is None:
        return lambda t: None
    if not callable(forcing):
        steady = transform(forcing)
        return lambda t: steady
    recent: dict[float, torch.Tensor] = {}

    def at(t: float) -> torch.Tensor:
        if t not in recent:
            if len(recent) >= 4:  # the stage times of one step: t, t + h/2, t + h
                recent.clear()
            recent[t] = transform(forcing(t))
        return recent[t]

    return at


def _translation(mean_velocity, grid, tau: np.ndarray, dtype, device) -> torch.Tensor:
    """exp(-i k.U tau): the phase that moves every mode by U tau, shape (B or 1, nt, n_x, m)."""
    U = torch.as_tensor(mean_velocity, dtype=dtype, device=device)
    if U.shape[-1:] != (2,) or U.ndim > 2:
        raise ParameterError(f"mean_velocity must have shape (2,) or (B, 2); got {tuple(U.shape)}")
    U = U.reshape(-1, 1, 1, 1, 2)
    lengths = tuple(float(length) for length in grid.hi - grid.lo)
    kx, ky = spectral.wavenumbers(grid.n, lengths, dtype=dtype, device=device)
    t = torch.as_tensor(tau, dtype=dtype, device=device).reshape(1, -1, 1, 1)
    return torch.exp(-1j * (kx * U[..., 0] + ky * U[..., 1]) * t)
