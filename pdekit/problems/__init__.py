"""WHAT to solve: the registry of named PDEs and their reference solutions.

>>> import pdekit
>>> p = pdekit.problems.get("convection_diffusion/convection", beta=30)
"""

from pdekit.problems import convection_diffusion, navier_stokes, porous_medium  # noqa: F401
from pdekit.problems.base import BC, ExactReference, Problem, Reference, param
from pdekit.problems.datasets import Dataset
from pdekit.problems.family import Choice, Family, Member, Uniform, families
from pdekit.problems.registry import get, get_class, names, register, unregister

__all__ = [
    "BC",
    "Choice",
    "Dataset",
    "ExactReference",
    "Family",
    "Member",
    "Problem",
    "Reference",
    "Uniform",
    "families",
    "get",
    "get_class",
    "names",
    "param",
    "register",
    "unregister",
]
