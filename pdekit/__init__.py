"""pdekit: scientific machine learning on partial differential equations.

>>> import pdekit
>>> sol = pdekit.solve("porous_medium/heat", solver="pinn", steps=2000, k=0.5)
>>> sol.errors()["rel_l2"]
"""

import os as _os

# DeepXDE picks its backend at import time; pdekit's DeepXDE baseline uses PyTorch.
_os.environ.setdefault("DDE_BACKEND", "pytorch")

from pdekit import problems, solvers  # noqa: E402
from pdekit._version import __version__  # noqa: E402
from pdekit.api import check_pair, load, solve, supported_solvers  # noqa: E402
from pdekit.solution import Solution  # noqa: E402

__all__ = [
    "Solution",
    "__version__",
    "check_pair",
    "load",
    "problems",
    "solve",
    "solvers",
    "supported_solvers",
]
