"""Where a PDE lives: primitives, space-time products, grids and point samplers."""

from pdekit.geometries.base import Geometry
from pdekit.geometries.grid import TensorGrid, uniform_axis
from pdekit.geometries.primitives import Box, Hyperrectangle, Interval, Rectangle
from pdekit.geometries.sampling import unit_samples
from pdekit.geometries.spacetime import SpaceTime, TimeDomain

__all__ = [
    "Box",
    "Geometry",
    "Hyperrectangle",
    "Interval",
    "Rectangle",
    "SpaceTime",
    "TensorGrid",
    "TimeDomain",
    "uniform_axis",
    "unit_samples",
]
