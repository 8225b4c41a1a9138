"""Generalised porous medium family u_t = div(k(u) grad u): heat, PME, Stefan, ..."""

from pdekit.problems.porous_medium import (  # noqa: F401
    barenblatt,
    diffusion_sorption,
    heat,
    pme,
    stefan,
)
