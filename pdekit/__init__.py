"""pdekit: scientific machine learning on partial differential equations."""

from pdekit import problems
from pdekit._version import __version__

__all__ = ["__version__", "problems"]
