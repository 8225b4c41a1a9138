"""Physics-informed loss terms built from any Problem: residual, initial and boundary conditions.

Everything here uses the Problem interface only (``residual``, ``initial_condition``,
``boundary_conditions``, ``domain``, ``derivatives``), so every PINN-type solver evaluates the
same residual, written once by the problem, through an engine of the core.

Pointwise terms are returned unreduced (one value per point), so a solver can weight them
(the causal PINN groups residuals by time) before taking means.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from pdekit.core.fields import AutogradFields, Fields, parse_spec
from pdekit.core.taylor import TaylorFields
from pdekit.errors import ParameterError
from pdekit.geometries.sampling import DENSITIES, METHODS, density_options
from pdekit.geometries.spacetime import SpaceTime
from pdekit.problems.base import ExactDirichlet, Problem
from pdekit.solvers.config import check

ENGINES = ("auto", "taylor", "taylor_compiled", "autograd")


#: adaptive interior sampling: "none" or "rad" (see :class:`AdaptiveSampling`)
ADAPTIVE_METHODS = ("none", "rad")


@dataclass
class AdaptiveSampling:
    """Residual-based adaptive distribution of the interior points ("RAD"; Wu, Zhu, Tan,
    Kartha & Lu, "A comprehensive study of non-adaptive and residual-based adaptive sampling
    for physics-informed neural networks", CMAME 403:115671, 2023, eq. 2).

    Every ``every`` steps the residual is evaluated on a fresh pool of ``pool`` points of the
    domain (drawn as ``SamplingConfig.method`` says) and each pool point x gets the probability

        p(x)  proportional to  eps(x)^k / mean(eps^k) + c,

    where ``eps`` is the pointwise size of the residual (the solver says how its equations
    combine: the vanilla PINN the root sum of squares of its equations, the Lagrangian PINN of
    its weighted characteristic and state residuals). Each step's ``n_interior`` points are
    drawn from the pool, without replacement, with these probabilities (the paper keeps one such
    draw for the whole period; here a new one is drawn whenever ``resample_every`` says).
    ``k = 0`` or large ``c`` is uniform sampling; ``c = 0`` follows the residual alone. The
    paper's recommended default is ``k = 1, c = 1``. Initial and boundary points are unchanged.
    """

    #: "none" (interior points drawn by ``SamplingConfig.method``) or "rad"
    method: str = "none"
    #: exponent k of the residual
    k: float = 1.0
    #: uniform share c added to the normalised residual
    c: float = 1.0
    #: points in the pool the residual is evaluated on (at least ``n_interior``)
    pool: int = 16384
    #: steps between two evaluations of the residual on a new pool
    every: int = 100

    def __post_init__(self):
        check(self, "method", self.method, choices=ADAPTIVE_METHODS)
        check(self, "k", self.k, low=0.0, high=10.0)
        check(self, "c", self.c, low=0.0)
        check(self, "pool", self.pool, low=1, high=10**8, kind=int)
        check(self, "every", self.every, low=1, high=10**9, kind=int)

    @property
    def enabled(self) -> bool:
        return self.method != "none"


@dataclass
class SamplingConfig:
    """Collocation points."""

    #: interior (space-time) residual points per step
    n_interior: int = 2048
    #: boundary points per step (spread over the boundary conditions; 0: no boundary terms,
    #: periodicity-by-loss terms included)
    n_boundary: int = 256
    #: initial-condition points per step (time-dependent problems; 0: no initial terms)
    n_initial: int = 256
    #: sobol, halton, lhs or uniform
    method: str = "sobol"
    #: density of the interior points on a mesh: "uniform" (by volume) or "mesh" (each simplex
    #: of the mesh's cells equally likely, a quad counting as two triangles: as dense as the
    #: mesh, finer where it was refined; the mean square residual is then weighted by that
    #: density). Initial and boundary points stay uniform. Ours, not a paper's
    density: str = "uniform"
    #: draw new points every this many steps (0: keep the first draw for the whole run, or,
    #: with adaptive sampling, until the next pool)
    resample_every: int = 1
    #: residual-based adaptive sampling of the interior points (off by default)
    adaptive: AdaptiveSampling = field(default_factory=AdaptiveSampling)
    #: interior points of the one batch full-batch L-BFGS trains on after Adam (with
    #: ``train.lbfgs_steps`` > 0; 0: n_interior, as many as each Adam step). L-BFGS fits its
    #: batch for the rest of the run, so a batch larger than Adam's keeps it from fitting the
    #: residual at a few points only. Ours, not a paper's
    lbfgs_n_interior: int = 0

    def __post_init__(self):
        check(self, "n_interior", self.n_interior, low=1, high=10**8, kind=int)
        check(self, "lbfgs_n_interior", self.lbfgs_n_interior, low=0, high=10**8, kind=int)
        check(self, "n_boundary", self.n_boundary, low=0, high=10**8, kind=int)
        check(self, "n_initial", self.n_initial, low=0, high=10**8, kind=int)
        check(self, "method", self.method, choices=METHODS)
        check(self, "density", self.density, choices=DENSITIES)
        check(self, "resample_every", self.resample_every, low=0, kind=int)
        if self.adaptive.enabled and self.adaptive.pool < self.n_interior:
            raise ParameterError(
                f"SamplingConfig.adaptive.pool must be in [{self.n_interior} (n_interior), "
                f"{10**8}]: each step draws n_interior distinct points from the pool; "
                f"got {self.adaptive.pool!r}"
            )
        if self.adaptive.enabled and self.adaptive.pool < self.lbfgs_n_interior:
            raise ParameterError(
                f"SamplingConfig.lbfgs_n_interior must be in [0, {self.adaptive.pool} "
                f"(adaptive.pool)]: the L-BFGS batch is drawn from the adaptive pool; "
                f"got {self.lbfgs_n_interior!r}"
            )


@dataclass
class WeightsConfig:
    """Weights of the loss terms."""

    #: PDE residual (each equation's mean square)
    residual: float = 1.0
    #: initial condition (mean square misfit, per field)
    initial: float = 10.0
    #: boundary conditions (mean square misfit, per condition and field)
    boundary: float = 10.0

    def __post_init__(self):
        for name in ("residual", "initial", "boundary"):
            check(self, name, getattr(self, name), low=0.0)


#: training runs at least this long use the compiled Taylor engine under ``engine="auto"``
#: (compiling costs 6-10 s once; see :func:`resolve_engine`)
COMPILE_MIN_STEPS = 2000
#: ... unless a wall-clock budget shorter than this many seconds bounds them: the compile would
#: take a tenth of it or more (``pdekit compare`` at 3 s per solver: 15 s of compiling, 1 step)
COMPILE_MIN_BUDGET_S = 100.0


def has_second_derivatives(problem: Problem) -> bool:
    """Whether the problem's residual declares a derivative of second order."""
    return any(
        len(parse_spec(s, problem.coordinates)) > 1
        for specs in problem.derivatives.values()
        for s in specs
    )


def resolve_engine(
    engine: str, problem: Problem, model: torch.nn.Module, steps: int, budget_s: float = 0.0
) -> str:
    """The engine ``"auto"`` stands for in a training run of ``steps`` steps and a wall-clock
    budget of ``budget_s`` seconds (0: none) (others as given).

    Taylor where the network supports it and the residual has second derivatives (else
    autograd, faster on first derivatives), compiled when the run is long enough to repay the
    compile. Measured per step of the PINN defaults (4 x 64 tanh MLP, 2048 points, float32,
    one CPU thread, CPU time of residual + backward): Kovasznay autograd 71.5 / Taylor 38.3 /
    compiled Taylor 23.2 ms; heat 23.8 / 21.6 / 10.8; Allen-Cahn 20.7 / 30.1 / 12.3; linear
    convection (first derivatives only) 6.2 / 19.6 / 9.0; the first compiled step took 6-9 s.
    """
    if engine != "auto":
        return engine
    if not (has_second_derivatives(problem) and TaylorFields.supports(model)):
        return "autograd"
    short = 0 < budget_s < COMPILE_MIN_BUDGET_S
    return "taylor_compiled" if steps >= COMPILE_MIN_STEPS and not short else "taylor"


def make_fields(
    model: torch.nn.Module, points: torch.Tensor, problem: Problem, engine: str = "auto"
) -> Fields:
    """The fields of ``model`` at ``points`` through an engine of the core.

    ``"taylor"``: forward Taylor propagation (networks with ``forward_taylor``); ``"autograd"``:
    nested reverse mode (any network); ``"auto"``: Taylor where the network supports it and the
    problem declares second derivatives, else autograd. (``"taylor_compiled"`` is Taylor here;
    :class:`PhysicsLoss` runs it under ``torch.compile``.) Measured on 1 CPU thread, 4x64 tanh MLP,
    2048 points per step: Kovasznay (u, v, p; 2nd derivatives) 34 ms/step Taylor vs 73
    autograd; linear convection (1st derivatives only) 25 ms/step Taylor vs 14.5 autograd.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; available: {ENGINES}")
    want_taylor = engine in ("taylor", "taylor_compiled") or (
        engine == "auto" and has_second_derivatives(problem)
    )
    if want_taylor and TaylorFields.supports(model):
        return TaylorFields(model, points, problem.coordinates, problem.fields, problem.derivatives)
    if engine in ("taylor", "taylor_compiled"):
        raise ValueError(f"{type(model).__name__} has no forward_taylor: use engine 'autograd'")
    pts = points.detach().requires_grad_(True)
    out = model(pts)
    values = {name: out[:, i] for i, name in enumerate(problem.fields)}
    return AutogradFields(pts, values, problem.coordinates, problem.derivatives)


def residual_names(problem: Problem) -> list[str]:
    """Names of the problem's residual equations, in order (one cheap probe evaluation)."""
    dom = problem.domain()
    pts = torch.as_tensor(dom.sample_interior(2, np.random.default_rng(0)), dtype=torch.float64)
    pts.requires_grad_(True)
    values = {k: (pts**2).sum(dim=1) + i for i, k in enumerate(problem.fields)}
    f = AutogradFields(pts, values, problem.coordinates, problem.derivatives)
    return list(problem.residual(f))


def network_values(model: torch.nn.Module, points: torch.Tensor, problem: Problem):
    """Field values of the network at points (no derivatives)."""
    out = model(points)
    return {name: out[:, i] for i, name in enumerate(problem.fields)}


@dataclass
class Batch:
    """Collocation points of one training step (tensors on the training device)."""

    interior: torch.Tensor
    initial: torch.Tensor | None
    boundary: list[tuple[torch.Tensor, torch.Tensor]]  # per BC: (points, outward normals)
    periodic: list[tuple[int, torch.Tensor, torch.Tensor]]  # (axis, points at lo, points at hi)


def rad_probabilities(eps: np.ndarray, k: float, c: float) -> np.ndarray:
    """Probabilities ``eps^k / mean(eps^k) + c`` of :class:`AdaptiveSampling`, normalised.

    Non-finite or all-zero residuals give uniform probabilities (a diverging run is stopped by
    the trainer, not here). Each probability is at least 1e-9 of the mean, so that a draw without
    replacement finds as many distinct points as it asks for even with ``c = 0``.
    """
    e = np.abs(np.asarray(eps, dtype=np.float64)) ** k
    mean = e.mean() if e.size else 0.0
    if not np.isfinite(mean) or mean <= 0.0:
        return np.full(e.size, 1.0 / max(e.size, 1))
    p = np.maximum(e / mean + c, 1e-9)
    return p / p.sum()


class AdaptivePool:
    """The pool of residual-based adaptive sampling and its probabilities (see
    :class:`AdaptiveSampling`); part of the task's state, so a resumed run draws as the
    uninterrupted one does."""

    #: largest number of pool points whose error is evaluated in one call
    CHUNK = 8192

    def __init__(self, config: AdaptiveSampling, method: str, to_tensor, density=None):
        self.config, self.method, self.to_tensor = config, method, to_tensor
        #: keyword arguments of the domain's ``sample_interior`` for a density other than
        #: uniform (empty for uniform: every domain samples that way)
        self.density = dict(density or {})
        self.points: torch.Tensor | None = None
        self.prob: np.ndarray | None = None

    def due(self, step: int) -> bool:
        """Whether step ``step`` starts with a new pool (the first step, then every ``every``)."""
        return self.points is None or step % self.config.every == 0

    def refresh(self, domain, rng: np.random.Generator, error_fn) -> None:
        """Draw a new pool from ``domain`` and weigh it by ``error_fn(points) -> (n,)``, called
        on at most ``CHUNK`` points at a time (its graph is freed after each), so the memory
        needed does not grow with the pool."""
        points = self.to_tensor(
            domain.sample_interior(self.config.pool, rng, self.method, **self.density)
        )
        with torch.enable_grad():
            eps = torch.cat([error_fn(part).detach() for part in points.split(self.CHUNK)])
        self.points = points
        self.prob = rad_probabilities(eps.cpu().numpy(), self.config.k, self.config.c)

    def draw(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` distinct pool points drawn with the pool's probabilities."""
        idx = rng.choice(len(self.prob), size=n, replace=False, p=self.prob)
        return self.points[torch.as_tensor(idx, device=self.points.device)]

    def state_dict(self) -> dict:
        if self.points is None:
            return {}
        return {"points": self.points.detach().cpu(), "prob": torch.from_numpy(self.prob.copy())}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            self.points, self.prob = None, None
            return
        self.points = self.to_tensor(state["points"])
        self.prob = np.asarray(state["prob"], dtype=np.float64)


class PhysicsLoss:
    """Samples collocation points and evaluates the pointwise physics terms of a problem.

    Parameters
    ----------
    problem: the PDE.
    sampling: collocation settings.
    rng: numpy Generator owning all sampling randomness (its state is saved for resume).
    periodic_by_loss: enforce periodic axes by a loss (values and first derivatives equal at
        both ends); False when the network is exactly periodic there (periodic embedding).
    engine: derivative engine (see :func:`make_fields`; ``"taylor_compiled"`` compiles).
    auto: ``engine`` is what "auto" resolved to for the bare network: a model passed later
        without ``forward_taylor`` (a DistributedDataParallel wrapper) falls back to "auto".
    exact: the problem's :class:`~pdekit.problems.base.ExactDirichlet` forms when the network
        satisfies them by construction: the Dirichlet conditions they impose leave the loss
        (and take no boundary points).
    retain_graph: the loss's graph is walked backward more than once per step (the causal
        PINN's gradient-norm balancing). ``"taylor_compiled"`` then runs as ``"taylor"``, with
        a warning: torch.compile's backward donates its saved tensors and refuses a second walk
        (torch 2.13), and with donation turned off a kernel from inductor's on-disk cache gave
        gradients 2e-6 off (relative, float64) against eager Taylor in our test.
    """

    def __init__(
        self,
        problem: Problem,
        sampling: SamplingConfig,
        rng: np.random.Generator,
        *,
        device: torch.device,
        dtype: torch.dtype,
        periodic_by_loss: bool = False,
        engine: str = "auto",
        auto: bool = False,
        retain_graph: bool = False,
        exact: ExactDirichlet | None = None,
    ):
        self.problem = problem
        self.sampling = sampling
        self.rng = rng
        self.device, self.dtype = device, dtype
        self.engine = engine
        #: ``engine`` was resolved from "auto" (see :func:`resolve_engine`)
        self.auto = auto
        if retain_graph and engine == "taylor_compiled":
            warnings.warn(
                "the loss is differentiated more than once per step (retain_graph), which "
                "torch.compile's backward does not support reliably: the Taylor engine runs "
                "uncompiled (engine 'taylor')",
                RuntimeWarning,
                stacklevel=3,
            )
            self.engine = "taylor"
        self._compiled: tuple[torch.nn.Module, object] | None = None
        self.domain = problem.domain()
        offered = getattr(self.domain, "densities", ("uniform",))
        if sampling.density not in offered:
            raise ParameterError(
                f"sampling.density={sampling.density!r} needs a domain that is a mesh; "
                f"{problem.name}'s domain offers {list(offered)}"
            )
        #: ``sample_interior``'s keyword arguments for the density (none for uniform)
        self.density = density_options(sampling.density)
        #: the adaptive pool (None unless ``sampling.adaptive`` is on)
        self.adaptive = (
            AdaptivePool(sampling.adaptive, sampling.method, self._t, self.density)
            if sampling.adaptive.enabled
            else None
        )
        #: the boundary conditions left to the loss: all of the problem's, less the Dirichlet
        #: ones the network satisfies exactly (``exact``: its tags, for fields it has forms of);
        #: ``bc_numbers`` their places in the problem's list, which name the loss terms
        kept = [
            (i, bc)
            for i, bc in enumerate(problem.boundary_conditions())
            if exact is None
            or not (
                bc.kind == "dirichlet"
                and bc.tag in exact.tags
                and all(k in exact.forms for k in bc.fields)
            )
        ]
        self.bc_numbers = [i for i, _ in kept]
        self.bcs = [bc for _, bc in kept]
        self.periodic_axes = (
            [i for i, p in enumerate(self.domain.periodic) if p] if periodic_by_loss else []
        )
        if problem.time_dependent and not isinstance(self.domain, SpaceTime):
            raise ValueError(f"{problem.name}: time-dependent problems need a SpaceTime domain")

    # -- sampling ------------------------------------------------------------------------------
    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def sample(self) -> Batch:
        s, dom, rng = self.sampling, self.domain, self.rng
        if self.adaptive is not None and self.adaptive.points is not None:
            interior = self.adaptive.draw(s.n_interior, rng)
        else:
            interior = self._t(dom.sample_interior(s.n_interior, rng, s.method, **self.density))
        initial = None
        if self.problem.time_dependent and s.n_initial > 0:
            initial = self._t(dom.sample_initial(s.n_initial, rng, s.method))
        boundary, periodic = [], []
        if s.n_boundary == 0:  # no boundary points: no boundary (or periodicity) terms
            return Batch(interior, initial, boundary, periodic)
        per_bc = max(1, s.n_boundary // max(len(self.bcs) + len(self.periodic_axes), 1))
        for bc in self.bcs:
            pts, normals = dom.sample_boundary(per_bc, bc.tag, rng, s.method)
            boundary.append((self._t(pts), self._t(normals)))
        bounds = dom.bounds
        for axis in self.periodic_axes:
            pts = dom.sample_interior(per_bc, rng, s.method)
            lo, hi = pts.copy(), pts.copy()
            lo[:, axis], hi[:, axis] = bounds[0, axis], bounds[1, axis]
            periodic.append((axis, self._t(lo), self._t(hi)))
        return Batch(interior, initial, boundary, periodic)

    def refresh_pool(self, error_fn) -> None:
        """A new adaptive pool weighed by ``error_fn(points) -> (n,)`` (adaptive sampling)."""
        self.adaptive.refresh(self.domain, self.rng, error_fn)

    # -- pointwise terms -----------------------------------------------------------------------
    def residuals(
        self, model: torch.nn.Module, points: torch.Tensor, *, compiled: bool = True
    ) -> dict[str, torch.Tensor]:
        """Each equation's residual at ``points`` (n,). ``compiled=False`` runs a compiled
        Taylor engine uncompiled (a one-off evaluation on a new number of points, which would
        otherwise compile again)."""
        engine = self.engine
        if self.auto and not TaylorFields.supports(model):
            # resolved by "auto" for the bare network; a wrapper without forward_taylor
            # (DistributedDataParallel under torchrun) goes on with what "auto" gives it
            engine = "auto"
        if engine == "taylor_compiled":
            if not compiled:
                return self.problem.residual(make_fields(model, points, self.problem, "taylor"))
            return self._compiled_residual(model)(points)
        return self.problem.residual(make_fields(model, points, self.problem, engine))

    def _compiled_residual(self, model: torch.nn.Module):
        """points -> residuals by the Taylor engine under ``torch.compile`` (one per model).

        The whole forward (jet propagation and the problem's residual) is traced into one graph
        and its backward compiled with it: elementwise work of each layer is fused, which nested
        ``autograd.grad`` (the autograd engine) cannot offer. Compiling costs seconds to tens of
        seconds on the first step (and again for each new number of points), so it pays off
        on long runs; ``benchmarks/residual_engines.py`` measures the step times.
        """
        if self._compiled is None or self._compiled[0] is not model:
            if not TaylorFields.supports(model):
                raise ValueError(
                    f"{type(model).__name__} has no forward_taylor: use engine 'autograd'"
                )
            problem = self.problem

            def residual(points: torch.Tensor) -> dict[str, torch.Tensor]:
                return problem.residual(make_fields(model, points, problem, "taylor"))

            compiled = torch.compile(residual)

            def first_call(points: torch.Tensor) -> dict[str, torch.Tensor]:
                try:
                    out = compiled(points)
                except Exception as exc:  # no C++ toolchain, unsupported op...: stay correct
                    warnings.warn(
                        f"torch.compile failed ({type(exc).__name__}: {exc}); the Taylor engine "
                        "runs uncompiled",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                    self._compiled = (model, residual)
                    return residual(points)
                self._compiled = (model, compiled)
                return out

            self._compiled = (model, first_call)
        return self._compiled[1]

    def initial_misfit(self, model: torch.nn.Module, points: torch.Tensor):
        """Pointwise (prediction - u0) per field at initial points (n,)."""
        pred = network_values(model, points, self.problem)
        target = self.problem.initial_condition(points[:, :-1])
        return {k: pred[k] - target[k].to(pred[k].dtype) for k in target}

    def boundary_misfit(self, model: torch.nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Pointwise misfit of every boundary condition: ``u - g`` (Dirichlet), ``du/dn - g``
        (Neumann), ``a u + b du/dn - g`` (Robin, a and b from
        :meth:`~pdekit.problems.base.BC.coefficients`), ``b du_i/dn - p n_i - g_i``
        (traction), n the outward normal."""
        out: dict[str, torch.Tensor] = {}
        coords = self.problem.coordinates
        for i, bc, (pts, normals) in zip(self.bc_numbers, self.bcs, batch.boundary):
            target = bc.value(pts)
            tag = bc.tag or "all"
            if bc.kind == "dirichlet":
                pred = network_values(model, pts, self.problem)
                for k in bc.fields:
                    out[f"{tag}{i}/{k}"] = pred[k] - target[k].to(pred[k].dtype)
                continue
            pts_g = pts.detach().requires_grad_(True)
            vals = network_values(model, pts_g, self.problem)
            f = AutogradFields(pts_g, vals, coords)
            if bc.kind in ("robin", "traction"):
                a, b = bc.coefficients(pts)
            if bc.kind == "traction":
                for j, k in enumerate(bc.fields):
                    dn = sum(
                        f.d(k, (c,)) * normals[:, m]
                        for m, c in enumerate(coords[: normals.shape[1]])
                    )
                    lhs = b.to(dn.dtype) * dn - vals[bc.pressure] * normals[:, j].to(dn.dtype)
                    out[f"{tag}{i}/{k}"] = lhs - target[k].to(lhs.dtype)
                continue
            for k in bc.fields:
                dn = sum(
                    f.d(k, (c,)) * normals[:, j] for j, c in enumerate(coords[: normals.shape[1]])
                )
                lhs = a.to(dn.dtype) * vals[k] + b.to(dn.dtype) * dn if bc.kind == "robin" else dn
                out[f"{tag}{i}/{k}"] = lhs - target[k].to(lhs.dtype)
        for axis, lo, hi in batch.periodic:
            c = coords[axis]
            lo_g, hi_g = lo.detach().requires_grad_(True), hi.detach().requires_grad_(True)
            f_lo = AutogradFields(lo_g, network_values(model, lo_g, self.problem), coords)
            f_hi = AutogradFields(hi_g, network_values(model, hi_g, self.problem), coords)
            for k in self.problem.fields:
                out[f"periodic_{c}/{k}"] = f_lo[k] - f_hi[k]
                out[f"periodic_{c}/{k}_{c}"] = f_lo.d(k, (c,)) - f_hi.d(k, (c,))
        return out


class AdaptiveSamplingTask:
    """Mixin of a :class:`~pdekit.solvers.training.SampledTask` with a :class:`PhysicsLoss`
    ``physics``: residual-based adaptive sampling (:class:`AdaptiveSampling`) when
    ``sampling.adaptive`` is on. The task says how large its residual is at a point
    (:meth:`pointwise_error`); the pool is part of the task's state."""

    physics: PhysicsLoss

    def pointwise_error(self, points: torch.Tensor) -> torch.Tensor:
        """The size of the residual at each of ``points`` (n,), detached."""
        raise NotImplementedError

    def refresh_sampling(self, step: int) -> bool:
        pool = self.physics.adaptive
        if pool is None or not pool.due(step):
            return False
        self.physics.refresh_pool(self.pointwise_error)
        return True

    _lbfgs_batch = False  # whether the batch in use is L-BFGS's (sampling.lbfgs_n_interior)

    def begin_lbfgs(self) -> None:
        """The trainer's hook before full-batch L-BFGS draws its one batch: from here on
        batches have ``sampling.lbfgs_n_interior`` interior points (when set)."""
        n = self.physics.sampling.lbfgs_n_interior
        if n and not self._lbfgs_batch:
            self.physics.sampling = replace(self.physics.sampling, n_interior=n)
            self.batch = None  # drawn anew at the new size, whatever resample_every says
            self._lbfgs_batch = True

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.physics.adaptive is not None:
            state["adaptive"] = self.physics.adaptive.state_dict()
        state["lbfgs_batch"] = self._lbfgs_batch
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.physics.adaptive is not None:  # before the batch in use is re-drawn from it
            self.physics.adaptive.load_state_dict(state.get("adaptive", {}))
        if state.get("lbfgs_batch"):  # the batch in use was L-BFGS's: re-drawn at its size
            self.begin_lbfgs()
        super().load_state_dict(state)
