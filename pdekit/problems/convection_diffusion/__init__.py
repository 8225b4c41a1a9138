"""Convection-diffusion family: linear convection, Burgers, Allen-Cahn, ..."""

from pdekit.problems.convection_diffusion import allen_cahn, convection  # noqa: F401
