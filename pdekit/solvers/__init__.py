"""HOW to solve: solver backends, the shared trainer and networks.

Backend modules register themselves with ``@register_solver``; heavy dependencies (DeepXDE) are
imported only when their solver runs.
"""

from pdekit.solvers import (  # noqa: F401  (registration)
    causal_pinn,
    deepxde_baseline,
    fno,
    lagrangian_pinn,
    moe_hard,
    neural_stagger,
    pinn,
    probconserv,
    spectral_fno,
)
from pdekit.solvers.base import NetworkSolver, RunOptions, Solver
from pdekit.solvers.registry import get, names, register_solver

__all__ = ["NetworkSolver", "RunOptions", "Solver", "get", "names", "register_solver"]
