"""Where a PDE lives: primitives, CSG, meshes, space-time products, grids and point samplers."""

from pdekit.geometries.base import Geometry
from pdekit.geometries.csg import Ball, Difference, Disk, Intersection, Polygon, Sphere, Union
from pdekit.geometries.grid import Grid, TensorGrid, uniform_axis
from pdekit.geometries.mesh import MeshGeometry
from pdekit.geometries.primitives import Box, Hyperrectangle, Interval, Rectangle
from pdekit.geometries.sampling import unit_samples
from pdekit.geometries.spacetime import SpaceTime, TimeDomain

__all__ = [
    "Ball",
    "Box",
    "Difference",
    "Disk",
    "Geometry",
    "Grid",
    "Hyperrectangle",
    "Intersection",
    "Interval",
    "MeshGeometry",
    "Polygon",
    "Rectangle",
    "SpaceTime",
    "Sphere",
    "TensorGrid",
    "TimeDomain",
    "Union",
    "uniform_axis",
    "unit_samples",
]
