"""Decaying 2D turbulence on the unit torus: Kolmogorov flow's equations without the forcing, the
Navier-Stokes case of Chalapathi, Du & Krishnapriyan (ICLR 2024, PI-HC-MoE)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems.base import check_simulation_input, param
from pdekit.problems.navier_stokes import kolmogorov
from pdekit.problems.navier_stokes.kolmogorov import CFL_DT, Kolmogorov
from pdekit.problems.references import GridReference
from pdekit.problems.references import spectral_ns as sns
from pdekit.problems.registry import register

#: reference grid: 128^2 down to nu = 1e-4 (the Kolmogorov reference's grid there, whose forced
#: flow to t = 10 is the more demanding), 256^2 below
REFERENCE_CELLS = ((1e-4, 128), (0.0, 256))


@register("navier_stokes/decaying_turbulence")
@dataclass(frozen=True)
class DecayingTurbulence(Kolmogorov):
    """Unforced 2D Navier-Stokes in vorticity form on the unit torus: decaying turbulence.

        w_t + u w_x + v w_y - nu (w_xx + w_yy) = 0
        u_x + v_y = 0
        w - (v_x - u_y) = 0

    on [0, 1)^2 periodic, t in [0, t_end]; u, v from the stream function, -lap psi = w,
    u = psi_y, v = -psi_x. The paper's setting is the default: nu = 1e-4, T = 5.

    Everything but the forcing is :class:`~pdekit.problems.navier_stokes.kolmogorov.Kolmogorov`'s:
    the fields (u, v, w), the state ``w`` at the nodes of a periodic n x n grid, :meth:`complete`
    (velocity from vorticity, spectrally: a linear map, ``complete_is_linear``), the
    pseudo-spectral :meth:`simulate` (here with zero forcing), the cached reference.

    Deviation from the paper (labelled): the initial vorticity is the FNO benchmark's Gaussian
    random field (alpha = 2.5, tau = 7;
    :func:`~pdekit.problems.navier_stokes.kolmogorov.initial_modes`), the one pdekit's
    Kolmogorov flow uses; the paper's code draws it from a GRF with a periodic kernel of length
    scale 0.8, which we have not reproduced.
    """

    nu: float = param(1e-4, low=1e-5, high=1e-2, doc="kinematic viscosity")
    seed: int = param(0, low=0, high=2**32 - 1, doc="seed of the initial Gaussian random field")
    t_end: float = param(5.0, low=0.0, high=50.0, low_open=True, doc="final time")

    #: :meth:`complete` is linear in the state (hard constraints expand u, v in the basis)
    complete_is_linear: ClassVar[bool] = True
    equation = (
        "w_t + u w_x + v w_y = nu lap w,  u_x + v_y = 0,  w = v_x - u_y  on [0, 1)^2 periodic, "
        "t in [0, t_end]; w(., 0) a Gaussian random field (alpha = 2.5, tau = 7)"
    )

    def forcing_term(self, f):
        """No forcing: Kolmogorov's residual without its forcing term."""
        return 0.0

    def reference_settings(self) -> dict:
        """Kolmogorov's settings on this problem's grid (part of the reference's cache key)."""
        n = next(cells for nu, cells in REFERENCE_CELLS if self.nu >= nu)
        n_snap = max(3, math.ceil(self.t_end * kolmogorov.SNAPSHOTS_PER_TIME))
        per_snap = 2 * math.ceil((self.t_end / n_snap) / (2 * CFL_DT / n))
        base = super().reference_settings()
        return {**base, "n": n, "n_steps": n_snap * per_snap, "save_every": per_snap,
                "forcing": "none"}  # fmt: skip

    def reference(self) -> GridReference:
        return kolmogorov._reference(self)

    def simulate(
        self, initial_states, grid: Grid, times, *, max_dt: float | None = None
    ) -> dict[str, np.ndarray]:
        """Vorticity trajectories ``{"w": float64 (B, len(times), n, n)}`` from ``{"w": (B, n,
        n)}`` at the nodes of a periodic square ``grid`` (n even), by the pseudo-spectral
        solver without forcing; the time step and its bound as in Kolmogorov's
        :meth:`~pdekit.problems.navier_stokes.kolmogorov.Kolmogorov.simulate`."""
        states, times = check_simulation_input(self, initial_states, grid, times)
        nx, ny = sns.check_grid(grid)
        if nx != ny:
            raise ParameterError(f"{self.name} simulates on square n x n grids; got {nx} x {ny}")
        steps = sns.steps_per_interval(times, CFL_DT / nx if max_dt is None else max_dt)
        sol = sns.solve(torch.as_tensor(states["w"]), grid, self.nu, times, steps)
        if sol.max_cfl > sns.MAX_CFL:
            raise FloatingPointError(
                f"CFL number {sol.max_cfl:.2f} exceeds {sns.MAX_CFL} ({self}); "
                "pass a smaller max_dt"
            )
        return {"w": sol.w}
