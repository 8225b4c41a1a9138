"""Viscous Burgers u_t + u u_x = nu u_xx on [-1, 1] with u0 = -sin(pi x): exact by Cole-Hopf."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems.base import (
    BC,
    Problem,
    Reference,
    _as_points,
    check_simulation_input,
    param,
)
from pdekit.problems.references.cole_hopf import (
    STEP,
    TAIL,
    burgers_dirichlet,
    burgers_sine,
    odd_extension_spline,
)
from pdekit.problems.registry import register
from pdekit.progress import progress_bar


class ColeHopfReference(Reference):
    """The Cole-Hopf integral of :class:`Burgers`, by trapezoidal quadrature (float64, numpy)."""

    source = "exact"

    def __init__(self, nu: float):
        self.nu = nu
        self.description = (
            f"Cole-Hopf integral (Basdevant et al. 1986), trapezoidal rule in the Hermite "
            f"variable, step {STEP}, window exp(-{TAIL:g})"
        )
        self.accuracy = "<= 1e-8 absolute (checked against a 4x finer, wider quadrature)"

    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        pts = _as_points(points, 2)
        return {"u": burgers_sine(pts[:, 0], pts[:, 1], self.nu)}


class ViscousBurgersForm:
    """The viscous Burgers equation u_t + u u_x = nu u_xx, written once for every Burgers problem
    (a mixin before :class:`~pdekit.problems.base.Problem`; the class supplies ``nu``).

    Conservation form u_t + F_x = 0 with F = u^2/2 - nu u_x. For the Lagrangian PINN the
    characteristic velocity is u itself and the diffusivity nu: along X'(t) = u the equation
    reads w_t = nu u_xx.
    """

    nu: float

    def residual(self, f):
        u = f["u"]
        return {"burgers": f.d("u", "t") + u * f.d("u", "x") - self.nu * f.d("u", "xx")}

    def flux(self, f):
        u = f["u"]
        return (0.5 * u * u - self.nu * f.d("u", "x"),)

    def characteristic_velocity(self, u, points):
        """Velocity of the characteristics, one tensor per spatial coordinate: (u,)."""
        return (u,)

    @property
    def diffusivity(self) -> float:
        """Diffusion coefficient of the Lagrangian form w_t = nu u_xx."""
        return self.nu


@register("convection_diffusion/burgers")
@dataclass(frozen=True)
class Burgers(ViscousBurgersForm, Problem):
    """u_t + u u_x = nu u_xx, x in [-1, 1], t in [0, 1], u(x, 0) = -sin(pi x), u(+-1, t) = 0.

    The PINN benchmark of Raissi, Perdikaris & Karniadakis (J. Comput. Phys. 378, 2019) with
    nu = 0.01/pi: a viscous shock forms at x = 0; its steepest slope, u_x(0, t) = -152.00516 at
    t = 1.6037/pi (Basdevant et al., Computers & Fluids 14, 1986), is checked by the tests. Exact
    solution by the Cole-Hopf integral (:mod:`pdekit.problems.references.cole_hopf`), which is
    odd and 2-periodic in x, so the Dirichlet data hold exactly. :meth:`simulate` solves from
    any initial data vanishing at +-1 by the same integral (odd extension, spline of the data).

    Conservation form u_t + F_x = 0 with F = u^2/2 - nu u_x. For the Lagrangian PINN the
    characteristic velocity is u itself and the diffusion coefficient nu:
    along X'(t) = u the equation reads w_t = nu w_XX.
    """

    nu: float = param(0.01 / math.pi, low=1e-4, high=1.0, doc="viscosity (the benchmark's 0.01/pi)")

    coordinates = ("x", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "x", "xx")}
    equation = (
        "u_t + u u_x = nu u_xx,  x in [-1, 1],  t in [0, 1],  u(x, 0) = -sin(pi x),  "
        "u(-1, t) = u(1, t) = 0"
    )

    def domain(self) -> SpaceTime:
        return SpaceTime(Interval(-1.0, 1.0), TimeDomain(0.0, 1.0))

    def initial_condition(self, x):
        return {"u": -torch.sin(math.pi * x[:, 0])}

    def boundary_conditions(self) -> list[BC]:
        def zero(p):
            return {"u": torch.zeros_like(p[:, 0])}

        return [BC("dirichlet", ("u",), zero, "xmin"), BC("dirichlet", ("u",), zero, "xmax")]

    def total_mass(self, t=0.0):
        """int u dx = 0 at every time: u(x, 0) = -sin(pi x) is odd and the equation with its
        zero boundary values keeps u odd, so the boundary fluxes nu u_x(+-1) cancel. (The
        Cole-Hopf solution below is computed outside autograd, so the flux route of
        ProbConserv's mass could not take its u_x.)"""
        return np.zeros(np.shape(t))

    def exact(self, points):
        p = points.detach().cpu().numpy()
        u = burgers_sine(p[:, 0], p[:, 1], self.nu)
        return {"u": torch.as_tensor(u, dtype=points.dtype, device=points.device)}

    def reference(self) -> Reference:
        return ColeHopfReference(self.nu)

    def simulate(
        self, initial_states: Mapping[str, np.ndarray], grid, times: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Cole-Hopf trajectories of any batch of initial states (float64).

        ``initial_states["u"]`` (B, n + 1) holds values on the nodes of a bounded
        :class:`~pdekit.geometries.Grid` over [-1, 1], zero at x = +-1 (else
        :class:`~pdekit.errors.ParameterError`). Each is interpolated by the cubic spline of
        its odd, 4-periodic extension and solved exactly by the Cole-Hopf integral
        (:func:`~pdekit.problems.references.cole_hopf.burgers_dirichlet`): the error is the
        spline's, O(h^4) for data whose odd extension is smooth (u0'' = 0 at +-1; O(h^2)
        measured otherwise). From u0 = -sin(pi x) it is 2.4e-8 on 129 nodes and 1.5e-9 on 257
        (max over the nodes and 101 times in [0, 1] against the exact reference). A progress
        bar over the batch follows :func:`pdekit.progress.progress_bar` (one state, 257 nodes and
        201 times: about 1 s here). Returns ``{"u": (B, len(times), n + 1)}``.
        """
        states, times = check_simulation_input(self, initial_states, grid, times)
        u0 = states["u"]
        for b in range(u0.shape[0]):
            try:
                odd_extension_spline(u0[b])
            except ParameterError as err:
                raise ParameterError(f"initial state {b} of {self.name}: {err}") from None
        x, t = np.meshgrid(grid.axis(0, "node"), times)
        out = np.empty((u0.shape[0], *x.shape))
        with progress_bar(u0.shape[0], unit="state", desc="burgers Cole-Hopf") as bar:
            for b in range(u0.shape[0]):
                out[b] = burgers_dirichlet(u0[b], x, t, self.nu)
                bar.update()
        return {"u": out}
