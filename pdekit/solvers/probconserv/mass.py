"""The right-hand side b(t) of the integral conservation law, from the Problem interface.

For u_t + d/dx F(u) = 0 on [x0, x1] (Hansen et al. 2023, Eq. 2),

    b(t) = int u(x, t) dx = int u(x, t0) dx + int_{t0}^{t} ( F(x0, s) - F(x1, s) ) ds,

with no boundary term on a periodic axis. A problem that knows its total mass in closed form
(a ``total_mass(t)`` method) is used directly, as in the paper's code; otherwise b(t) is the
initial mass (Gauss-Legendre quadrature of the initial condition) plus the time integral of the
boundary flux, where the flux is the problem's own conservation form ``flux(f)`` evaluated on
its exact solution through the core's autograd engine. The time integral is Gauss-Legendre in
tau = sqrt(s - t0), which is exact for the t^(-1/2) boundary flux of similarity solutions
(Stefan, heat from a step).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pdekit.core.fields import AutogradFields
from pdekit.problems.base import Problem

#: Gauss-Legendre nodes for the initial mass and for the boundary-flux time integral
N_SPACE, N_TIME = 256, 64


def _space_bounds(problem: Problem) -> tuple[float, float, bool]:
    dom = problem.domain()
    return float(dom.bounds[0, 0]), float(dom.bounds[1, 0]), bool(dom.periodic[0])


def _gauss(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    half = (hi - lo) / 2
    return lo + half * (nodes + 1), half * weights


def _exact_fields(problem: Problem, pts: np.ndarray) -> AutogradFields:
    p = torch.as_tensor(pts, dtype=torch.float64).requires_grad_(True)
    values = problem.exact(p)
    detached = [k for k, v in values.items() if not v.requires_grad]
    if detached:  # its derivatives would read as zero, and the flux silently lose them
        raise ValueError(
            f"{problem.name}: its closed-form solution ({', '.join(detached)}) is computed "
            "outside torch's autograd, so the boundary flux needs derivatives it cannot give; "
            "the problem must state total_mass(t)"
        )
    return AutogradFields(p, values, problem.coordinates)


def mass_source(
    problem: Problem, closed_form: bool = True
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """b(t) as a vectorised function of times, and how it is obtained.

    ``closed_form=False`` ignores ``total_mass`` and integrates the boundary flux (a check of
    one against the other). Raises ValueError (with the reason) when the problem gives no way
    to compute it.
    """
    total = getattr(problem, "total_mass", None)
    if closed_form and callable(total):

        def exact_mass(t):
            t = np.asarray(t, dtype=np.float64)
            return np.vectorize(lambda s: float(total(float(s))))(t)

        return exact_mass, "closed-form total mass (problem.total_mass)"
    if not problem.has_exact():
        raise ValueError(
            f"{problem.name} gives neither total_mass(t) nor a closed-form solution to integrate "
            "its boundary flux"
        )
    x0, x1, periodic = _space_bounds(problem)
    t0 = float(problem.domain().bounds[0, -1])
    probe = _exact_fields(problem, np.array([[0.5 * (x0 + x1), t0 + 1e-3]]))
    if problem.source(probe) is not None:
        raise ValueError(f"{problem.name} has a source term and no total_mass(t)")
    if problem.flux(probe) is None and not periodic:
        raise ValueError(f"{problem.name} has no conservation form (flux) and no total_mass(t)")
    xs, wx = _gauss(x0, x1, N_SPACE)
    with torch.no_grad():
        u0 = problem.initial_condition(torch.as_tensor(xs[:, None], dtype=torch.float64))
    m0 = float(np.dot(wx, u0[problem.fields[0]].numpy()))

    def boundary_flux(s: np.ndarray) -> np.ndarray:
        """F(x0, s) - F(x1, s): mass entering through both ends."""
        pts = np.concatenate(
            [np.column_stack([np.full_like(s, x0), s]), np.column_stack([np.full_like(s, x1), s])]
        )
        (flux,) = problem.flux(_exact_fields(problem, pts))
        f = flux.detach().numpy()
        return f[: len(s)] - f[len(s) :]

    def integrated_mass(t):
        t = np.asarray(t, dtype=np.float64)
        if periodic:
            return np.full(t.shape, m0)
        out = np.empty(t.size)
        for i, ti in enumerate(t.reshape(-1)):
            if ti <= t0:
                out[i] = m0
                continue
            tau, wt = _gauss(0.0, np.sqrt(ti - t0), N_TIME)
            out[i] = m0 + float(np.dot(wt, 2 * tau * boundary_flux(t0 + tau**2)))
        return out.reshape(t.shape)

    how = "initial mass" + ("" if periodic else " + time-integrated boundary flux (problem.flux)")
    return integrated_mass, how
