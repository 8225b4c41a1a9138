"""Training data for ProbConserv: a family of solutions of one problem, seen through few points.

Hansen et al. (2023), Sec. 4 and their ``datasets/base.py``: each function of the family is the
problem's solution for one parameter value drawn uniformly from a range (heat k ~ U[1, 5],
PME m ~ U[1, 6], Stefan u* ~ U[0.55, 0.70]); the model sees it through a context set of
``context_t`` stratified times (one uniform draw in each of the equal sub-intervals of the time
domain) times ``context_x`` sorted uniform positions, 10 x 10 = 100 points, and is trained on a
target set drawn the same way with uniform sorted times. Values come from the problem's own
reference solution, so a family member is simply the problem with one parameter replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError, UnknownNameError
from pdekit.problems.base import Problem
from pdekit.solvers.config import check


@dataclass
class FamilyConfig:
    """Which family of solutions the ANP is trained on, and how each is observed.

    The range comes from, in this order: ``param``/``low``/``high`` when ``param`` is set; the
    registered family ``name`` (:mod:`pdekit.problems.family`: ``probconserv_heat``,
    ``probconserv_pme``, ``probconserv_stefan``, the paper's ranges); the checkpoint fine-tuned
    (``init``) or the problem's shipped checkpoint; the problem's registered ProbConserv family.
    """

    #: the problem parameter varied across the family ("": from ``name``, else as above)
    param: str = ""
    #: lower end of the uniform parameter range
    low: float = 0.0
    #: upper end of the uniform parameter range
    high: float = 0.0
    #: context times per function (stratified)
    context_t: int = 10
    #: context positions per function (sorted uniform)
    context_x: int = 10
    #: training target times per function (sorted uniform)
    target_t: int = 10
    #: training target positions per function (sorted uniform)
    target_x: int = 10
    #: functions per training step
    batch: int = 16
    #: a registered family giving ``param``/``low``/``high`` when ``param`` is unset
    name: str = ""

    def __post_init__(self):
        check(self, "low", self.low)
        check(self, "high", self.high)
        if self.param and not self.high > self.low:
            raise ParameterError(
                f"FamilyConfig.high must exceed FamilyConfig.low; got [{self.low}, {self.high}]"
            )
        for name in ("context_t", "context_x", "target_t", "target_x"):
            check(self, name, getattr(self, name), low=1, high=10**5, kind=int)
        check(self, "batch", self.batch, low=1, high=10**5, kind=int)
        if not isinstance(self.name, str):
            raise ParameterError(f"FamilyConfig.name must be a family name; got {self.name!r}")


def registered_range(name: str, problem: Problem) -> tuple[str, float, float]:
    """(parameter, low, high) of the registered family ``name``, which must be a family of
    ``problem`` varying one parameter uniformly (ProbConserv's kind of family)."""
    from pdekit.problems.family import Uniform, families

    fam = families.get(name)
    if fam.problem != problem.name:
        raise ParameterError(
            f"family {name} is a family of {fam.problem}, not of {problem.name}; families of "
            f"{problem.name}: {', '.join(f.name for f in families.of_problem(problem.name))}"
        )
    uniform = {k: d for k, d in fam.vary.items() if isinstance(d, Uniform)}
    if len(uniform) != 1 or len(fam.vary) != 1:
        raise ParameterError(
            f"family {name} does not vary one parameter uniformly ({fam.vary}); ProbConserv "
            "trains on such families"
        )
    ((param, dist),) = uniform.items()
    return param, dist.low, dist.high


def problem_family(problem: Problem) -> str | None:
    """The problem's registered ProbConserv family (one uniform parameter), if any."""
    from pdekit.problems.family import families

    for fam in families.of_problem(problem.name):
        if fam.name.startswith("probconserv_"):
            return fam.name
    return None


def axes(problem: Problem) -> tuple[int, int]:
    """Column indices of the one spatial coordinate and of time."""
    coords = problem.coordinates
    space = [i for i, c in enumerate(coords) if c != "t"]
    return space[0], coords.index("t")


def member(problem: Problem, param: str, value: float) -> Problem:
    """The family member: ``problem`` with ``param`` set to ``value`` (validated)."""
    names = [f.name for f in dataclasses.fields(problem)]
    if param not in names:
        raise UnknownNameError(f"family parameter of {problem.name}", param, names)
    return dataclasses.replace(problem, **{param: value})


def stratified(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """One uniform draw in each of n equal sub-intervals of [lo, hi), increasing."""
    return lo + (hi - lo) * (np.arange(n) + rng.uniform(size=n)) / n


def sorted_uniform(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return np.sort(rng.uniform(lo, hi, size=n))


def tensor_points(problem: Problem, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """All (x, t) pairs, time-major (for each t every x), in the problem's coordinate order."""
    ix, it = axes(problem)
    pts = np.empty((len(ts) * len(xs), 2))
    pts[:, it] = np.repeat(ts, len(xs))
    pts[:, ix] = np.tile(xs, len(ts))
    return pts


def observe(problem: Problem, pts: np.ndarray) -> np.ndarray:
    """The reference value of the problem's (single) field at points."""
    return np.asarray(problem.reference()(pts)[problem.fields[0]], dtype=np.float64)


def context_set(problem: Problem, family: FamilyConfig, rng: np.random.Generator):
    """Context points (n, 2) and values (n,) of one function: stratified t x sorted uniform x."""
    b = problem.domain().bounds
    ix, it = axes(problem)
    ts = stratified(rng, family.context_t, b[0, it], b[1, it])
    xs = sorted_uniform(rng, family.context_x, b[0, ix], b[1, ix])
    pts = tensor_points(problem, xs, ts)
    return pts, observe(problem, pts)


def target_set(problem: Problem, family: FamilyConfig, rng: np.random.Generator):
    """Training targets (n, 2), (n,): sorted uniform t x sorted uniform x."""
    b = problem.domain().bounds
    ix, it = axes(problem)
    ts = sorted_uniform(rng, family.target_t, b[0, it], b[1, it])
    xs = sorted_uniform(rng, family.target_x, b[0, ix], b[1, ix])
    pts = tensor_points(problem, xs, ts)
    return pts, observe(problem, pts)


@dataclass
class FamilyBatch:
    """One training batch of B functions, as tensors: contexts, targets and parameter values."""

    cx: torch.Tensor
    cy: torch.Tensor
    tx: torch.Tensor
    ty: torch.Tensor
    values: np.ndarray
    members: list[Problem]


def sample_batch(
    problem: Problem,
    family: FamilyConfig,
    rng: np.random.Generator,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> FamilyBatch:
    """B functions with parameter ~ U[low, high], each with its context and target sets."""
    values = rng.uniform(family.low, family.high, size=family.batch)
    cx, cy, tx, ty, members = [], [], [], [], []
    for v in values:
        p = member(problem, family.param, float(v))
        c = context_set(p, family, rng)
        t = target_set(p, family, rng)
        cx.append(c[0])
        cy.append(c[1])
        tx.append(t[0])
        ty.append(t[1])
        members.append(p)

    def as_t(a):
        return torch.as_tensor(np.stack(a), dtype=dtype, device=device)

    return FamilyBatch(as_t(cx), as_t(cy), as_t(tx), as_t(ty), values, members)
