"""Convection-diffusion family: linear convection, Burgers, Allen-Cahn, ..."""

from pdekit.problems.convection_diffusion import (  # noqa: F401
    allen_cahn,
    burgers,
    burgers_moving,
    convection,
    gaussian_pulse,
)
