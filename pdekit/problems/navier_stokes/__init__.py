"""Incompressible Navier-Stokes family: Kovasznay, Taylor-Green, lid-driven cavity, ..."""

from pdekit.problems.navier_stokes import (  # noqa: F401
    kolmogorov,
    kovasznay,
    lid_driven_cavity,
    taylor_green,
)
