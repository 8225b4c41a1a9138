"""Incompressible Navier-Stokes family: Kovasznay, Taylor-Green, lid-driven cavity, Beltrami, ..."""

from pdekit.problems.navier_stokes import (  # noqa: F401
    beltrami,
    cavity_transient,
    cylinder,
    cylinder_steady,
    decaying_turbulence,
    duct_sphere,
    kolmogorov,
    kovasznay,
    lid_driven_cavity,
    taylor_green,
)
