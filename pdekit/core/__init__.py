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

__all__ = ["AutogradFields", "Fields", "UndeclaredDerivativeError", "parse_spec", "spec_name"]
