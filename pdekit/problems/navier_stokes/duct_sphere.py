"""Flow past a sphere in a square duct, periodic along it and driven by a body force: a 3D MAC
problem for grid time steppers."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries import Box, SpaceTime, TimeDomain
from pdekit.geometries.csg import Ball
from pdekit.problems import mac3d
from pdekit.problems.base import BC, Problem, param
from pdekit.problems.navier_stokes.equations import UNSTEADY_DERIVATIVES_3D, navier_stokes_3d
from pdekit.problems.references import GridReference, load_or_compute
from pdekit.problems.references.projection3d import ProjectionSolver3d, stable_dt3d
from pdekit.problems.registry import register

#: the duct: side of its square cross-section and length (the period along x): 32 cells of the
#: steppers' grid (13 cells across), so that the layout (32 x 16 x 16) splits into 2 x 2 x 2
#: pieces that a depth-3 U-Net can down-sample
SIDE = 1.0
LENGTH = 32 / 13
#: the sphere's centre and diameter
CENTRE, DIAMETER = (LENGTH / 2, 0.5, 0.5), 0.5
#: the training scenes' obstacles: spheres of diameter DIAMETER x these factors, centres
#: anywhere along x and up to this fraction of the side off the axis (the force is the
#: problem's: the physics loss reads it from the problem's residual)
TRAINING_DIAMETERS = (0.6, 1.2)
TRAINING_OFFSET = 0.15


@register("navier_stokes/duct_sphere")
@dataclass(frozen=True)
class DuctSphere(Problem):
    """Unsteady incompressible Navier-Stokes in 3D: a square duct [0, L] x [0, 1]^2, L = 32/13
    (2.46), periodic along x, with a sphere of diameter 0.5 centred at (L/2, 0.5, 0.5), driven
    from rest by a uniform body force f along x (a mean pressure gradient; density 1)::

        u_t + (u.grad) u + grad p - nu lap u = (f, 0, 0),   div u = 0

    no-slip on the four walls and the sphere, at rest at t = 0. The sphere is a solid at rest
    immersed in the duct (the domain is the whole duct; u = 0 inside the sphere, where the
    equations do not hold and the pressure means nothing), as grid solvers see it. The flow
    accelerates towards the steady flow through a periodic row of spheres in a duct: at the
    defaults (nu = 0.02, f = 1) the reference's bulk speed (flux / cross-section) is 0.710 at
    t = 2 and 0.820 at steady state (t >= 8; a sphere Reynolds number U D / nu = 20.5), its
    largest u 1.37 and 1.59 (measured on 13 cells across); without the sphere the duct's
    Poiseuille flow would reach a bulk speed f side^2 / (28.45 nu) = 1.76. The
    pressure is periodic and fixed only up to a constant (``gauge_fields``).

    Reference: our 3D projection solver (:mod:`~pdekit.problems.references.projection3d`,
    second order in space and time; the sphere a staircase of cells, first order at its
    surface) on the steppers' grid, 13 cells across (h = 1/13), snapshots every t_end / 40,
    values at the cell vertices (:func:`~pdekit.problems.mac3d.to_nodes`: velocity 0 at the
    vertices touching a solid cell).

    Grid time steppers (``neural_stagger``) read :meth:`mac_scene`: the duct on a 3D MAC layout
    (:func:`~pdekit.problems.mac3d.duct_scene`), and, given a generator, a training scene with
    a random sphere (:data:`TRAINING_DIAMETERS`, :data:`TRAINING_OFFSET`) under the problem's
    force.
    """

    nu: float = param(0.02, low=0.005, high=1.0, doc="kinematic viscosity")
    force: float = param(1.0, low=0.0, high=10.0, low_open=True, doc="body force along x")
    t_end: float = param(2.0, low=0.0, high=50.0, low_open=True, doc="final time")

    coordinates = ("x", "y", "z", "t")
    fields = ("u", "v", "w", "p")
    derivatives = UNSTEADY_DERIVATIVES_3D
    equation = (
        "u_t + u.grad(u) + grad p = nu lap u + (force, 0, 0),  div u = 0  in the duct "
        "[0, 32/13] x [0, 1]^2 (periodic in x) minus the ball |x - (16/13, 0.5, 0.5)| <= 0.25, "
        "t in [0, t_end]; u = 0 on the walls and the sphere; u = 0 at t = 0"
    )
    evaluation_resolution = {"x": 32, "y": 14, "z": 14, "t": 11}
    gauge_fields = ("p",)
    scene_only_geometry = (
        "the sphere is solid cells of the problem's MAC scene, not a boundary of its domain (the "
        "periodic duct): a solver sampling the domain would not see it"
    )
    #: default grid of the time steppers: fluid cells across the duct (h = 1/13, 6.5 cells per
    #: sphere diameter; the layout is 32 x 16 x 16)
    stepper_cells = 13
    #: default time step of the time steppers (the fastest u at t = 2, 1.37, moves 0.71 cells per
    #: step; 50 steps to the default horizon)
    stepper_dt = 0.04

    def sphere(self) -> Ball:
        return Ball(CENTRE, DIAMETER / 2, tag="sphere")

    def domain(self) -> SpaceTime:
        """The duct, periodic along x; the sphere is a solid immersed in it (class docstring)."""
        duct = Box((0.0, 0.0, 0.0), (LENGTH, SIDE, SIDE), periodic=(True, False, False))
        return SpaceTime(duct, TimeDomain(0.0, self.t_end))

    def initial_condition(self, x):
        zero = torch.zeros_like(x[:, 0])
        return {"u": zero, "v": zero, "w": zero}

    def boundary_conditions(self) -> list[BC]:
        def wall(points):
            zero = torch.zeros_like(points[:, 0])
            return {"u": zero, "v": zero, "w": zero}

        return [BC("dirichlet", ("u", "v", "w"), wall)]

    def residual(self, f):
        out = navier_stokes_3d(f, self.nu, unsteady=True)
        out["momentum_x"] = out["momentum_x"] - self.force
        return out

    def mac_scene(
        self, cells: int, rng: np.random.Generator | None = None, pad_to: int = 16
    ) -> mac3d.MacScene3d:
        """The duct on ``cells`` fluid cells across (the layout padded across to a multiple of
        ``pad_to``); with ``rng``, a training scene: a sphere of random diameter and position.
        ``cells`` must make the duct's length whole cells: a multiple of 13."""
        if int(cells) < 13 or int(cells) % 13:
            raise ParameterError(
                f"cells (scenes.cells) must be a positive multiple of 13 for {self.name} (the "
                f"duct's length is 32/13 of its side); got {cells}"
            )
        if rng is None:
            return mac3d.duct_scene(
                LENGTH, SIDE, cells, self.force, [self.sphere()], pad_to, name=self.name
            )
        d = DIAMETER * rng.uniform(*TRAINING_DIAMETERS)
        centre = (
            rng.uniform(0.0, LENGTH),
            *(0.5 * SIDE + TRAINING_OFFSET * SIDE * rng.uniform(-1, 1, size=2)),
        )
        # the sphere and its periodic images (a sphere across x = 0 appears at both ends)
        balls = [Ball((centre[0] + k * LENGTH, *centre[1:]), d / 2) for k in (-1, 0, 1)]
        return mac3d.duct_scene(LENGTH, SIDE, cells, self.force, balls, pad_to)

    def reference_settings(self) -> dict:
        """The reference run (part of its cache key)."""
        return {
            "solver": "mac3d_projection_ab2",
            "version": 1,
            "cells": 13,
            "snapshots": 41,
            "cfl": 0.4,
            "speed": 2.0 * self.force * SIDE**2 / (28.45 * self.nu),
        }

    def reference(self) -> GridReference:
        return _reference(self)


