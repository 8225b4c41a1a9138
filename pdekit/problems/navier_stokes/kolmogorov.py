"""Forced 2D turbulence on the unit torus: the Navier-Stokes benchmark of the FNO paper."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Rectangle, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, param
from pdekit.problems.references import GridReference, load_or_compute
from pdekit.problems.references import spectral_ns as sns
from pdekit.problems.registry import register

#: Gaussian random field of the FNO benchmark: alpha, tau, and the highest mode kept
GRF_ALPHA, GRF_TAU, GRF_MODES = 2.5, 7.0, 32
#: reference grid per viscosity, chosen from the spectral tail diagnostic at t = 10
REFERENCE_GRID = {1e-3: 128, 1e-4: 128, 1e-5: 256}
#: reference snapshots per unit time; advective CFL budget of the time step (dt <= CFL_DT / n)
SNAPSHOTS_PER_TIME, CFL_DT = 4, 2.56


def forcing(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray):
    """f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))."""
    lib = torch if isinstance(x, torch.Tensor) else np
    s = 2 * math.pi * (x + y)
    return 0.1 * (lib.sin(s) + lib.cos(s))


def initial_modes(seed: int) -> np.ndarray:
    """Complex mode amplitudes c[m_x + K, m_y + K] of the initial vorticity, |m_x|, |m_y| <= K.

    The FNO data generator's field (Li et al. 2021, ``GaussianRF(2, s, alpha=2.5, tau=7)``):
    w0(x) = Re sum_m c_m exp(2 pi i m.x), c_m = sqrt(2) sigma (4 pi^2 |m|^2 + tau^2)^(-alpha/2)
    xi_m with xi_m standard complex normal, sigma = tau^(alpha - 1), c_0 = 0; i.e. a sample of
    N(0, tau^(2 alpha - 2) (-lap + tau^2)^(-alpha)) on the torus. We truncate it at K = 32
    (the FNO truncates at its grid's Nyquist mode); the largest coefficient dropped is below
    1e-3 of the largest kept. Drawn with ``numpy.random.default_rng(seed)``.
    """
    K = GRF_MODES
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal((2, 2 * K + 1, 2 * K + 1))
    xi = (xi[0] + 1j * xi[1]) / math.sqrt(2)
    m = np.arange(-K, K + 1)
    k2 = (4 * math.pi**2) * (m[:, None] ** 2 + m[None, :] ** 2)
    sigma = GRF_TAU ** (GRF_ALPHA - 1)
    amp = math.sqrt(2) * sigma * (k2 + GRF_TAU**2) ** (-GRF_ALPHA / 2)
    amp[K, K] = 0.0
    return amp * xi


def _mode_fields(c: np.ndarray) -> dict[str, np.ndarray]:
    """Mode amplitudes of (u, v, w) from those of w: psi = w / |k|^2, u = psi_y, v = -psi_x."""
    K = (c.shape[0] - 1) // 2
    m = 2 * math.pi * np.arange(-K, K + 1)
    kx, ky = m[:, None], m[None, :]
    k2 = kx**2 + ky**2
    psi = np.where(k2 == 0, 0.0, c / np.where(k2 == 0, 1.0, k2))
    return {"u": 1j * ky * psi, "v": -1j * kx * psi, "w": c}


@register("navier_stokes/kolmogorov")
@dataclass(frozen=True)
class Kolmogorov(Problem):
    """Forced 2D Navier-Stokes in vorticity form on the unit torus (Li et al., ICLR 2021, FNO).

        w_t + u w_x + v w_y - nu (w_xx + w_yy) - f = 0,   f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y))
        u_x + v_y = 0
        w - (v_x - u_y) = 0

    on [0, 1)^2 periodic, t in [0, t_end], w(x, y, 0) = w0 a seeded sample of the FNO's Gaussian
    random field (alpha = 2.5, tau = 7; :func:`initial_modes`). Fields (u, v, w): the vorticity
    the FNO benchmark predicts, and the velocity that makes its transport equation local (the
    continuity and vorticity-definition residuals tie them together); u, v come from the stream
    function, -lap psi = w, u = psi_y, v = -psi_x.

    The FNO evolves to T = 50 (nu = 1e-3), 30 (1e-4) and 20 (1e-5); the default t_end = 10 keeps
    the reference cheap (a few seconds on one CPU core at nu = 1e-3 and 1e-4, 128^2 grid; about
    20 s at nu = 1e-5, 256^2). The reference is
    our pseudo-spectral solver (:mod:`~pdekit.problems.references.spectral_ns`), cached.
    """

    nu: float = param(1e-3, choices=(1e-3, 1e-4, 1e-5), doc="kinematic viscosity")
    seed: int = param(0, low=0, high=2**32 - 1, doc="seed of the initial Gaussian random field")
    t_end: float = param(10.0, low=0.0, high=50.0, low_open=True, doc="final time")

    coordinates = ("x", "y", "t")
    fields = ("u", "v", "w")
    derivatives = {
        "u": ("x", "y"),
        "v": ("x", "y"),
        "w": ("t", "x", "y", "laplacian"),
    }
    equation = (
        "w_t + u w_x + v w_y = nu lap w + 0.1 (sin 2pi(x+y) + cos 2pi(x+y)),  u_x + v_y = 0,  "
        "w = v_x - u_y  on [0, 1)^2 periodic, t in [0, t_end]; w(., 0) a Gaussian random field "
        "(alpha = 2.5, tau = 7)"
    )
    evaluation_resolution = {"x": 64, "y": 64, "t": 11}

    def domain(self) -> SpaceTime:
        space = Rectangle((0.0, 0.0), (1.0, 1.0), periodic=(True, True))
        return SpaceTime(space, TimeDomain(0.0, self.t_end))

    def initial_condition(self, x):
        """(u, v, w) at t = 0, summed mode by mode at the points (exact for the truncated field)."""
        modes = _mode_fields(initial_modes(self.seed))
        K = GRF_MODES
        m = torch.arange(-K, K + 1, dtype=torch.float64, device=x.device)
        xd = x.to(torch.float64)
        ex = torch.exp(2j * math.pi * xd[:, :1] * m)  # (n, 2K+1)
        ey = torch.exp(2j * math.pi * xd[:, 1:2] * m)
        out = {}
        for name, c in modes.items():
            ct = torch.as_tensor(c, device=x.device)
            out[name] = torch.real(((ex @ ct) * ey).sum(dim=1)).to(x.dtype)
        return out

    def residual(self, f):
        u, v = f["u"], f["v"]
        return {
            "vorticity": f.d("w", "t")
            + u * f.d("w", "x")
            + v * f.d("w", "y")
            - self.nu * f.laplacian("w")
            - forcing(f.coord("x"), f.coord("y")),
            "continuity": f.d("u", "x") + f.d("v", "y"),
            "vorticity_definition": f["w"] - (f.d("v", "x") - f.d("u", "y")),
        }

    def reference_settings(self) -> dict:
        """Grid, time step and snapshots of the reference solve (part of its cache key)."""
        n = REFERENCE_GRID[self.nu]
        n_snap = max(3, math.ceil(self.t_end * SNAPSHOTS_PER_TIME))  # >= 4 for cubic
        per_snap = 2 * math.ceil((self.t_end / n_snap) / (2 * CFL_DT / n))  # even: see _compute
        modes = initial_modes(self.seed)
        return {
            "solver": "spectral_ns",
            "scheme": "etdrk4",
            "version": 1,
            "n": n,
            "n_steps": n_snap * per_snap,
            "save_every": per_snap,
            "initial_modes_sha256": hashlib.sha256(modes.tobytes()).hexdigest(),
        }

    def reference(self) -> GridReference:
        return _reference(self)

    def solve_reference(self, n: int, n_steps: int, save_every: int = 0) -> sns.Solution:
        """Run the pseudo-spectral solver on an n x n grid (the cached reference uses
        :meth:`reference_settings`; tests call this for convergence studies)."""
        grid = sns.SpectralGrid(n, 1.0)
        if n <= 2 * GRF_MODES:
            raise ValueError(f"the initial field needs n > {2 * GRF_MODES}; got {n}")
        K = GRF_MODES
        c = np.zeros((n, n), dtype=complex)
        m = np.arange(-K, K + 1) % n
        c[np.ix_(m, m)] = initial_modes(self.seed)
        w0 = np.real(np.fft.ifft2(c)) * n * n
        x = grid.axis()
        fxy = forcing(x[:, None], x[None, :])
        return sns.solve(
            torch.as_tensor(w0),
            grid,
            self.nu,
            self.t_end,
            n_steps,
            save_every,
            forcing=torch.as_tensor(fxy),
        )


def _compute(problem: Kolmogorov, settings: dict) -> dict[str, np.ndarray]:
    n, n_steps, every = settings["n"], settings["n_steps"], settings["save_every"]
    fine = problem.solve_reference(n, n_steps, every)
    if fine.max_cfl > 2.0:
        raise FloatingPointError(f"reference CFL number {fine.max_cfl:.2f} exceeds 2 ({problem})")
    # Richardson estimate of the time-stepping error: the same run at twice the step (the
    # settings make save_every even, so both runs record the same snapshot times)
    coarse = problem.solve_reference(n, n_steps // 2, every // 2)
    time_error = float(np.abs(fine.w - coarse.w).max()) / (2**sns.TIME_ORDER - 1)
    return {
        "t": fine.times,
        "w": fine.w,
        "time_error": np.float64(time_error),
        "spectral_tail": np.float64(_spectral_tail(fine.w)),
        "max_cfl": np.float64(fine.max_cfl),
    }


def _spectral_tail(w: np.ndarray) -> float:
    """Sum of the mode amplitudes |w_m| over the outermost tenth of the kept (2/3-rule) modes,
    max over snapshots: the size of the finest resolved scales, an estimate of the truncation
    error (the discarded modes are smaller still for a decaying spectrum)."""
    n = w.shape[-1]
    m = np.abs(np.fft.fftfreq(n, 1.0 / n))
    mr = np.abs(np.fft.rfftfreq(n, 1.0 / n))
    cut = n / 3
    band = np.maximum(m[:, None], mr[None, :])
    outer = (band < cut) & (band >= 0.9 * cut)
    amps = np.abs(np.fft.rfft2(w)) / n**2
    weight = np.where(mr[None, :] > 0, 2.0, 1.0)  # the rfft half-plane counts conjugates once
    return float((amps * (outer * weight)).sum(axis=(-2, -1)).max())


@functools.lru_cache(maxsize=2)
def _reference(problem: Kolmogorov) -> GridReference:
    settings = problem.reference_settings()
    arrays = load_or_compute(
        problem.name, problem.params(), settings, lambda: _compute(problem, settings)
    )
    w = arrays["w"]
    u, v = sns.velocity_from_vorticity(w, 1.0)
    n = settings["n"]
    axis = np.arange(n) / n
    ref = GridReference(
        {"x": axis, "y": axis, "t": arrays["t"]},
        {k: np.moveaxis(a, 0, -1) for k, a in (("u", u), ("v", v), ("w", w))},
        (True, True, False),
        description=(
            f"pseudo-spectral vorticity solver (2/3-dealiased Fourier, {n}x{n} grid; ETDRK4, "
            f"{settings['n_steps']} steps of {problem.t_end / settings['n_steps']:.3g}); "
            f"{len(arrays['t'])} snapshots, cubic interpolation in x, y, t"
        ),
        accuracy="",
    )
    interp = ref.interpolation_error_estimate()
    ref.accuracy = (
        f"on grid nodes and snapshot times: time-step error ~{float(arrays['time_error']):.1e} "
        f"(Richardson, max |w|), spectral tail {float(arrays['spectral_tail']):.1e} (sum of the "
        f"outermost resolved mode amplitudes of w); off the nodes add the cubic interpolation "
        f"error ~{interp:.1e} (estimated, all fields)"
    )
    return ref
