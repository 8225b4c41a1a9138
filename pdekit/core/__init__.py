"""The residual-evaluation core: one fields accessor, several derivative engines.

This package imports nothing else of pdekit.
"""

from pdekit.core.fields import (
    AutogradFields,
    Fields,
    UndeclaredDerivativeError,
    parse_spec,
    spec_name,
)
from pdekit.core.spectral import SpectralFields
from pdekit.core.stencil import Boundary, Side, StencilFields
from pdekit.core.taylor import Jet, TaylorFields

__all__ = [
    "AutogradFields",
    "Boundary",
    "Fields",
    "Jet",
    "Side",
    "SpectralFields",
    "StencilFields",
    "TaylorFields",
    "UndeclaredDerivativeError",
    "parse_spec",
    "spec_name",
]
