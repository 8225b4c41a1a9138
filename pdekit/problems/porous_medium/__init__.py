"""Generalised porous medium family u_t = div(k(u) grad u): heat, PME, Stefan, ..."""

from pdekit.problems.porous_medium import barenblatt, heat, pme, stefan  # noqa: F401
