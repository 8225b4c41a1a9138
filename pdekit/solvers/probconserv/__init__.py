"""ProbConserv (Hansen et al., ICML 2023): an Attentive Neural Process whose Gaussian prediction
is conditioned on the integral form of the conservation law, with its baselines (ANP, SoftC-ANP,
HardC-ANP).

Modules: :mod:`.anp` (the network), :mod:`.update` (the conservation update, float64),
:mod:`.mass` (b(t) from the problem), :mod:`.family` (training data), :mod:`.task` (training),
:mod:`.solution` (the Solution), :mod:`.solver` (the registered solver ``probconserv``).
"""

from pdekit.solvers.probconserv.solver import ProbConserv, ProbConservConfig

__all__ = ["ProbConserv", "ProbConservConfig"]
