"""PDEBench's 1D diffusion-sorption problem: Freundlich-retarded diffusion, FV reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Grid, Interval, SpaceTime, TimeDomain
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.references.cache import load_or_compute
from pdekit.problems.references.fv_gpme import (
    boundary_face_values,
    problem_boundary,
    simulate_gpme,
)
from pdekit.problems.references.grid import GridReference
from pdekit.problems.registry import register

#: PDEBench's guard: R uses (u + EPS)^(n_f - 1), finite at u = 0
EPS = 1e-6
#: reference solver settings (bump "version" when the solver's output changes): output times
#: every second, and 201 more at 20 (k/200)^2 s, dense where the initial jump at x = 0 spreads
#: like sqrt(t)
REFERENCE = {
    "solver": "fv_gpme",
    "version": 1,
    "cells": 1024,
    "outputs": 501,
    "early_outputs": 201,
    "rtol": 1e-7,
}


def reference_times() -> np.ndarray:
    """Output times of the reference solution."""
    early = 20.0 * np.linspace(0.0, 1.0, REFERENCE["early_outputs"]) ** 2
    return np.unique(np.concatenate([np.linspace(0.0, 500.0, REFERENCE["outputs"]), early]))


@register("porous_medium/diffusion_sorption")
@dataclass(frozen=True)
class DiffusionSorption(Problem):
    """u_t = D / R(u) u_xx, x in (0, 1), t in (0, 500]: diffusion retarded by sorption.

    PDEBench's 1D diffusion-sorption benchmark (Takamoto et al., NeurIPS 2022 Datasets and
    Benchmarks; generator ``pdebench/data_gen/src/sim_diff_sorp.py``), as used by PI-HC-MoE
    (Chalapathi et al., ICLR 2024). The Freundlich isotherm gives the retardation factor

        R(u) = 1 + ((1 - phi) / phi) rho_s k_f n_f (u + 1e-6)^(n_f - 1)

    (the 1e-6 is PDEBench's guard, which keeps R finite at u = 0; it changes R by < 2e-4
    relative for u >= 1e-3). Equivalently (u + S(u))_t = D u_xx with the sorbed concentration
    S(u) = ((1 - phi)/phi) rho_s k_f ((u + 1e-6)^n_f - 1e-6^n_f): the total concentration
    u + S(u) (:meth:`storage`) is the conserved quantity, not u, so the problem has no
    conservation form in u (``flux`` is None).

    Initial condition, as PDEBench's generator: the constant u0 = U(0, 0.2) drawn by
    ``np.random.seed(seed); np.random.uniform(0, 0.2)`` -- ``seed`` is PDEBench's sample index
    (seed 0: u0 = 0.1097627).

    Boundary conditions: u(0, t) = 1 and, at x = 1, the outflow (Cauchy) condition
    u(1, t) = -D u_x(1, t): the diffusive flux out equals u. This is what PDEBench's generator
    implements (its ghost value D (c[-2] - c[-1]) / dx); the paper writes u = D u_x, but with
    that sign the condition u_x = u / D feeds an exponentially growing boundary mode (tanh(L) =
    D L has a root L ~ 1/D, growth rate ~ 1/(R D) per second), so it cannot be meant. With
    n = +x the outward normal at x = 1 it is the Robin condition u + D du/dn = 0 (a = 1, b = D,
    value 0), declared once in :meth:`boundary_conditions`, where every solver reads it.

    Reference: :meth:`simulate`, our finite-volume solver
    (:func:`~pdekit.problems.references.fv_gpme.simulate_gpme`; 1024 cells like PDEBench's data,
    capacity form R(u) u_t = D u_xx, second-order Robin boundary, RKC2 with rtol 1e-7), cached,
    interpolated by a :class:`GridReference`.
    """

    D: float = param(5e-4, low=0.0, high=1.0, low_open=True, doc="effective diffusivity")
    porosity: float = param(
        0.29, low=0.0, high=1.0, low_open=True, high_open=True, doc="porosity phi"
    )
    rho_s: float = param(2880.0, low=0.0, high=1e5, low_open=True, doc="bulk density rho_s")
    k_f: float = param(3.5e-4, low=0.0, high=1.0, doc="Freundlich coefficient k_f")
    n_f: float = param(0.874, low=0.0, high=1.0, low_open=True, doc="Freundlich exponent n_f")
    seed: int = param(0, low=0, high=2**32 - 1, doc="PDEBench sample index (sets u0)")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}  # u_x: the Robin condition at x = 1
    equation = (
        "u_t = D / R(u) u_xx,  R(u) = 1 + ((1-phi)/phi) rho_s k_f n_f u^(n_f-1),  x in (0, 1),  "
        "t in (0, 500],  u(x, 0) = u0 ~ U(0, 0.2),  u(0, t) = 1,  u(1, t) = -D u_x(1, t)"
    )
    evaluation_resolution = {"x": 1024, "t": 101}

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 500.0))

    @property
    def u0(self) -> float:
        """PDEBench's initial value for sample ``seed``."""
        return float(np.random.RandomState(self.seed).uniform(0.0, 0.2))

    @property
    def sorption(self) -> float:
        """((1 - phi) / phi) rho_s k_f."""
        return (1.0 - self.porosity) / self.porosity * self.rho_s * self.k_f

    def retardation(self, u):
        """R(u) = 1 + sorption n_f (max(u, 0) + 1e-6)^(n_f - 1), numpy or torch."""
        if isinstance(u, torch.Tensor):
            base = u.clamp(min=0.0) + EPS
        else:
            base = np.maximum(np.asarray(u, dtype=float), 0.0) + EPS
        return 1.0 + self.sorption * self.n_f * base ** (self.n_f - 1.0)

    def storage(self, u):
        """Total concentration u + S(u) (its u-derivative is R(u)): the conserved quantity."""
        base = np.maximum(np.asarray(u, dtype=float), 0.0) + EPS
        return u + self.sorption * (base**self.n_f - EPS**self.n_f)

    def initial_condition(self, x):
        return {"u": torch.full_like(x[:, 0], self.u0)}

    def boundary_conditions(self) -> list[BC]:
        def one(p):
            return {"u": torch.ones_like(p[:, 0])}

        def zero(p):
            return {"u": torch.zeros_like(p[:, 0])}

        # x = 1: u + D du/dn = 0, the outflow condition u(1, t) = -D u_x(1, t)
        return [
            BC("dirichlet", ("u",), one, "xmin"),
            BC("robin", ("u",), zero, "xmax", a=1.0, b=self.D),
        ]

    def residual(self, f):
        return {
            "diffusion_sorption": f.d("u", "t") - self.D / self.retardation(f["u"]) * f.d("u", "xx")
        }

    # -- reference --------------------------------------------------------------------------------
    state_location = "center"

    def simulate(self, initial_states, grid, times, *, rtol: float = REFERENCE["rtol"]):
        """Finite-volume trajectories from a batch of initial cell values
        (:func:`~pdekit.problems.references.fv_gpme.simulate_gpme`): capacity form
        R(u) u_t = D u_xx (k = D, K(u) = D u, c = R), the boundary conditions of
        :meth:`boundary_conditions`, RKC2 with tolerances ``rtol`` and ``rtol / 100``."""
        return simulate_gpme(
            self,
            initial_states,
            grid,
            times,
            k=lambda u: np.full_like(u, self.D),
            kirchhoff=lambda u: self.D * u,
            capacity=self.retardation,
            rtol=rtol,
        )

    def _compute_reference(self) -> dict[str, np.ndarray]:
        cells = REFERENCE["cells"]
        times = reference_times()
        grid = Grid([0.0], [1.0], cells)
        u0 = np.full((1, cells), self.u0)
        u = self.simulate({"u": u0}, grid, times, rtol=REFERENCE["rtol"])["u"][0]
        # boundary values: the solver's face values (u = 1 at x = 0; the Robin face value at 1)
        faces = boundary_face_values(u, grid, problem_boundary(self, grid), times)
        left, right = faces["xmin"], faces["xmax"]
        left[0] = right[0] = self.u0  # t = 0: the initial condition
        x = np.concatenate([[0.0], grid.axis(0), [1.0]])
        u = np.concatenate([left[:, None], u, right[:, None]], axis=1).T  # (x, t)
        return {"x": x, "t": times, "u": u}

    def reference(self) -> GridReference:
        arrays = load_or_compute(self.name, self.params(), REFERENCE, self._compute_reference)
        return GridReference(
            {"x": arrays["x"], "t": arrays["t"]},
            {"u": arrays["u"]},
            (False, False),
            description=(
                f"finite volumes on {REFERENCE['cells']} cells (capacity form, second-order "
                f"Robin boundary), RKC2 rtol {REFERENCE['rtol']:g}, output every second plus "
                f"{REFERENCE['early_outputs']} times in [0, 20] s, cubic interpolation"
            ),
            accuracy=(
                "against 2048 cells: at most 2e-4 absolute (t ~ 1 s next to x = 0, where the "
                "initial jump diffuses in), below 1e-5 for t >= 20 s, 4e-7 on average; time "
                "interpolation below 1e-6 for t >= 0.5 s"
            ),
        )
