"""Families: a registered problem plus a distribution over its instances, with named splits.

A :class:`Family` describes many instances of one problem -- the training set of an operator
learner. Each *member* is the problem with some parameters fixed (``fixed``), some drawn from a
distribution (``vary``: :class:`Uniform` ranges, :class:`Choice` sets) and, where the problem's
initial condition is a seeded random field, its seed parameter (``seed_param``) set to the
member's seed. The member's initial state is ``problem.initial_state(grid)``; its trajectory is
``problem.simulate`` (:mod:`pdekit.problems.datasets`).

>>> from pdekit.problems import families
>>> fam = families.get("kolmogorov_nu1e-3")
>>> [m.seed for m in fam.members("test", 2)]                # doctest: +SKIP

Splits
------
Three named splits, ``train``, ``valid`` and ``test``, each of a stated size (``sizes``).
Member i of split s (s = 0, 1, 2 in that order) has the seed

    seed = (a * (3 i + s) + b) mod N,

with N = ``seed_space`` and a, b taken from the SHA-256 of the family's name (a coprime to N;
a family derived by :meth:`Family.with_overrides` keeps its parent's name here, so its members
have the parent's seeds).
The map g -> (a g + b) mod N is a bijection of [0, N) and the indices 3 i + s of different
splits differ, so the splits are disjoint by construction -- not just with high probability --
for any sizes; a member's seed depends on the family name, split and index only, so a split of
size n is the first n members of any larger one. A split holds at most ``capacity(split)``
members (about N / 3). Explicit seeds can replace a split's (:meth:`Family.with_seeds`); they
are checked to be distinct and disjoint from the other splits at their stated sizes.

Parameters drawn from ``vary`` use ``numpy.random.default_rng([PARAM_STREAM, seed])``, a
stream independent of the one a problem draws from ``default_rng(seed)``; parameters are drawn
in sorted name order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries.grid import Grid
from pdekit.problems import registry
from pdekit.problems.base import Problem
from pdekit.problems.navier_stokes import kolmogorov

#: the split names, in the order that sets their index s
SPLITS = ("train", "valid", "test")
#: first entropy word of the parameter-drawing stream of a member (see the module docstring)
PARAM_STREAM = 0x70646B66  # "pdkf"


@dataclass(frozen=True)
class Uniform:
    """A parameter drawn uniformly from [low, high]."""

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low):
            raise ParameterError(f"Uniform needs finite low < high; got [{self.low}, {self.high}]")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def extremes(self) -> tuple:
        return (self.low, self.high)

    def to_json(self) -> dict:
        return {"uniform": [self.low, self.high]}

    def __str__(self) -> str:
        return f"U[{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Choice:
    """A parameter drawn uniformly from a finite set of values."""

    values: tuple

    def __post_init__(self):
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values or len(set(self.values)) != len(self.values):
            raise ParameterError(f"Choice needs distinct values; got {self.values!r}")

    def draw(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def extremes(self) -> tuple:
        return self.values

    def to_json(self) -> dict:
        return {"choice": list(self.values)}

    def __str__(self) -> str:
        return "one of " + ", ".join(f"{v!r}" for v in self.values)


Distribution = Uniform | Choice


@dataclass(frozen=True)
class Member:
    """One instance of a family: the problem's name and all its parameters, and its seed."""

    family: str
    split: str
    index: int
    seed: int
    problem_name: str
    params: Mapping[str, Any]

    def problem(self) -> Problem:
        """The problem instance of this member."""
        return registry.get(self.problem_name, **self.params)


