"""Convection-diffusion family: linear convection, Burgers, Allen-Cahn, ..."""

from pdekit.problems.convection_diffusion import burgers, convection, gaussian_pulse  # noqa: F401
