"""The Geometry protocol every domain implements (primitives, CSG, meshes, space-time)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Geometry(Protocol):
    """A spatial domain.

    Attributes
    ----------
    dim: number of spatial dimensions.
    bounds: array (2, dim): lower and upper corner of the bounding box.
    periodic: tuple of bools, one per dimension: True where the domain wraps around.
    boundary_tags: names of the boundary parts (``"left"``, ``"inlet"``, ...).
    """

    dim: int

    @property
    def bounds(self) -> np.ndarray: ...

    @property
    def periodic(self) -> tuple[bool, ...]: ...

    @property
    def boundary_tags(self) -> tuple[str, ...]: ...

    def sample_interior(self, n: int, rng=None, method: str = "sobol") -> np.ndarray:
        """``n`` points (n, dim) uniformly distributed in the domain."""

    def sample_boundary(
        self, n: int, tag: str | None = None, rng=None, method: str = "sobol"
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` boundary points (n, dim) and their outward unit normals (n, dim).

        ``tag`` selects one boundary part; None samples all of them, proportionally to size.
        """

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask (n,): which points lie in the closed domain."""

    def volume(self) -> float:
        """Length, area or volume of the domain."""
