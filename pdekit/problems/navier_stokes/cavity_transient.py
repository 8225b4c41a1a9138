"""The lid-driven cavity started from rest: unsteady Navier-Stokes run to its steady state."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.geometries import Rectangle, SpaceTime, TimeDomain
from pdekit.problems import mac
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.navier_stokes.equations import UNSTEADY_DERIVATIVES, navier_stokes_2d
from pdekit.problems.navier_stokes.lid_driven_cavity import cavity_boundary_conditions
from pdekit.problems.references import GridReference, load_or_compute
from pdekit.problems.references.projection import ProjectionSolver, stable_dt
from pdekit.problems.registry import register

#: the lid speeds of the training scenes, as factors of the problem's lid speed
TRAINING_LID_RANGE = (0.5, 1.5)


@register("navier_stokes/cavity_transient")
@dataclass(frozen=True)
class CavityTransient(Problem):
    """Unsteady incompressible Navier-Stokes in [0, 1]^2, fluid at rest until the lid y = 1
    starts moving at u = 1 at t = 0 (an impulsive start):

        u_t + u u_x + v u_y + p_x - (u_xx + u_yy)/re = 0
        v_t + u v_x + v v_y + p_y - (v_xx + v_yy)/re = 0
        u_x + v_y = 0

    u = (1, 0) on the lid, 0 on the other walls, u = 0 at t = 0. The flow settles to the
    steady cavity flow (``navier_stokes/lid_driven_cavity``, Ghia et al. 1982) within a few
    tens of lid-passage times at re = 100. The pressure is fixed only up to a constant
    (``gauge_fields``).

    Reference: our projection solver (:mod:`~pdekit.problems.references.projection`, second
    order in space and time) on the same MAC cavity, 64 cells up to re = 200 and 128 above,
    snapshots every t_end / 200, cached; its steady state matches the steady Newton reference
    and Ghia et al. (tested in ``tests/problems/test_projection.py``).

    Grid time steppers (``neural_stagger``) read :meth:`mac_scene`: the cavity on a MAC layout
    with a ring of solid cells, and, given a generator, a training scene with a lid speed drawn
    from :data:`TRAINING_LID_RANGE` times this one.
    """

    re: float = param(100.0, low=10.0, high=1000.0, doc="Reynolds number (lid speed x side / nu)")
    t_end: float = param(
        10.0, low=0.0, high=1e3, low_open=True, doc="final time (lid-passage times)"
    )

    coordinates = ("x", "y", "t")
    fields = ("u", "v", "p")
    derivatives = UNSTEADY_DERIVATIVES
    equation = (
        "u_t + u.grad(u) + grad p = (1/re) lap u,  div u = 0  on [0, 1]^2, t in [0, t_end]; "
        "u = (1, 0) on the lid y = 1, 0 on the other walls; u = 0 at t = 0"
    )
    evaluation_resolution = {"x": 65, "y": 65, "t": 11}
    gauge_fields = ("p",)
    #: default grid of the time steppers: fluid cells per side (61 + 3 solid = a 64 x 64 layout)
    stepper_cells = 61
    #: default time step of the time steppers (lid speed x dt / h = 3.05 on 61 cells)
    stepper_dt = 0.05

    def domain(self) -> SpaceTime:
        return SpaceTime(Rectangle((0.0, 0.0), (1.0, 1.0)), TimeDomain(0.0, self.t_end))

    def initial_condition(self, x):
        """At rest, but for the lid y = 1 itself, which moves already (the impulsive start: the
        boundary data win on the lid); at its two corners, where the lid meets the walls at
        rest, the mean of the two, 1/2 (the data jump there)."""
        zero = torch.zeros_like(x[:, 0])
        on_lid = x[:, 1] >= 1.0 - 1e-12
        corner = on_lid & ((x[:, 0] <= 1e-12) | (x[:, 0] >= 1.0 - 1e-12))
        u = torch.where(on_lid, torch.ones_like(zero), zero)
        return {"u": torch.where(corner, 0.5 * torch.ones_like(zero), u), "v": zero}

    def boundary_conditions(self) -> list[BC]:
        return cavity_boundary_conditions()

    def residual(self, f):
        return navier_stokes_2d(f, 1.0 / self.re, unsteady=True)

    def mac_scene(self, cells: int, rng: np.random.Generator | None = None) -> mac.MacScene:
        """The cavity on ``cells`` x ``cells`` fluid cells (lid speed 1); with ``rng``, a
        training scene whose lid speed is drawn uniformly from :data:`TRAINING_LID_RANGE`."""
        lid = 1.0 if rng is None else float(rng.uniform(*TRAINING_LID_RANGE))
        return mac.cavity_scene(cells, lid=lid)

    def reference_settings(self) -> dict:
        """The reference run (part of its cache key)."""
        return {
            "solver": "mac_projection_ab2",
            "version": 1,
            "cells": 64 if self.re <= 200 else 128,
            "snapshots": 201,
            "dt_fraction": 0.9,
        }

    def reference(self) -> GridReference:
        return _reference(self)


def _compute(problem: CavityTransient, settings: dict) -> dict[str, np.ndarray]:
    scene = mac.cavity_scene(settings["cells"])
    nu = 1.0 / problem.re
    dt = settings["dt_fraction"] * stable_dt(scene, nu, speed=1.0)
    times = np.linspace(0.0, problem.t_end, settings["snapshots"])
    zero = np.zeros(scene.grid.n)
    run = ProjectionSolver(scene, nu, dt).run(zero, zero, problem.t_end, times)
    nodes = mac.to_nodes(scene, run.u, run.v, run.p)
    sx, sy = mac.box_nodes(scene.grid, (0.0, 0.0), (1.0, 1.0))
    out = {k: np.moveaxis(v[:, sx, sy], 0, -1) for k, v in nodes.items()}
    out["x"] = scene.grid.axis(0, "node")[sx]
    out["t"] = times
    out["steps"] = np.int64(run.steps)
    return out


@functools.lru_cache(maxsize=4)
def _reference(problem: CavityTransient) -> GridReference:
    settings = problem.reference_settings()
    arrays = load_or_compute(
        problem.name, problem.params(), settings, lambda: _compute(problem, settings)
    )
    n = settings["cells"]
    return GridReference(
        {"x": arrays["x"], "y": arrays["x"], "t": arrays["t"]},
        {k: arrays[k] for k in ("u", "v", "p")},
        (False, False, False),
        description=(
            f"Chorin projection on the MAC cavity, {n}x{n} cells, Adams-Bashforth 2, "
            f"{int(arrays['steps'])} steps; values at the cell vertices, cubic interpolation"
        ),
        accuracy=(
            "second order in space and time; at re = 100 the steady state on 64 cells is "
            "within 2.3e-3 (u) and 1.5e-3 (v) of the 128-cell Newton reference (measured); the "
            "impulsive start makes the first snapshots the least accurate, and p is singular "
            "at the lid corners"
        ),
    )
