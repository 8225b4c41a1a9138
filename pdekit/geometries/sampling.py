"""Point samplers on the unit hypercube: quasi-random (scipy.stats.qmc) and uniform random.

Every sampler draws its randomness from a ``numpy.random.Generator`` that the caller owns, so a
training run that saves the generator's state resumes with the same points.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import qmc

from pdekit.errors import UnknownNameError

METHODS = ("sobol", "halton", "lhs", "uniform")
#: densities of interior points: uniform in the domain, or as dense as a mesh's simplices
#: (:meth:`~pdekit.geometries.mesh.MeshGeometry.sample_interior`)
DENSITIES = ("uniform", "mesh")


def density_options(density: str) -> dict:
    """Keyword arguments of ``sample_interior`` for ``density``: none for ``"uniform"`` (what
    every geometry does), else ``{"density": density}`` (for the geometries that offer it)."""
    return {} if density == "uniform" else {"density": density}


def unit_samples(n: int, dim: int, method: str = "sobol", rng=None) -> np.ndarray:
    """``n`` points in [0, 1)^dim.

    Parameters
    ----------
    method:
        ``"sobol"`` (scrambled Sobol, Owen 1998), ``"halton"`` (scrambled), ``"lhs"`` (Latin
        hypercube) or ``"uniform"`` (i.i.d. uniform).
    rng:
        ``numpy.random.Generator`` or seed; the scrambling and the uniform draws use it.
    """
    if n < 0:
        raise ValueError(f"number of points must be >= 0; got {n}")
    rng = np.random.default_rng(rng)
    if n == 0:
        return np.zeros((0, dim))
    if method == "uniform":
        return rng.random((n, dim))
    if method == "sobol":
        engine = qmc.Sobol(dim, scramble=True, seed=_engine_rng(rng))
        with warnings.catch_warnings():  # balance properties need powers of two: not required
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(n)
    if method == "halton":
        return qmc.Halton(dim, scramble=True, seed=_engine_rng(rng)).random(n)
    if method == "lhs":
        return qmc.LatinHypercube(dim, seed=_engine_rng(rng)).random(n)
    raise UnknownNameError("sampling method", method, METHODS)


def split_counts(n: int, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split ``n`` into integer counts proportional to ``fractions`` (remainder drawn at random)."""
    base = np.floor(n * fractions).astype(int)
    rest = n - base.sum()
    if rest > 0:
        extra = rng.choice(len(fractions), size=rest, replace=True, p=fractions)
        base += np.bincount(extra, minlength=len(fractions))
    return base


def _engine_rng(rng: np.random.Generator) -> np.random.Generator:
    """A fresh generator for a scipy QMC engine, seeded by a number drawn from ``rng``.

    scipy's engines spawn a child of the generator they are given, which advances its
    SeedSequence's spawn counter, a state that ``rng.bit_generator.state`` does not hold; a run
    resumed from a saved generator state would then draw other points. Drawing the engine's
    seed from ``rng``'s bit stream keeps every draw a function of that saved state.
    """
    return np.random.default_rng(int(rng.integers(2**63)))
