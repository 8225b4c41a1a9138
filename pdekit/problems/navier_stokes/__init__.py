"""Incompressible Navier-Stokes family: Kovasznay, Taylor-Green, lid-driven cavity, ..."""

from pdekit.problems.navier_stokes import (  # noqa: F401
    cavity_transient,
    cylinder,
    kolmogorov,
    kovasznay,
    lid_driven_cavity,
    taylor_green,
)
