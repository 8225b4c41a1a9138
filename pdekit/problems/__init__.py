"""WHAT to solve: the registry of named PDEs and their reference solutions.

>>> import pdekit
>>> p = pdekit.problems.get("convection_diffusion/convection", beta=30)
"""

from pdekit.problems import convection_diffusion, navier_stokes, porous_medium  # noqa: F401
from pdekit.problems.base import BC, ExactReference, Problem, Reference, param
from pdekit.problems.registry import get, get_class, names, register, unregister

__all__ = [
    "BC",
    "ExactReference",
    "Problem",
    "Reference",
    "get",
    "get_class",
    "names",
    "param",
    "register",
    "unregister",
]
