"""The Allen-Cahn reaction-diffusion benchmark of the causal-PINN paper."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, param
from pdekit.problems.references import GridReference, etdrk4, load_or_compute
from pdekit.problems.registry import register

#: reference snapshots (201 times on [0, 1], as in the benchmark's data) and ETDRK4 steps
N_SNAPSHOTS, STEPS_PER_SNAPSHOT = 201, 10


@register("convection_diffusion/allen_cahn")
@dataclass(frozen=True)
class AllenCahn(Problem):
    """u_t - d u_xx + r u^3 - r u = 0 on [-1, 1] periodic, t in [0, 1], u(x, 0) = x^2 cos(pi x).

    Defaults d = 1e-4, r = 5: the Allen-Cahn benchmark of Raissi et al. (2019, JCP 378) and of
    causal training (Wang, Sankaran & Perdikaris 2022, arXiv:2203.07404), where vanilla PINNs
    fail. Interfaces of width ~ sqrt(2 d / r) (6e-3 at the defaults) form by t ~ 0.2 and then
    move slowly. Reference: our ETDRK4 Fourier pseudo-spectral solver (Kassam & Trefethen 2005),
    cached; see :func:`solve_reference`.
    """

    d: float = param(1e-4, low=1e-5, high=1e-1, doc="diffusion coefficient")
    r: float = param(5.0, low=0.0, high=10.0, doc="reaction rate")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "xx")}
    equation = (
        "u_t - d u_xx + r u^3 - r u = 0,  x in [-1, 1] periodic,  t in [0, 1],  "
        "u(x, 0) = x^2 cos(pi x)"
    )
    evaluation_resolution = {"x": 512, "t": 201}

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(-1.0, 1.0, periodic=True), TimeDomain(0.0, 1.0))

    def initial_condition(self, x):
        return {"u": x[:, 0] ** 2 * torch.cos(math.pi * x[:, 0])}

    def residual(self, f):
        u = f["u"]
        return {"allen_cahn": f.d("u", "t") - self.d * f.d("u", "xx") + self.r * (u**3 - u)}

    def reference_settings(self) -> dict:
        """Grid and time steps of the reference solve (part of its cache key).

        Fourier modes decay like exp(-pi^2 m delta / 2) across a tanh interface of width
        delta = sqrt(2 d / r) on this period-2 domain; n is the smallest power of two (>= 256)
        whose highest mode is below 1e-15 of the interface mode by that estimate. (The kink of
        u0 across the periodic boundary converges more slowly, algebraically; the reference
        states its measured error.)
        """
        delta = math.sqrt(2 * self.d / self.r) if self.r > 0 else 1.0
        m = 2 * 35.0 / (math.pi**2 * delta)  # exp(-35) ~ 6e-16
        n = max(256, 2 ** math.ceil(math.log2(2 * m)))
        return {
            "solver": "etdrk4_fourier",
            "version": 1,
            "n": n,
            "n_steps": (N_SNAPSHOTS - 1) * STEPS_PER_SNAPSHOT,
            "save_every": STEPS_PER_SNAPSHOT,
        }

    def reference(self) -> GridReference:
        return _reference(self)


def solve_reference(
    u0: np.ndarray, d: float, r: float, t_end: float, n_steps: int, save_every: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """ETDRK4 Fourier solve of u_t = d u_xx + r (u - u^3) on [-1, 1) periodic.

    ``u0`` holds the initial values on the n nodes -1 + 2 i / n. The linear part L = r - d k^2
    is exact; the cubic term is explicit and evaluated pseudo-spectrally without dealiasing (at
    the reference resolution the top modes are below 1e-6 of the largest at t = 0, from the
    kink of u0 across the periodic boundary, and at round-off once it has smoothed out).
    Returns (times, snapshots (nt, n)).
    """
    n = u0.shape[-1]
    k = math.pi * torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)  # period 2
    L = r - d * k**2

    def N(u_hat: torch.Tensor, t: float) -> torch.Tensor:
        u = torch.fft.irfft(u_hat, n=n)
        return -r * torch.fft.rfft(u**3)

    u_hat0 = torch.fft.rfft(torch.as_tensor(u0, dtype=torch.float64))
    times, snaps = etdrk4.integrate(u_hat0, L, N, 0.0, t_end, n_steps, save_every)
    return times.numpy(), torch.fft.irfft(snaps, n=n).numpy()


def _grid(n: int) -> np.ndarray:
    return -1.0 + 2.0 * np.arange(n) / n


def _compute(problem: AllenCahn, settings: dict) -> dict[str, np.ndarray]:
    n, steps, every = settings["n"], settings["n_steps"], settings["save_every"]

    def run(n: int, steps: int, every: int):
        x = _grid(n)
        return solve_reference(x**2 * np.cos(math.pi * x), problem.d, problem.r, 1.0, steps, every)

    times, u = run(n, steps, every)
    # error estimates by Richardson extrapolation, max over nodes and snapshots:
    # time, from a run at twice the step (ETDRK4: order 4)
    _, coarse_t = run(n, steps // 2, every // 2)
    time_error = float(np.abs(u - coarse_t).max()) / (2**etdrk4.ORDER - 1)
    # space, from a run on half the grid. u0 is continuous but its slope jumps across the
    # periodic boundary (u0'(1) = -2, u0'(-1) = 2), so convergence in n is algebraic, second
    # order (measured) until diffusion and the reaction smooth the kink out (t ~ 0.5)
    _, coarse_x = run(n // 2, steps, every)
    space_error = np.abs(u[:, ::2] - coarse_x).max(axis=1) / (2**2 - 1)
    return {
        "t": times,
        "u": u,
        "time_error": np.float64(time_error),
        "space_error": np.float64(space_error.max()),
        "space_error_final": np.float64(space_error[-1]),
    }


@functools.lru_cache(maxsize=4)
def _reference(problem: AllenCahn) -> GridReference:
    settings = problem.reference_settings()
    arrays = load_or_compute(
        problem.name, problem.params(), settings, lambda: _compute(problem, settings)
    )
    n = settings["n"]
    ref = GridReference(
        {"x": _grid(n), "t": arrays["t"]},
        {"u": arrays["u"].T},
        (True, False),
        description=(
            f"ETDRK4 Fourier pseudo-spectral solver (Kassam & Trefethen 2005), {n}-point grid, "
            f"{settings['n_steps']} steps of {1 / settings['n_steps']:.2g}; "
            f"{len(arrays['t'])} snapshots, cubic interpolation in x and t"
        ),
        accuracy="",
    )
    ref.accuracy = (
        f"on grid nodes and snapshot times: time-step error ~{float(arrays['time_error']):.1e} "
        f"(Richardson on 2 dt), spatial error ~{float(arrays['space_error']):.1e} (Richardson "
        f"on n/2; largest early, near x = +-1 where u0 has a kink; "
        f"~{float(arrays['space_error_final']):.1e} at t = 1); off the nodes add the cubic "
        f"interpolation error ~{ref.interpolation_error_estimate():.1e} "
        f"(estimated)"
    )
    return ref
