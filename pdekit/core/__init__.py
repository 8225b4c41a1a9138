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

__all__ = [
    "AutogradFields",
    "Boundary",
    "Fields",
    "Side",
    "SpectralFields",
    "StencilFields",
    "UndeclaredDerivativeError",
    "parse_spec",
    "spec_name",
]
