"""Incompressible Navier-Stokes family: Kovasznay, Taylor-Green, lid-driven cavity, ..."""

from pdekit.problems.navier_stokes import kolmogorov, kovasznay, taylor_green  # noqa: F401