def _compute(problem: DuctSphere, settings: dict) -> dict[str, np.ndarray]:
    scene = problem.mac_scene(settings["cells"], pad_to=1)
    speed = min(settings["speed"], 1e3)
    dt = stable_dt3d(scene, problem.nu, speed=speed, cfl=settings["cfl"])
    times = np.linspace(0.0, problem.t_end, settings["snapshots"])
    zero = np.zeros(scene.grid.n)
    run = ProjectionSolver3d(scene, problem.nu, dt).run((zero, zero, zero), problem.t_end, times)
    nodes = mac3d.to_nodes(scene, run.u, run.v, run.w, run.p)
    n = settings["cells"]
    lo = mac3d.RING[0]
    out = {
        k: np.moveaxis(v[:, :, lo : lo + n + 1, lo : lo + n + 1], 0, -1) for k, v in nodes.items()
    }
    out["x"] = scene.grid.axis(0, "node")
    out["y"] = scene.grid.axis(1, "node")[lo : lo + n + 1]
    out["t"] = times
    out["steps"] = np.int64(run.steps)
    return out


@functools.lru_cache(maxsize=4)
def _reference(problem: DuctSphere) -> GridReference:
    settings = problem.reference_settings()
    arrays = load_or_compute(
        problem.name, problem.params(), settings, lambda: _compute(problem, settings)
    )
    n = settings["cells"]
    return GridReference(
        {"x": arrays["x"], "y": arrays["y"], "z": arrays["y"], "t": arrays["t"]},
        {k: arrays[k] for k in ("u", "v", "w", "p")},
        (True, False, False, False),
        description=(
            f"3D Chorin projection on the MAC duct, {arrays['x'].size} x {n} x {n} cells, "
            f"Adams-Bashforth 2, {int(arrays['steps'])} steps; values at the cell vertices, "
            "cubic interpolation"
        ),
        accuracy=(
            "second order in space and time away from the sphere (Poiseuille duct flow: "
            "tested); the sphere is a staircase of cells (first order at its surface)"
        ),
    )
