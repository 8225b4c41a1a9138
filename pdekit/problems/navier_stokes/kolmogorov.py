"""Forced 2D turbulence on the unit torus: the Navier-Stokes benchmark of the FNO paper."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.core import spectral
from pdekit.errors import ParameterError
from pdekit.geometries import Grid, Rectangle, SpaceTime, TimeDomain
from pdekit.problems.base import Problem, check_simulation_input, param
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
    """Complex mode amplitudes c[m_x + K, m_y + K] of the initial vorticity, ``|m_x|, |m_y| <= K``.

    The FNO data generator's field (Li et al. 2021, ``GaussianRF(2, s, alpha=2.5, tau=7)``):
    w0(x) = Re sum_m c_m exp(2 pi i m.x), c_m = sqrt(2) sigma ``(4 pi^2 |m|^2 + tau^2)^(-alpha/2)``
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


def initial_vorticity(seed: int, n: int) -> np.ndarray:
    """The initial vorticity of :func:`initial_modes` at the nodes (i/n, j/n) of an n x n grid.

    Exact point samples for any n: the modes are summed by one inverse FFT after folding m into
    m mod n (for n <= 2 K = 64 the highest modes alias onto lower grid modes, exactly as point
    samples do; the solver's 2/3 rule then drops them with every other mode ``|m| >= n/3``).
    """
    K = GRF_MODES
    c = np.zeros((n, n), dtype=complex)
    m = np.arange(-K, K + 1) % n
    np.add.at(c, np.ix_(m, m), initial_modes(seed))
    return np.real(np.fft.ifft2(c)) * n * n


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

    State (what a grid learner predicts): ``w`` at the nodes of a periodic n x n grid;
    :meth:`complete` derives u, v, and :meth:`simulate` integrates a batch of initial
    vorticities with the pseudo-spectral solver.

    The FNO evolves to T = 50 (nu = 1e-3), 30 (1e-4) and 20 (1e-5); the default t_end = 10 keeps
    the reference cheap (measured with one thread on the 2-core development machine, both runs
    of the Richardson estimate: 1.3 s at nu = 1e-3 and 1.2 s at 1e-4 on 128^2, 8.9 s at 1e-5 on
    256^2). The reference is our pseudo-spectral solver
    (:mod:`~pdekit.problems.references.spectral_ns`) through :meth:`simulate`, cached.
    """

    nu: float = param(1e-3, choices=(1e-3, 1e-4, 1e-5), doc="kinematic viscosity")
    seed: int = param(0, low=0, high=2**32 - 1, doc="seed of the initial Gaussian random field")
    t_end: float = param(10.0, low=0.0, high=50.0, low_open=True, doc="final time")

    coordinates = ("x", "y", "t")
    fields = ("u", "v", "w")
    state_fields = ("w",)
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
        K = GRF_MODES
        m = torch.arange(-K, K + 1, dtype=torch.float64, device=x.device)
        c = torch.as_tensor(initial_modes(self.seed), device=x.device)
        mu, mv = spectral.velocity_multipliers(2 * math.pi * m[:, None], 2 * math.pi * m[None, :])
        xd = x.to(torch.float64)
        ex = torch.exp(2j * math.pi * xd[:, :1] * m)  # (n, 2K+1)
        ey = torch.exp(2j * math.pi * xd[:, 1:2] * m)
        return {
            name: torch.real(((ex @ modes) * ey).sum(dim=1)).to(x.dtype)
            for name, modes in (("u", mu * c), ("v", mv * c), ("w", c))
        }

    def forcing_term(self, f):
        """The forcing of the vorticity equation at the fields' points (0 where a subclass has
        none)."""
        return forcing(f.coord("x"), f.coord("y"))

    def residual(self, f):
        u, v = f["u"], f["v"]
        return {
            "vorticity": f.d("w", "t")
            + u * f.d("w", "x")
            + v * f.d("w", "y")
            - self.nu * f.laplacian("w")
            - self.forcing_term(f),
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

    def grid(self, n: int) -> Grid:
        """The periodic n x n grid on [0, 1)^2 (:meth:`simulate` runs on it, state at nodes)."""
        return Grid.on(self.domain().space, n)

    def complete(self, state, grid) -> dict[str, torch.Tensor]:
        """(u, v, w) from the vorticity ``state["w"]`` (torch, ``(*batch, n, n)`` at the nodes
        of a periodic ``grid``): -lap psi = w, u = psi_y, v = -psi_x, spectrally
        (:func:`pdekit.core.spectral.velocity_from_vorticity`; the mean of w is discarded)."""
        w = super().complete(state, grid)["w"]
        sns.check_grid(grid)
        u, v = spectral.velocity_from_vorticity(w, tuple(float(s) for s in grid.hi - grid.lo))
        return {"u": u, "v": v, "w": w}

    def simulate(
        self, initial_states, grid: Grid, times, *, max_dt: float | None = None
    ) -> dict[str, np.ndarray]:
        """Vorticity trajectories from a batch of initial vorticities (pseudo-spectral solver).

        Parameters
        ----------
        initial_states:
            ``{"w": (B, n, n)}`` at the nodes of ``grid``.
        grid:
            The periodic grid on [0, 1)^2 with n x n cells, n even (:meth:`grid`). Each initial
            field is projected onto the grid's dealiased modes ``|m| < n/3`` and its mean removed.
        times:
            Output times, increasing, starting at 0.
        max_dt:
            Bound on the internal time step; default ``CFL_DT / n``, the module's advective CFL
            budget: CFL number 2.56 ``max(|u|, |v|)``, 0.27 for this flow (max speed 0.104-0.107
            over seeds 0-3, nu = 1e-3, t <= 10, on 128^2). Each interval between
            consecutive output times is split into the fewest equal ETDRK4 steps within the
            bound (:func:`~pdekit.problems.references.spectral_ns.steps_per_interval`), so
            every output time is landed on exactly. With non-uniform ``times`` the step size
            differs between intervals (each within the bound); the time error is then set by the
            largest step, and each distinct size costs one more set of ETDRK4 coefficients.

        Returns
        -------
        ``{"w": float64 (B, len(times), n, n)}``.

        Raises
        ------
        FloatingPointError
            If the solution blows up, or the advective CFL number exceeds
            :data:`~pdekit.problems.references.spectral_ns.MAX_CFL` (pass a smaller
            ``max_dt``).
        """
        states, times = check_simulation_input(self, initial_states, grid, times)
        nx, ny = sns.check_grid(grid)
        if nx != ny:
            raise ParameterError(f"{self.name} simulates on square n x n grids; got {nx} x {ny}")
        steps = sns.steps_per_interval(times, CFL_DT / nx if max_dt is None else max_dt)
        x, y = grid.axis(0, "node"), grid.axis(1, "node")
        f = torch.as_tensor(forcing(x[:, None], y[None, :]))
        sol = sns.solve(torch.as_tensor(states["w"]), grid, self.nu, times, steps, forcing=f)
        if sol.max_cfl > sns.MAX_CFL:
            raise FloatingPointError(
                f"CFL number {sol.max_cfl:.2f} exceeds {sns.MAX_CFL} ({self}); "
                "pass a smaller max_dt"
            )
        return {"w": sol.w}


def _compute(problem: Kolmogorov, settings: dict) -> dict[str, np.ndarray]:
    n, n_steps, every = settings["n"], settings["n_steps"], settings["save_every"]
    grid = problem.grid(n)
    h = problem.t_end / n_steps
    times = np.arange(0, n_steps + 1, every) * h
    initial = {"w": initial_vorticity(problem.seed, n)[None]}
    fine = problem.simulate(initial, grid, times, max_dt=h)["w"][0]
    # Richardson estimate of the time-stepping error: the same run at twice the step (the
    # settings make save_every even, so both runs record the same snapshot times)
    coarse = problem.simulate(initial, grid, times, max_dt=2 * h)["w"][0]
    time_error = float(np.abs(fine - coarse).max()) / (2**sns.TIME_ORDER - 1)
    speed = problem.complete({"w": torch.as_tensor(fine)}, grid)
    max_speed = max(float(speed["u"].abs().max()), float(speed["v"].abs().max()))
    return {
        "t": times,
        "w": fine,
        "time_error": np.float64(time_error),
        "spectral_tail": np.float64(_spectral_tail(fine)),
        # at the snapshots (simulate checks the CFL number during the run)
        "max_cfl": np.float64(max_speed * h * n),
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
    n = settings["n"]
    fields = problem.complete({"w": torch.as_tensor(arrays["w"])}, problem.grid(n))
    axis = np.arange(n) / n
    ref = GridReference(
        {"x": axis, "y": axis, "t": arrays["t"]},
        {k: np.moveaxis(a.numpy(), 0, -1) for k, a in fields.items()},
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
