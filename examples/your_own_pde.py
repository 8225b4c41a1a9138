"""Your own PDE: define a problem in a few lines, solve it with pdekit, score it against its
exact solution.

The problem is a 1D reaction-diffusion equation with Dirichlet walls,

    u_t = nu u_xx - r u,  x in [0, 1],  t in [0, 1],  u(0, t) = u(1, t) = 0,  u(x, 0) = sin(pi x),

whose exact solution is u = exp(-(nu pi^2 + r) t) sin(pi x). Once registered, it is a problem
like the built-in ones: ``pdekit.solve("my_pdes/reaction_diffusion", ...)``, ``pdekit.load`` of
its checkpoints (in a process that has imported this module), VTK output, plots.

Run:  python examples/your_own_pde.py     (pinn, 3000 steps: about two minutes on one CPU core)
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

import pdekit
from pdekit.geometries import Interval, SpaceTime, TimeDomain
from pdekit.problems import BC, Problem, param, register

NAME = "my_pdes/reaction_diffusion"


@register(NAME)
@dataclass(frozen=True)
class ReactionDiffusion(Problem):
    """u_t = nu u_xx - r u on [0, 1] x [0, 1], u = 0 at both walls, u(x, 0) = sin(pi x)."""

    # parameters: a default, an allowed range (checked), one line of documentation
    nu: float = param(0.05, low=0.0, high=1.0, low_open=True, doc="diffusivity")
    rate: float = param(1.0, low=0.0, high=10.0, doc="decay rate r")
    coordinates = ("x", "t")  # the columns of a point array: space first, time last
    fields = ("u",)
    derivatives = {"u": ("t", "xx")}  # what the residual uses: engines compute only these
    equation = "u_t = nu u_xx - r u,  x in [0, 1],  t in [0, 1],  u = 0 at x = 0, 1"

    def domain(self):
        return SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 1.0))

    def initial_condition(self, x):  # x: (n, 1) spatial points
        return {"u": torch.sin(math.pi * x[:, 0])}

    def boundary_conditions(self):  # on the whole spatial boundary (both ends)
        return [BC("dirichlet", ("u",), lambda p: {"u": torch.zeros_like(p[:, 0])})]

    def residual(self, f):  # written once; every solver evaluates it
        return {"reaction_diffusion": f.d("u", "t") - self.nu * f.d("u", "xx") + self.rate * f["u"]}

    def exact(self, points):  # optional: makes sol.errors(), plots and VTK errors work
        x, t = points[:, 0], points[:, 1]
        decay = torch.exp(-(self.nu * math.pi**2 + self.rate) * t)
        return {"u": decay * torch.sin(math.pi * x)}


def main(steps=3000, solvers=("pinn",), config=None, nu=0.05, verbose=True):
    """Solve the problem with each of ``solvers``; returns ``{solver: Solution}``."""
    problem = pdekit.problems.get(NAME, nu=nu)
    print("solvers that can solve it:", ", ".join(pdekit.supported_solvers(problem)))
    points = np.array([[0.25, 0.0], [0.5, 0.5], [0.75, 1.0]])  # (x, t) rows
    exact = problem.reference()(points)["u"]
    solutions = {}
    for solver in solvers:
        sol = pdekit.solve(NAME, solver=solver, steps=steps, config=config, verbose=verbose, nu=nu)
        errors = sol.errors()  # on the problem's evaluation grid, against exact()
        print(f"{solver}: rel_l2 = {errors['rel_l2']:.3e}, max_abs = {errors['max_abs']:.3e}")
        for (x, t), u, ue in zip(points, sol(points)["u"], exact):
            print(f"  u({x:.2f}, {t:.2f}) = {u:+.5f}   exact {ue:+.5f}")
        solutions[solver] = sol
    return solutions


if __name__ == "__main__":
    main()