@dataclass(frozen=True)
class Family:
    """A registered problem and a distribution over its instances, with train/valid/test splits.

    Parameters
    ----------
    name:
        The family's name (``"kolmogorov_nu1e-3"``); it also keys the members' seeds.
    problem:
        Registered problem name (``"navier_stokes/kolmogorov"``).
    fixed:
        Problem parameters shared by every member (the problem's defaults fill the rest).
    vary:
        Problem parameters drawn per member: ``{name: Uniform(low, high) | Choice(values)}``.
    seed_param:
        The problem parameter set to each member's seed (a seeded initial condition), or None.
        It must only change the initial state: members that differ in nothing else are
        simulated together, in one batch, by the first one's problem.
    sizes:
        Stated split sizes ``{split: members}`` (every split of :data:`SPLITS`, each >= 1).
    seed_space:
        Seeds lie in [0, seed_space).
    grid:
        Default cells per spatial axis of a dataset.
    times:
        Default output times of a dataset (the first the problem's initial time).
    min_solver_cells:
        Fewest cells per axis the solver needs for accurate trajectories: a dataset on a coarser
        grid is simulated on the smallest multiple of its grid with at least this many cells and
        restricted to it (every k-th node; cell averages of k cells at centres).
    solver_options:
        Keyword arguments of ``problem.simulate`` (part of a dataset's key).
    seeds:
        Explicit seeds of some splits ``{split: seeds}``, replacing the derived ones.
    key_params:
        The fixed parameters that tell this family from the problem's other families
        (``("nu",)``): :meth:`FamilyRegistry.resolve` selects by them.
    seed_key:
        The name that keys the seeds, when not ``name``: a family derived by
        :meth:`with_overrides` keeps its parent's members' seeds.
    description:
        One line: where the distribution comes from.
    """

    name: str
    problem: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    vary: Mapping[str, Distribution] = field(default_factory=dict)
    seed_param: str | None = None
    sizes: Mapping[str, int] = field(
        default_factory=lambda: {"train": 1000, "valid": 100, "test": 200}
    )
    seed_space: int = 2**32
    grid: int = 64
    times: tuple[float, ...] = ()
    min_solver_cells: int = 0
    solver_options: Mapping[str, Any] = field(default_factory=dict)
    seeds: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    key_params: tuple[str, ...] = ()
    seed_key: str = ""
    description: str = ""

    def __post_init__(self):
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.\-\[\]=,+]+", self.name):
            raise ParameterError(
                f"family names use letters, digits and _.-[]=,+ only; got {self.name!r}"
            )
        cls = registry.get_class(self.problem)
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in [*self.fixed, *self.vary, *([self.seed_param] if self.seed_param else [])]:
            if key not in valid:
                raise UnknownNameError(f"parameter of {self.problem}", key, valid)
        both = sorted(set(self.fixed) & (set(self.vary) | {self.seed_param}))
        if both:
            raise ParameterError(f"family {self.name}: {both} both fixed and varied")
        if self.seed_param in self.vary:
            raise ParameterError(f"family {self.name}: {self.seed_param!r} is the seed parameter")
        if not self.vary and self.seed_param is None:
            raise ParameterError(
                f"family {self.name} varies nothing: give vary ranges or a seed_param"
            )
        for dist in self.vary.values():
            if not isinstance(dist, Uniform | Choice):
                raise ParameterError(f"family {self.name}: vary values are Uniform or Choice")
        if set(self.sizes) != set(SPLITS):
            raise ParameterError(
                f"family {self.name} needs a size for each split {list(SPLITS)}; "
                f"got {sorted(self.sizes)}"
            )
        if not isinstance(self.seed_space, int) or self.seed_space < len(SPLITS):
            raise ParameterError(f"family {self.name}: seed_space must be an integer >= 3")
        object.__setattr__(self, "times", tuple(float(t) for t in self.times))
        object.__setattr__(
            self, "seeds", {s: tuple(int(v) for v in seq) for s, seq in self.seeds.items()}
        )
        for split, size in self.sizes.items():
            if split not in self.seeds:
                self._check_size(split, size)
        template = self.template()  # validates the fixed parameters
        for key, dist in self.vary.items():  # and the ends of each distribution
            for value in dist.extremes():
                registry.get(self.problem, **{**self.fixed, key: value})
        if not template.time_dependent:
            raise ParameterError(f"{self.problem} is steady: a family needs trajectories")
        if len(self.times) < 2:
            raise ParameterError(f"family {self.name} needs at least two default output times")
        missing = [k for k in self.key_params if k not in self.fixed]
        if missing:
            raise ParameterError(f"family {self.name}: key_params {missing} are not fixed")
        self.check_times(np.asarray(self.times))
        self._check_seeds()

    # -- members -------------------------------------------------------------------------------
    def template(self) -> Problem:
        """The problem with the fixed parameters (defaults elsewhere): domain, grid, fields."""
        return registry.get(self.problem, **self.fixed)

    def capacity(self, split: str) -> int:
        """The most members ``split`` can hold (its explicit seeds, else ~seed_space / 3)."""
        s = self._split_index(split)
        if split in self.seeds:
            return len(self.seeds[split])
        return (self.seed_space - s + len(SPLITS) - 1) // len(SPLITS)

    def size(self, split: str) -> int:
        """The stated size of ``split`` (the number of its explicit seeds, if given)."""
        self._split_index(split)
        return len(self.seeds[split]) if split in self.seeds else int(self.sizes[split])

    def split_seeds(self, split: str, size: int | None = None) -> np.ndarray:
        """The seeds of the first ``size`` members of ``split`` (default: its stated size)."""
        size = self.size(split) if size is None else size
        self._check_size(split, size)
        if split in self.seeds:
            return np.asarray(self.seeds[split][:size], dtype=np.int64)
        a, b = self._affine()
        g = np.arange(size, dtype=object) * len(SPLITS) + self._split_index(split)
        return np.asarray([(a * int(v) + b) % self.seed_space for v in g], dtype=np.int64)

    def members(self, split: str, size: int | None = None) -> list[Member]:
        """The first ``size`` members of ``split`` (default: its stated size), in order."""
        return [self._member(split, i, int(s)) for i, s in enumerate(self.split_seeds(split, size))]

    def params_of(self, seed: int) -> dict[str, Any]:
        """All problem parameters of the member with this seed."""
        rng = np.random.default_rng([PARAM_STREAM, int(seed)])
        drawn = {k: self.vary[k].draw(rng) for k in sorted(self.vary)}
        if self.seed_param is not None:
            drawn[self.seed_param] = int(seed)
        return registry.get(self.problem, **{**self.fixed, **drawn}).params()

    def batch_key(self, params: Mapping[str, Any]) -> str:
        """Members with the same key share a problem instance up to their initial state."""
        return repr(sorted((k, v) for k, v in params.items() if k != self.seed_param))

    # -- grids and times -----------------------------------------------------------------------
    def make_grid(self, n: int | Sequence[int] | None = None) -> Grid:
        """The dataset grid: ``n`` cells per spatial axis (default :attr:`grid`) over the
        problem's spatial domain."""
        n = self.grid if n is None else n
        cells = np.broadcast_to(np.asarray(n), (self.template().domain().space.bounds.shape[1],))
        if np.any(cells < 1) or not np.all(cells == np.round(cells)):
            raise ParameterError(f"grid cells per axis must be integers >= 1; got {n!r}")
        return Grid.on(self.template().domain().space, [int(c) for c in cells])

    def solver_factor(self, grid: Grid) -> int:
        """k: the dataset ``grid`` is simulated on k times its cells (:attr:`min_solver_cells`)."""
        return max(1, math.ceil(self.min_solver_cells / min(grid.n)))

    def output_times(
        self, t_end: float | None = None, steps: int | None = None, times=None
    ) -> np.ndarray:
        """Output times: explicit ``times``; else ``steps`` equal intervals from t0 to ``t_end``
        (defaults: the family's end time, and its time step when the default times are equally
        spaced, else its number of intervals)."""
        if times is not None:
            if t_end is not None or steps is not None:
                raise ParameterError("give explicit times or t_end/steps, not both")
            out = np.asarray(times, dtype=float).reshape(-1)
            self.check_times(out)
            return out
        default = np.asarray(self.times)
        t0, t1 = default[0], default[-1] if t_end is None else float(t_end)
        if not t1 > t0:
            raise ParameterError(f"t_end must exceed the initial time {t0:g}; got {t1:g}")
        if steps is None:
            intervals = len(default) - 1
            dt = (default[-1] - default[0]) / intervals
            steps = intervals if t_end is None else max(1, round((t1 - t0) / dt))
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ParameterError(f"time steps must be an integer >= 1; got {steps!r}")
        out = np.linspace(t0, t1, int(steps) + 1)
        self.check_times(out)
        return out

    def check_times(self, times: np.ndarray) -> None:
        """Raise ParameterError unless ``times`` increase from t0 within the time domain."""
        dom = self.template().domain().time
        ok = (
            times.ndim == 1
            and times.size >= 1
            and np.all(np.isfinite(times))
            and np.all(np.diff(times) > 0)
        )
        if not ok:
            raise ParameterError("output times must be a non-empty increasing sequence")
        tol = 1e-12 * max(1.0, abs(dom.t1))
        if abs(times[0] - dom.t0) > tol or times[-1] > dom.t1 + tol:
            raise ParameterError(
                f"output times of {self.name} run from t0 = {dom.t0:g} to at most "
                f"t_end = {dom.t1:g}; got [{times[0]:g}, {times[-1]:g}]"
            )

    # -- derived families ----------------------------------------------------------------------
    def with_overrides(self, **params: Any) -> Family:
        """The family with more fixed parameters (renamed ``name[key=value,...]``, same seeds);
        a varied parameter cannot be fixed this way, nor one that names the family."""
        params = {k: v for k, v in params.items() if k not in self.fixed or self.fixed[k] != v}
        if not params:
            return self
        varied = [k for k in params if k in self.vary or k == self.seed_param]
        if varied:
            raise ParameterError(
                f"{varied} vary across family {self.name}; only fixed parameters can be set "
                f"(fixed: {sorted(self.fixed) or 'none'}; any other parameter of {self.problem})"
            )
        keyed = [k for k in params if k in self.key_params]
        if keyed:
            named = ", ".join(f"{k}={_short(self.fixed[k])}" for k in keyed)
            raise ParameterError(
                f"family {self.name} is named by {named}; choose the family of the value you "
                f"want instead ({self.problem} --set {keyed[0]}=...)"
            )
        tag = ",".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))
        fixed = {**self.fixed, **params}
        times = self.times
        end = registry.get(self.problem, **fixed).domain().time.t1
        if end != self.template().domain().time.t1:  # the time domain changed: same time step
            dt = (times[-1] - times[0]) / (len(times) - 1)
            times = tuple(np.linspace(times[0], end, max(1, round((end - times[0]) / dt)) + 1))
        return dataclasses.replace(
            self,
            name=f"{self.name}[{tag}]",
            fixed=fixed,
            times=times,
            seed_key=self.seed_key or self.name,
        )

    def with_seeds(self, split: str, seeds: Iterable[int]) -> Family:
        """The family with explicit seeds for ``split`` (same name: seeds are part of a
        dataset's key). Raises ParameterError when they repeat or overlap another split."""
        self._split_index(split)
        seeds = tuple(int(s) for s in seeds)
        return dataclasses.replace(self, seeds={**self.seeds, split: seeds})

    def spec(self) -> dict[str, Any]:
        """The family's definition as JSON-able data (part of a dataset's key)."""
        return {
            "name": self.name,
            "problem": self.problem,
            "fixed": dict(sorted(self.fixed.items())),
            "vary": {k: self.vary[k].to_json() for k in sorted(self.vary)},
            "seed_param": self.seed_param,
            "seed_space": self.seed_space,
            "seed_key": self.seed_key or self.name,
            "seeds": {k: list(v) for k, v in sorted(self.seeds.items())},
            "min_solver_cells": self.min_solver_cells,
            "solver_options": dict(sorted(self.solver_options.items())),
        }

    def describe(self) -> str:
        """One line: problem, fixed and varied parameters, split sizes."""
        fixed = ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.fixed.items()))
        varied = [f"{k} ~ {d}" for k, d in sorted(self.vary.items())]
        if self.seed_param:
            varied.append(f"{self.seed_param} (initial condition)")
        sizes = "/".join(str(self.size(s)) for s in SPLITS)
        return (
            f"{self.problem} [{fixed or 'defaults'}]; varies {', '.join(varied)}; "
            f"train/valid/test {sizes}"
        )

    # -- internals -----------------------------------------------------------------------------
    def _split_index(self, split: str) -> int:
        if split not in SPLITS:
            raise UnknownNameError("split", split, SPLITS)
        return SPLITS.index(split)

    def _check_size(self, split: str, size: Any) -> None:
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ParameterError(
                f"split {split!r} of family {self.name} needs a size >= 1 (an empty split holds "
                f"no data); got {size!r}"
            )
        cap = self.capacity(split)
        if size > cap:
            what = "explicit seeds" if split in self.seeds else f"seeds below {self.seed_space}"
            raise ParameterError(
                f"split {split!r} of family {self.name} holds at most {cap} members ({what}); "
                f"got size {size}"
            )

    def _affine(self) -> tuple[int, int]:
        digest = hashlib.sha256(f"pdekit-family:{self.seed_key or self.name}".encode()).digest()
        n = self.seed_space
        a = int.from_bytes(digest[:8], "little") % n
        b = int.from_bytes(digest[8:16], "little") % n
        a = max(a, 1)
        while math.gcd(a, n) != 1:  # a unit mod n: g -> a g + b is then a bijection of [0, n)
            a = a % (n - 1) + 1
        return a, b

    def _member(self, split: str, index: int, seed: int) -> Member:
        return Member(self.name, split, index, seed, self.problem, self.params_of(seed))

    def _check_seeds(self) -> None:
        for split, seq in self.seeds.items():
            self._split_index(split)
            if not seq:
                raise ParameterError(f"explicit seeds of split {split!r} are empty")
            bad = [s for s in seq if not 0 <= s < self.seed_space]
            if bad:
                raise ParameterError(
                    f"seeds of split {split!r} must lie in [0, {self.seed_space}); got {bad[:5]}"
                )
            repeated = sorted({s for s in seq if seq.count(s) > 1})
            if repeated:
                raise ParameterError(f"seeds of split {split!r} repeat: {repeated[:5]}")
        if not self.seeds:
            return  # derived seeds are disjoint by construction (module docstring)
        sets = {s: set(self.split_seeds(s).tolist()) for s in SPLITS}
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1 :]:
                common = sorted(sets[a] & sets[b])
                if common:
                    raise ParameterError(
                        f"splits {a!r} and {b!r} of family {self.name} overlap in seeds "
                        f"{common[:5]}; splits must be disjoint (choose seeds outside the "
                        f"other splits, see Family.split_seeds)"
                    )


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class FamilyRegistry:
    """Named families: :meth:`get`, :meth:`names`, :meth:`register`, :meth:`of_problem`."""

    def __init__(self):
        self._families: dict[str, Family] = {}

    def register(self, family: Family) -> Family:
        if family.name in self._families and self._families[family.name] != family:
            raise ValueError(f"family {family.name!r} is already registered")
        self._families[family.name] = family
        return family

    def unregister(self, name: str) -> None:
        self.get(name)
        del self._families[name]

    def names(self) -> list[str]:
        """All family names, sorted."""
        return sorted(self._families)

    def get(self, name: str) -> Family:
        """The family ``name``; UnknownNameError lists the valid names."""
        try:
            return self._families[name]
        except KeyError:
            raise UnknownNameError("family", name, self.names()) from None

    def of_problem(self, problem: str) -> list[Family]:
        """The families of a problem, by name."""
        return [self._families[n] for n in self.names() if self._families[n].problem == problem]

    def resolve(self, name: str, params: Mapping[str, Any] | None = None) -> Family:
        """A family from a family name, or from a problem name and ``params``.

        For a problem name, parameters whose fixed values tell the problem's families apart
        select one (``nu=1e-3`` picks ``kolmogorov_nu1e-3``); the other parameters, and every
        parameter given with a family name, become fixed overrides (:meth:`Family.with_overrides`).
        """
        params = dict(params or {})
        if name in self._families:
            return self._families[name].with_overrides(**params)
        candidates = self.of_problem(name)
        if not candidates:
            with_families = sorted({f.problem for f in self._families.values()})
            raise UnknownNameError(
                "family or problem with families", name, self.names() + with_families
            )
        keys = sorted({k for f in candidates for k in f.key_params})
        selecting = {k: v for k, v in params.items() if k in keys}
        for key, value in selecting.items():
            matching = [f for f in candidates if f.fixed.get(key) == value]
            if not matching:
                raise ParameterError(
                    f"no family of {name} has {key}={_short(value)}; families: "
                    + ", ".join(f"{f.name} ({key}={_short(f.fixed.get(key))})" for f in candidates)
                )
            candidates = matching
        if len(candidates) > 1:
            raise ParameterError(
                f"{name} has several families: name one ({', '.join(f.name for f in candidates)})"
                f" or set {' and '.join(keys)}"
            )
        rest = {k: v for k, v in params.items() if k not in selecting}
        return candidates[0].with_overrides(**rest)


