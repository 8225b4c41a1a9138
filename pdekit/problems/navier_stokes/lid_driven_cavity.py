"""The lid-driven cavity: steady Navier-Stokes in the unit square driven by a sliding lid."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Rectangle
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.navier_stokes.equations import STEADY_DERIVATIVES, navier_stokes_2d
from pdekit.problems.references import GridReference, cavity, load_or_compute
from pdekit.problems.registry import register

#: distances from the lid corners beyond which the reference states its error
CORNER_RADII = (0.1, 0.2)


def cavity_boundary_conditions() -> list[BC]:
    """u = (1, 0) on the lid (tag ``top``), u = 0 on the other walls of the unit square."""

    def lid(points):
        return {"u": torch.ones_like(points[:, 0]), "v": torch.zeros_like(points[:, 0])}

    def wall(points):
        zero = torch.zeros_like(points[:, 0])
        return {"u": zero, "v": zero}

    return [
        BC("dirichlet", ("u", "v"), lid, tag="top"),
        *(BC("dirichlet", ("u", "v"), wall, tag=t) for t in ("bottom", "left", "right")),
    ]


@register("navier_stokes/lid_driven_cavity")
@dataclass(frozen=True)
class LidDrivenCavity(Problem):
    """Steady incompressible Navier-Stokes in [0, 1]^2 with the lid y = 1 moving at u = 1.

        u u_x + v u_y + p_x - (u_xx + u_yy)/re = 0
        u v_x + v v_y + p_y - (v_xx + v_yy)/re = 0
        u_x + v_y = 0

    u = 1, v = 0 on the lid; u = v = 0 on the other walls. The lid velocity jumps at the two top
    corners, where the vorticity and the pressure are singular (p ~ 1/r): pointwise checks and
    residuals near them measure the singularity, not the solution. Walls on every side fix the
    pressure only up to a constant: the reference's is fixed by p(0.5, 0.5) = 0, and a solver's
    is compared after matching that constant (``gauge_fields``). Benchmark data: Ghia, Ghia &
    Shin (1982), J. Comput. Phys. 48:387-411.
    Reference: our steady vorticity-streamfunction Newton solver
    (:mod:`~pdekit.problems.references.cavity`), cached.
    """

    re: float = param(100.0, low=100.0, high=3200.0, doc="Reynolds number (lid speed x side / nu)")

    coordinates = ("x", "y")
    fields = ("u", "v", "p")
    derivatives = STEADY_DERIVATIVES
    equation = (
        "u.grad(u) + grad p = (1/re) lap u,  div u = 0  on [0, 1]^2; u = (1, 0) on the lid "
        "y = 1, u = 0 on the other walls; p(0.5, 0.5) = 0"
    )
    evaluation_resolution = {"x": 129, "y": 129}
    gauge_fields = ("p",)  # nothing in the equations or conditions sets its constant

    def domain(self) -> Rectangle:
        return Rectangle((0.0, 0.0), (1.0, 1.0))

    def boundary_conditions(self) -> list[BC]:
        return cavity_boundary_conditions()

    def residual(self, f):
        return navier_stokes_2d(f, 1.0 / self.re, unsteady=False)

    def reference_settings(self) -> dict:
        """Grid of the reference solve (part of its cache key): 128 cells up to re = 400, 256
        above; grid sequencing starts from 64 cells (128 above re = 1000, where 64 cells are too
        coarse for central differences to converge)."""
        return {
            "solver": "cavity_vorticity_streamfunction_newton",
            "version": 1,
            "n": 128 if self.re <= 400 else 256,
            "coarsest": 64 if self.re <= 1000 else 128,
            "tol": 1e-10,
        }

    def reference(self) -> GridReference:
        return _reference(self)


def _compute(problem: LidDrivenCavity, settings: dict) -> dict[str, np.ndarray]:
    sol = cavity.solve(
        problem.re, settings["n"], tol=settings["tol"], coarsest=settings["coarsest"]
    )
    out = {"x": sol.x, "u": sol.u, "v": sol.v, "p": sol.p}
    for radius in CORNER_RADII:
        for k, e in sol.error_estimate(exclude=radius).items():
            out[f"error_{k}_r{radius}"] = np.float64(e)
    return out


@functools.lru_cache(maxsize=4)
def _reference(problem: LidDrivenCavity) -> GridReference:
    settings = problem.reference_settings()
    arrays = load_or_compute(
        problem.name, problem.params(), settings, lambda: _compute(problem, settings)
    )
    n = settings["n"]

    def err(radius: float) -> str:
        e = [float(arrays[f"error_{k}_r{radius}"]) for k in ("u", "v", "p")]
        return f"~{e[0]:.1e} (u), {e[1]:.1e} (v), {e[2]:.1e} (p) farther than {radius}"

    return GridReference(
        {"x": arrays["x"], "y": arrays["x"]},
        {k: arrays[k] for k in ("u", "v", "p")},
        (False, False),
        description=(
            f"steady vorticity-streamfunction solver, 2nd-order central differences with "
            f"Jensen wall vorticity, Newton's method, {n}x{n} cells; cubic interpolation"
        ),
        accuracy=(
            f"discretisation error (Richardson on n/2, max over nodes) {err(CORNER_RADII[0])} "
            f"and {err(CORNER_RADII[1])} from the lid corners, larger closer to them (u jumps "
            f"and p is singular there); the solver matches the Re = 100 centreline table of "
            f"Ghia et al. (1982) to within 0.01 (tested)"
        ),
    )
