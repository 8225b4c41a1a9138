"""Reference solutions that are computed, not written down: solvers, grid interpolation, cache.

* :mod:`~pdekit.problems.references.cache`: HDF5 cache of computed references, keyed by problem
  name, parameters and solver settings;
* :class:`GridReference`: a reference known on a tensor grid, callable on any points;
* the reference solvers themselves, one module each.
"""

from pdekit.problems.references.cache import cache_dir, load_or_compute
from pdekit.problems.references.grid import GridReference

__all__ = ["GridReference", "cache_dir", "load_or_compute"]