#: the registry of named families
families = FamilyRegistry()


# -- the families -------------------------------------------------------------------------------
#: the FNO benchmark's horizon per viscosity (Li et al. 2021, Sec. 5.3): T = 50, 30, 20
KOLMOGOROV_T = {1e-3: 50.0, 1e-4: 30.0, 1e-5: 20.0}
#: fewest solver cells per axis: 64 at nu = 1e-3 (a 64^2 run differs from a 256^2 run subsampled
#: to 64^2 by 2e-8 relative at t = 50, seeds 0-1, measured); the problem's reference grid at the
#: smaller viscosities (64^2 differs from 128^2 by 2.4% at t = 30, nu = 1e-4, and 15% at t = 20,
#: nu = 1e-5, measured)
KOLMOGOROV_SOLVER_CELLS = {1e-3: 64, **{nu: kolmogorov.REFERENCE_GRID[nu] for nu in (1e-4, 1e-5)}}

for _nu, _t in KOLMOGOROV_T.items():
    families.register(
        Family(
            name=f"kolmogorov_nu{_nu:.0e}".replace("e-0", "e-"),
            problem="navier_stokes/kolmogorov",
            fixed={"nu": _nu, "t_end": _t},
            seed_param="seed",
            sizes={"train": 1000, "valid": 100, "test": 200},
            grid=64,
            times=tuple(np.arange(0.0, _t + 1.0)),
            min_solver_cells=KOLMOGOROV_SOLVER_CELLS[_nu],
            key_params=("nu",),
            description=(
                "the FNO benchmark (Li et al. 2021): vorticity from the Gaussian random field "
                "alpha = 2.5, tau = 7, one snapshot per time unit to T; 64^2 output grid"
            ),
        )
    )

