"""The Allen-Cahn reaction-diffusion benchmark of the causal-PINN paper."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries import Grid, Interval, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, check_simulation_input, param
from pdekit.problems.references import GridReference, etdrk4, load_or_compute
from pdekit.problems.registry import register
from pdekit.progress import progress_bar

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
    cached; see :meth:`simulate`.
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

    def simulate(
        self, initial_states: Mapping[str, np.ndarray], grid, times: np.ndarray
    ) -> dict[str, np.ndarray]:
        """ETDRK4 Fourier trajectories of a batch of initial states (float64).

        ``initial_states["u"]`` (B, n) holds values on the nodes -1 + 2 i / n of a periodic
        :class:`~pdekit.geometries.Grid` over [-1, 1). The time step is the reference's,
        1 / ``reference_settings()["n_steps"]``, or shorter: each interval between consecutive
        ``times`` is split into the fewest equal steps no longer than it, so every output time
        is landed on exactly; non-uniform output times are allowed, each interval then having
        its own step (error per unit time O(step^4), so an interval shorter than the reference
        step is only more accurate). The spatial resolution is the grid's: the reference uses
        n = ``reference_settings()["n"]``. A tqdm progress bar appears once a run has taken
        2 s. Returns ``{"u": (B, len(times), n)}``.
        """
        states, times = check_simulation_input(self, initial_states, grid, times)
        u = _integrate(states["u"], times, self.d, self.r, _max_step(self.reference_settings()))
        if not np.all(np.isfinite(u)):
            raise ParameterError(
                "the ETDRK4 run blew up (non-finite values): its cubic term is explicit, and "
                f"the initial states reach |u0| = {np.abs(states['u']).max():.3g} (the "
                "equation's maximum principle keeps |u| <= max(1, max |u0|))"
            )
        return {"u": u}


def _nonlinear(r: float, n: int):
    def N(u_hat: torch.Tensor, t: float) -> torch.Tensor:
        return -r * torch.fft.rfft(torch.fft.irfft(u_hat, n=n) ** 3)

    return N


def _integrate(
    u0: np.ndarray, times: np.ndarray, d: float, r: float, max_step: float
) -> np.ndarray:
    """ETDRK4 Fourier solve of u_t = d u_xx + r (u - u^3) on [-1, 1) periodic.

    ``u0`` (B, n) holds initial values on the n nodes -1 + 2 i / n. The linear part
    L = r - d k^2 is exact; the cubic term is explicit and evaluated pseudo-spectrally without
    dealiasing (at the reference resolution the top modes are below 1e-6 of the largest at
    t = 0, from the kink of u0 across the periodic boundary, and at round-off once it has
    smoothed out). Each interval between consecutive output ``times`` is split into the fewest
    equal steps no longer than ``max_step``, so every output time is landed on exactly and
    non-uniform output times are allowed (each interval keeps its own step; one set of ETDRK4
    coefficients per distinct step). A progress bar follows :func:`pdekit.progress.progress_bar`.
    Returns u (B, len(times), n), float64.
    """
    u0 = torch.as_tensor(np.asarray(u0, dtype=np.float64))
    n = u0.shape[-1]
    k = math.pi * torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)  # period 2
    L = r - d * k**2
    N = _nonlinear(r, n)
    steps = [max(1, math.ceil(dt / max_step - 1e-9)) for dt in np.diff(times)]
    coefficients: dict[float, etdrk4.Coefficients] = {}
    v = torch.fft.rfft(u0)
    out = [u0]
    with progress_bar(sum(steps), unit="step", desc="allen_cahn ETDRK4") as bar:
        for t0, t1, m in zip(times[:-1], times[1:], steps):
            h = (t1 - t0) / m
            if h not in coefficients:
                coefficients[h] = etdrk4.coefficients(L, h)
            for j in range(m):
                v = etdrk4.step(v, t0 + j * h, N, coefficients[h])
            out.append(torch.fft.irfft(v, n=n))
            bar.update(m)
    return torch.stack(out, dim=-2).numpy()


def _grid(n: int) -> np.ndarray:
    return -1.0 + 2.0 * np.arange(n) / n


def _compute(problem: AllenCahn, settings: dict) -> dict[str, np.ndarray]:
    n = settings["n"]
    times = _snapshot_times(settings)

    def initial(n: int) -> np.ndarray:  # u0 = x^2 cos(pi x) on the n nodes, batch of one
        x = _grid(n)
        return (x**2 * np.cos(math.pi * x))[None]

    def run(n: int) -> np.ndarray:
        grid = Grid.on(problem.domain().space, n)
        return problem.simulate({"u": initial(n)}, grid, times)["u"][0]

    u = run(n)
    # error estimates by Richardson extrapolation, max over nodes and snapshots:
    # time, from a run at twice the step (ETDRK4: order 4)
    coarse_t = _integrate(initial(n), times, problem.d, problem.r, 2 * _max_step(settings))[0]
    time_error = float(np.abs(u - coarse_t).max()) / (2**etdrk4.ORDER - 1)
    # space, from a run on half the grid. u0 is continuous but its slope jumps across the
    # periodic boundary (u0'(1) = -2, u0'(-1) = 2), so convergence in n is algebraic, second
    # order (measured) until diffusion and the reaction smooth the kink out (t ~ 0.5)
    coarse_x = run(n // 2)
    space_error = np.abs(u[:, ::2] - coarse_x).max(axis=1) / (2**2 - 1)
    return {
        "t": times,
        "u": u,
        "time_error": np.float64(time_error),
        "space_error": np.float64(space_error.max()),
        "space_error_final": np.float64(space_error[-1]),
    }


def _snapshot_times(settings: dict) -> np.ndarray:
    """The reference's snapshot times: every ``save_every`` steps of 1 / ``n_steps`` on [0, 1]."""
    return np.linspace(0.0, 1.0, settings["n_steps"] // settings["save_every"] + 1)


def _max_step(settings: dict) -> float:
    """The longest ETDRK4 step :meth:`AllenCahn.simulate` takes: the reference's step."""
    return 1.0 / settings["n_steps"]


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
