"""Time domains and space-time products: points are (x[, y[, z]], t), time in the last column."""

from __future__ import annotations

import numpy as np

from pdekit.errors import ParameterError
from pdekit.geometries.base import Geometry
from pdekit.geometries.sampling import density_options, unit_samples

#: shortest time interval, absolute and relative to ``|t|``: networks scale time by 1/(t1 - t0),
#: so a time derivative grows as 1/(t1 - t0) and its square overflows float32 long before the
#: span reaches float resolution (t_end = 1e-35 gave inf/nan losses at the first step)
MIN_SPAN = 1e-6


class TimeDomain:
    """The time interval [t0, t1]."""

    def __init__(self, t0: float, t1: float):
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
            raise ParameterError(f"need finite t0 < t1; got t0={t0}, t1={t1}")
        if t1 - t0 < MIN_SPAN * max(1.0, abs(t0), abs(t1)):
            raise ParameterError(
                f"time interval [{t0:g}, {t1:g}] is too short: t1 - t0 must be at least "
                f"{MIN_SPAN:g} x max(1, |t0|, |t1|) (derivatives in t scale as 1/(t1 - t0)); "
                "rescale time"
            )
        self.t0, self.t1 = float(t0), float(t1)

    def __repr__(self) -> str:
        return f"TimeDomain({self.t0}, {self.t1})"


class SpaceTime:
    """The product of a spatial :class:`Geometry` and a :class:`TimeDomain`.

    Interior points are drawn jointly in (space, time); boundary points are spatial boundary
    points at random times, with the spatial outward normal; initial points lie at ``t0``.
    """

    def __init__(self, space: Geometry, time: TimeDomain):
        self.space, self.time = space, time
        self.dim = space.dim + 1

    @property
    def bounds(self) -> np.ndarray:
        b = self.space.bounds
        return np.concatenate([b, [[self.time.t0], [self.time.t1]]], axis=1)

    @property
    def periodic(self) -> tuple[bool, ...]:
        return tuple(self.space.periodic) + (False,)

    @property
    def boundary_tags(self) -> tuple[str, ...]:
        return self.space.boundary_tags

    def volume(self) -> float:
        return self.space.volume() * (self.time.t1 - self.time.t0)

    def contains(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        t = x[:, -1]
        return self.space.contains(x[:, :-1]) & (t >= self.time.t0) & (t <= self.time.t1)

    def sample_times(self, n: int, rng=None, method: str = "sobol") -> np.ndarray:
        u = unit_samples(n, 1, method, rng)[:, 0]
        return self.time.t0 + (self.time.t1 - self.time.t0) * u

    @property
    def densities(self) -> tuple[str, ...]:
        """The interior point densities of the spatial domain (times are always uniform)."""
        return getattr(self.space, "densities", ("uniform",))

    def sample_interior(
        self, n: int, rng=None, method: str = "sobol", density: str = "uniform"
    ) -> np.ndarray:
        rng = np.random.default_rng(rng)
        xs = self.space.sample_interior(n, rng, method, **density_options(density))
        # Space and time come from two separate draws. Two scrambled Sobol (or Halton)
        # sequences taken in the same order are strongly correlated: paired as drawn, the
        # points fall on a few lines of the (x, t) plane (in 1D, 229 of 256 cells of a 16 x 16
        # grid stay empty at n = 2048). A random permutation of the times keeps each marginal
        # stratified and pairs them like a Latin hypercube.
        t = self.sample_times(n, rng, method)[rng.permutation(len(xs))]
        return np.concatenate([xs, t[:, None]], axis=1)

    def sample_boundary(
        self, n: int, tag: str | None = None, rng=None, method: str = "sobol"
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(rng)
        xs, normals = self.space.sample_boundary(n, tag, rng, method)
        t = self.sample_times(len(xs), rng, method)
        return np.concatenate([xs, t[:, None]], axis=1), normals

    def sample_initial(self, n: int, rng=None, method: str = "sobol") -> np.ndarray:
        xs = self.space.sample_interior(n, rng, method)
        return np.concatenate([xs, np.full((len(xs), 1), self.time.t0)], axis=1)

    def __repr__(self) -> str:
        return f"SpaceTime({self.space!r}, {self.time!r})"