#: decaying turbulence, the Navier-Stokes case of PI-HC-MoE (Chalapathi, Du & Krishnapriyan,
#: ICLR 2024): nu = 1e-4, T = 5. Simulated on 128^2 (the problem's reference grid there) and
#: subsampled; 11 snapshots, every 0.5 (CPU-sized; the paper: 64 levels, 64^2 training grid)
families.register(
    Family(
        name="decaying_turbulence",
        problem="navier_stokes/decaying_turbulence",
        fixed={"nu": 1e-4, "t_end": 5.0},
        seed_param="seed",
        sizes={"train": 1000, "valid": 100, "test": 100},
        grid=64,
        times=tuple(np.linspace(0.0, 5.0, 11)),
        min_solver_cells=128,
        description=(
            "decaying 2D turbulence (PI-HC-MoE's Navier-Stokes case, nu = 1e-4, T = 5): "
            "vorticity from the FNO benchmark's Gaussian random field (alpha = 2.5, tau = 7), "
            "no forcing, every 0.5 to T; 64^2 output grid"
        ),
    )
)

families.register(
    Family(
        name="diffusion_sorption",
        problem="porous_medium/diffusion_sorption",
        seed_param="seed",
        sizes={"train": 900, "valid": 100, "test": 100},
        seed_space=10_000,
        grid=1024,
        times=tuple(np.linspace(0.0, 500.0, 101)),
        description=(
            "PDEBench's 1D diffusion-sorption data: u0 ~ U(0, 0.2) set by the sample index "
            "(seeds are PDEBench sample indices 0-9999), 1024 cells, every 5 s to 500 s (the "
            "time step of their dataset metadata, data_gen/configs/diff-sorp.yaml)"
        ),
    )
)

#: ProbConserv's training families (Hansen et al. 2023, Sec. 4; the ranges of the shipped
#: checkpoints' FamilyConfig): heat k ~ U[1, 5], PME m ~ U[1, 6], Stefan u* ~ U[0.55, 0.7]
PROBCONSERV_RANGES = {
    "heat": ("porous_medium/heat", "k", 1.0, 5.0, 1.0),
    "pme": ("porous_medium/pme", "m", 1.0, 6.0, 1.0),
    "stefan": ("porous_medium/stefan", "u_star", 0.55, 0.7, 0.1),
}

for _short_name, (_problem, _param, _low, _high, _t1) in PROBCONSERV_RANGES.items():
    families.register(
        Family(
            name=f"probconserv_{_short_name}",
            problem=_problem,
            vary={_param: Uniform(_low, _high)},
            sizes={"train": 1000, "valid": 100, "test": 100},
            grid=128,
            times=tuple(np.linspace(0.0, _t1, 101)),
            description=(
                f"ProbConserv's GPME family (Hansen et al. 2023): {_param} ~ "
                f"U[{_low:g}, {_high:g}], 128 cells, 101 times"
            ),
        )
    )
