"""Convection-diffusion family: linear convection, Burgers, Allen-Cahn, ..."""

from pdekit.problems.convection_diffusion import convection  # noqa: F401
