"""Causal PINN: residuals weighted in time so that early times are fitted before late ones.

Wang, Sankaran & Perdikaris, "Respecting causality is all you need for training physics-informed
neural networks", arXiv:2203.07404 (2022), Algorithm 1.  The collocation points of each step are
grouped into N time chunks t_1 < ... < t_N with temporal losses ::

    L_i = mean over chunk i of  sum_eq |R_eq[u_theta]|^2   (+ lambda_bc * boundary misfit, remark 1)

and the loss is (eq. 3.4, initial condition as the t_0 term L_0 = lambda_ic L_ic of the chain)

    L(theta) = (1/N) [ L_0 + sum_{i=1}^N w_i L_i ],   w_i = exp(-eps (L_0 + sum_{k<i} L_k))

with the weights detached (:mod:`pdekit.solvers.causal_weights`).  Epsilon is annealed over
``causal.eps``; each stage ends when min_i w_i > delta or its budget is spent; the optimiser
state and learning-rate schedule carry over from stage to stage.  Chunks are either the time
slices of a tensor-product batch (N sorted times x M spatial points: the paper) or equal-count
chunks of random points sorted by time (Wang et al. 2023, "An expert's guide to training PINNs",
the jaxpi code, there with one fixed epsilon).  Time marching: the time interval is split into
windows, each with its own network, trained one after the other; window k's initial condition
is window k-1's prediction at their common time.  Two options the paper does not state, off by
default: ``warm_start`` starts window k's network from window k-1's trained parameters (each
network scales time over its own window, so this is the previous solution shifted by one window
length) instead of a fresh initialisation, and ``overlap`` trains each window a little past its
end (the jaxpi code extends windows by 2 dt), so the next initial condition is read inside the
trained span rather than at its last, least-weighted chunk.  Measured on convection at
beta = 50 (600 s, one CPU thread, ``benchmarks/causal_pinn.py``): 16 fresh windows broke down at
t = 0.78 (rel_l2 0.56); 8 warm-started windows reached 8.8e-3.

As in the paper (§3, §5, Alg. 1): exclusive cumulative sums under stop-gradient; eps annealed
over 1e-2, 1e-1, 1, 10, 100 with delta = 0.99 checked every step; lambda_ic = 1e3; Adam, lr
1e-3 decayed by 0.9 every 5000 steps, no L-BFGS; the optimiser state carried across stages and
a fresh learning-rate schedule per window; modified MLP, 4 x 128, tanh, Glorot; N sorted times
x M spatial points per step. Deviations from the paper, and from the authors' code
(github.com/PredictiveIntelligenceLab/CausalPINNs) where the two differ, each with its reason
and the setting that restores the original where one exists:

* **initial condition inside the chain** (``causal.initial_in_chain=True``), as eq. 3.4 reads:
  L_0 = lambda_ic L_ic enters every weight's exponent and the loss as L_0 / N. This follows the
  paper; the authors' scripts differ from it and from each other. Their KS and NS scripts put
  L_0 in every exponent too but add it to the loss unscaled, mean(w L) + L_0: N times our
  initial weight (32x at the default 32 chunks). Their Allen-Cahn notebook and jaxpi keep it
  out of the exponent: mean(w L) + lambda_ic L_ic. Reason: the paper is the specification,
  and the codes disagree. ``causal.initial_in_chain=False`` gives the notebook's and jaxpi's
  form (the notebook's weight: ``weights.initial=100``). No setting gives the KS/NS scripts'
  form, which needs L_0 in the exponent and L_0 itself, not L_0 / N, in the loss.
* **one periodic harmonic** (``network.periodic_harmonics=1``, the default of every pdekit
  network): features cos(w x), sin(w x). The authors' scripts use M = 10 harmonics for
  Allen-Cahn and M = 5 for KS, plus a constant feature 1 (redundant beside the first layer's
  bias, so it is left out). Reason: M is chosen per problem there, so no one value is the
  paper's default; on the CPU benchmark's Allen-Cahn, two harmonics did not help (3.0e-2,
  against 2.5e-2 to 3.5e-2 for the other variants tried; README). The scripts' setting:
  ``network.periodic_harmonics=10`` (Allen-Cahn) or ``5`` (KS).
* **time scaled to [-1, 1]** over each window's network (its span, overlap included), as the
  shared input embedding scales every bounded coordinate; the authors' code feeds raw t, jaxpi
  t / t_end in [0, 1]. Reason: centred tanh inputs at Glorot initialisation. An affine input map
  is absorbed by the first layer, so the function class is the same and only the
  initialisation differs. No setting.
* **Sobol points** (``sampling.method="sobol"``, scrambled, redrawn every step): the N sorted
  chunk times and the M spatial points shared by every chunk are low-discrepancy draws. The
  authors' KS and NS scripts and jaxpi draw uniformly at random; the Allen-Cahn notebook keeps
  one fixed 100 x 256 grid. Reason: the shared sampler's default, which covers the interval
  more evenly than as many random points. Random draws: ``sampling.method="uniform"``; no fixed
  grid (``sampling.resample_every=0`` keeps the first draw).
* **stage budgets** (``causal.stage_steps=0``): the training budget (``train.steps``, or
  ``train.time_budget_s``) is shared out among windows and stages as training goes, and a stage
  that meets the criterion early hands its remainder on. In Alg. 1 every epsilon stage has up
  to S steps of its own (1e5 to 3e5 in the authors' code). Reason: a pdekit run has one total
  budget, in steps or seconds, that every stage must fit in. Alg. 1: ``causal.stage_steps=S``
  with ``train.steps >= causal.windows * len(causal.eps) * S``.
* **non-periodic boundary conditions in the chain** (``causal.boundary_in_chain=True``): each
  chunk's boundary misfit, times ``weights.boundary``, is added to its L_i, as remark 1 proposes.
  The paper's cases are all periodic, enforced exactly, as here with
  ``periodic_harmonics >= 1``. A separate term instead: ``causal.boundary_in_chain=False``.
* **systems**: the equations' squared residuals are summed with equal weights in one chain.
  The paper weights Navier-Stokes continuity by lambda_c = 100 (its code:
  mean(r_w^2 + 100 r_c^2)); jaxpi keeps one chain per equation and takes the smaller weight.
  Reason: a problem states its equations unweighted. No setting (``weights.residual`` scales
  all equations alike).
* **weights below 1e-30 are set to 0** (:data:`~pdekit.solvers.causal_weights.WEIGHT_FLOOR`).
  Reason: exp(-eps S) underflows to subnormal floats, which are slow on CPUs, and such a weight
  changes nothing a float32 step can resolve. No setting.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pdekit.core.taylor import TaylorFields
from pdekit.errors import ParameterError
from pdekit.geometries.spacetime import SpaceTime, TimeDomain
from pdekit.problems.base import Problem
from pdekit.solvers import distributed
from pdekit.solvers.causal_weights import (
    AnnealingSchedule,
    causal_weights,
    chunk_means,
    grad_norm_weights,
)
from pdekit.solvers.config import check
from pdekit.solvers.networks import NetworkConfig, build_mlp
from pdekit.solvers.physics import Batch, PhysicsLoss, SamplingConfig, WeightsConfig, network_values
from pdekit.solvers.pinn import PINN, PINNTask
from pdekit.solvers.registry import register_solver
from pdekit.solvers.training import TrainConfig

CHUNKINGS = ("slices", "sorted")
CAUSAL_ENGINES = ("autograd", "taylor", "taylor_compiled")


@dataclass
class CausalConfig:
    """The causal weighting, its epsilon annealing and time marching."""

    #: epsilon of each annealing stage, in order (paper: 1e-2..1e2; jaxpi: one fixed 1.0)
    eps: tuple[float, ...] = (1e-2, 1e-1, 1.0, 10.0, 100.0)
    #: a stage ends when the smallest causal weight of a step exceeds delta (paper: 0.99)
    delta: float = 0.99
    #: test the criterion every this many steps of a stage (1: every step, as Alg. 1)
    check_every: int = 1
    #: most steps of one stage (the paper's S); 0: share the budget (``train.steps``, or
    #: ``train.time_budget_s`` when set) among windows and stages as training goes
    stage_steps: int = 0
    #: stop when the last stage meets the criterion (paper §5.1: stopping there is more accurate)
    early_stop: bool = True
    #: number of time chunks N
    chunks: int = 32
    #: "slices": N sorted random times x (n_interior / N) spatial points, one chunk per time
    #: (paper); "sorted": n_interior random points sorted by time into N equal-count chunks
    #: (jaxpi)
    chunking: str = "slices"
    #: the initial-condition loss heads the chain as the t_0 term (paper eq. 3.4), L_0 / N in
    #: the loss; False: it is a separate, unweighted term lambda_ic L_ic, outside the exponent
    #: (jaxpi and the paper's Allen-Cahn code). The authors' KS and NS scripts do neither: L_0
    #: in the exponent and the loss mean(w L) + L_0 (see the module docstring)
    initial_in_chain: bool = True
    #: add each chunk's boundary misfit to its temporal loss (paper remark 1); False: separate term
    boundary_in_chain: bool = True
    #: time-marching windows, each with its own network, trained in order
    windows: int = 1
    #: start each window's network from the previous window's trained parameters (in the
    #: window's own time coordinate) instead of a fresh initialisation
    warm_start: bool = False
    #: each window but the last trains on [t_k, t_{k+1} + overlap (t_{k+1} - t_k)], so the
    #: next window's initial condition is taken inside the span its network was trained on
    #: rather than at its last, least-weighted chunk (jaxpi extends each window by 2 dt); the
    #: solution still switches networks at t_{k+1}
    overlap: float = 0.0
    #: flush subnormal floats to zero during the fit (exp(-eps S) underflows; subnormals are
    #: slow on CPUs); restored afterwards
    flush_denormal: bool = True
    #: rebalance the weights of the residual, initial (and unchained boundary) terms by their
    #: gradient norms every this many steps of a window (0: off; Wang et al. 2023 use 1000).
    #: It differentiates the loss once per term, which torch.compile's backward does not
    #: allow: with it, engine "taylor_compiled" runs as "taylor" (with a warning). Measured
    #: on Taylor-Green (600 s, 1 CPU thread, benchmark settings): 1000 -> rel_l2 0.98, off ->
    #: 3.4e-2, both with eager Taylor and about 7900 steps
    grad_norm_every: int = 0
    #: moving-average momentum of the balanced weights (the first update of a window sets them)
    grad_norm_momentum: float = 0.9

    def __post_init__(self):
        if not isinstance(self.eps, list | tuple):
            raise ParameterError(
                f"CausalConfig.eps must be a list of numbers in [1e-12, 1e12]; got {self.eps!r}"
            )
        self.eps = tuple(self.eps)
        if not self.eps:
            raise ParameterError("CausalConfig.eps must list at least one epsilon")
        for e in self.eps:
            check(self, "eps", e, low=1e-12, high=1e12)
        check(self, "delta", self.delta, low=0.0, high=1.0)
        check(self, "check_every", self.check_every, low=1, kind=int)
        check(self, "stage_steps", self.stage_steps, low=0, kind=int)
        check(self, "chunks", self.chunks, low=1, high=100000, kind=int)
        check(self, "chunking", self.chunking, choices=CHUNKINGS)
        check(self, "windows", self.windows, low=1, high=10000, kind=int)
        check(self, "overlap", self.overlap, low=0.0, high=1.0)
        check(self, "grad_norm_every", self.grad_norm_every, low=0, kind=int)
        check(self, "grad_norm_momentum", self.grad_norm_momentum, low=0.0, high=1.0)


@dataclass
class CausalPINNConfig:
    """Configuration of the causal PINN (defaults from the paper, §5 and Table 3)."""

    network: NetworkConfig = field(
        default_factory=lambda: NetworkConfig(width=128, depth=4, kind="modified_mlp")
    )
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(n_interior=4096))
    #: residual, initial (lambda_ic = 1e3, paper §5) and boundary weights
    weights: WeightsConfig = field(default_factory=lambda: WeightsConfig(initial=1e3))
    #: Adam, lr 1e-3 decayed by 0.9 every 5000 steps (paper §5)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(decay_every=5000))
    causal: CausalConfig = field(default_factory=CausalConfig)
    #: derivative engine of the core: "autograd" (nested autograd), "taylor" (forward jets) or
    #: "taylor_compiled" (the jets under torch.compile: seconds to compile once per window,
    #: then the fastest step for second-derivative residuals; see
    #: :func:`pdekit.solvers.physics.resolve_engine` for measured step times)
    engine: str = "autograd"

    def __post_init__(self):
        check(self, "engine", self.engine, choices=CAUSAL_ENGINES)
        if self.train.lbfgs_steps:
            raise ParameterError(
                f"CausalPINNConfig.train.lbfgs_steps must be 0 (got {self.train.lbfgs_steps}): "
                "the causal PINN trains with Adam alone (Wang, Sankaran & Perdikaris 2022, "
                "Alg. 1): its annealing schedule and time windows own the whole run, which ends "
                "with the last window's last stage"
            )
        if self.sampling.adaptive.enabled:
            raise ParameterError(
                f"CausalPINNConfig.sampling.adaptive.method must be 'none' (got "
                f"{self.sampling.adaptive.method!r}): the causal PINN draws its residual points "
                "chunk by chunk in time, evenly, for its causal weights (Wang, Sankaran & "
                "Perdikaris 2022, eq. 12); residual-based sampling would move them between chunks"
            )
        if self.sampling.density != "uniform":
            raise ParameterError(
                f"CausalPINNConfig.sampling.density must be 'uniform' (got "
                f"{self.sampling.density!r}): the causal PINN draws its own points chunk by "
                "chunk in time (pinn offers 'mesh')"
            )
        n, c = self.sampling.n_interior, self.causal.chunks
        if n % c or n < c:
            raise ParameterError(
                f"sampling.n_interior ({n}) must be a positive multiple of causal.chunks ({c})"
            )


# -- networks ----------------------------------------------------------------------------------
class WindowedNetwork(nn.Module):
    """One network per time window: points with t in [t_k, t_{k+1}) go to network k.

    The last window also takes t = t_end.  Each window's network scales time by its own window.
    """

    def __init__(self, nets: list[nn.Module], edges: np.ndarray):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float64), False)

    def window_of(self, t: torch.Tensor) -> torch.Tensor:
        """Window index of each time (n,)."""
        return torch.bucketize(t.detach(), self.edges[1:-1].to(t.dtype), right=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.nets) == 1:
            return self.nets[0](x)
        k = self.window_of(x[:, -1].contiguous())
        parts = [(k == i).nonzero().squeeze(1) for i in range(len(self.nets))]
        outs = [net(x[idx]) for net, idx in zip(self.nets, parts)]
        out = outs[0].new_empty((x.shape[0], outs[0].shape[1]))
        for idx, o in zip(parts, outs):
            out[idx] = o
        return out


def training_spans(edges: list[float], overlap: float) -> list[tuple[float, float]]:
    """The time span each window's network trains on: its window, extended past its end by
    ``overlap`` times its length (all windows but the last)."""
    spans = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        spans.append((a, b if last else b + overlap * (b - a)))
    return spans


# -- sampling and chunked losses ---------------------------------------------------------------
@dataclass
class CausalBatch(Batch):
    """A batch whose interior (and boundary) points are ordered in time and chunked."""

    #: chunk index (n_interior,) of each interior point, non-decreasing
    chunk: torch.Tensor | None = None
    #: chunk index of each boundary point (every condition shares the same times)
    boundary_chunk: torch.Tensor | None = None


class CausalPhysics(PhysicsLoss):
    """Physics terms of one time window, with points drawn in time-ordered chunks."""

    def __init__(self, problem: Problem, config: CausalPINNConfig, rng, *, device, dtype):
        super().__init__(
            problem,
            config.sampling,
            rng,
            device=device,
            dtype=dtype,
            periodic_by_loss=config.network.periodic_harmonics == 0,
            engine=config.engine,
            retain_graph=config.causal.grad_norm_every > 0,  # grad_norm_weights walks it again
        )
        self.causal = config.causal
        self.window = self.domain

    def set_window(self, t0: float, t1: float) -> None:
        """Draw points in the time window [t0, t1] from now on."""
        self.window = SpaceTime(self.domain.space, TimeDomain(t0, t1))

    def residuals(self, model: nn.Module, points: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.engine == "taylor":
            p = self.problem
            return p.residual(TaylorFields(model, points, p.coordinates, p.fields, p.derivatives))
        return super().residuals(model, points)

    def _times(self, n: int) -> np.ndarray:
        return np.sort(self.window.sample_times(n, self.rng, self.sampling.method))

    def sample(self) -> CausalBatch:
        s, c, win, rng = self.sampling, self.causal, self.window, self.rng
        n_chunks = c.chunks
        per_chunk = s.n_interior // n_chunks
        space = win.space
        if c.chunking == "slices":  # tensor product: every spatial point at every chunk time
            xs = space.sample_interior(per_chunk, rng, s.method)
            ts = self._times(n_chunks)
            interior = np.concatenate(
                [np.tile(xs, (n_chunks, 1)), np.repeat(ts, per_chunk)[:, None]], axis=1
            )
        else:  # random points, sorted by time (all columns permuted together)
            interior = win.sample_interior(s.n_interior, rng, s.method)
            interior = interior[np.argsort(interior[:, -1], kind="stable")]
        chunk = np.repeat(np.arange(n_chunks), per_chunk)
        initial = None
        if s.n_initial > 0:
            initial = self._t(win.sample_initial(s.n_initial, rng, s.method))
        boundary, periodic, bchunk = [], [], None
        n_conditions = len(self.bcs) + len(self.periodic_axes)
        if n_conditions and s.n_boundary:
            per_condition = max(1, s.n_boundary // n_conditions)
            if c.chunking == "slices":
                per = max(1, per_condition // n_chunks)
                tb, cb = np.repeat(ts, per), np.repeat(np.arange(n_chunks), per)
            else:
                tb = self._times(per_condition)
                ends = interior[per_chunk - 1 : -1 : per_chunk, -1]  # last time of chunks 0..N-2
                cb = np.searchsorted(ends, tb, side="left")
            m = len(tb)
            bchunk = torch.as_tensor(cb, device=self.device)
            for bc in self.bcs:
                pts, normals = space.sample_boundary(m, bc.tag, rng, s.method)
                if len(pts) != m:
                    raise ValueError(f"{type(space).__name__}.sample_boundary gave {len(pts)}/{m}")
                boundary.append((self._t(np.concatenate([pts, tb[:, None]], 1)), self._t(normals)))
            bounds = space.bounds
            for axis in self.periodic_axes:
                xs_p = space.sample_interior(m, rng, s.method)
                lo, hi = xs_p.copy(), xs_p.copy()
                lo[:, axis], hi[:, axis] = bounds[0, axis], bounds[1, axis]
                periodic.append(
                    (
                        axis,
                        self._t(np.concatenate([lo, tb[:, None]], 1)),
                        self._t(np.concatenate([hi, tb[:, None]], 1)),
                    )
                )
        return CausalBatch(
            self._t(interior),
            initial,
            boundary,
            periodic,
            chunk=torch.as_tensor(chunk, device=self.device),
            boundary_chunk=bchunk,
        )

    def chunk_losses(
        self, model: nn.Module, batch: CausalBatch, weights: WeightsConfig
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Temporal losses L_1..L_N (N,), the unweighted boundary loss kept outside the chain
        (scalar, 0 when folded in) and the mean-square terms for logging."""
        n = self.causal.chunks
        res = self.residuals(model, batch.interior)
        terms = {f"residual/{k}": r.square().mean() for k, r in res.items()}
        pointwise = weights.residual * sum(r.square() for r in res.values())
        losses = chunk_means(pointwise, batch.chunk, n)
        outside = losses.new_zeros(())
        misfit = self.boundary_misfit(model, batch)
        if misfit:
            terms.update({f"boundary/{k}": r.square().mean() for k, r in misfit.items()})
            if self.causal.boundary_in_chain:
                b = sum(r.square() for r in misfit.values())
                losses = losses + weights.boundary * chunk_means(b, batch.boundary_chunk, n)
            else:
                outside = sum(r.square().mean() for r in misfit.values())
        return losses, outside, terms

    def initial_terms(
        self, model: nn.Module, points: torch.Tensor, previous: nn.Module | None
    ) -> dict[str, torch.Tensor]:
        """Mean-square initial misfit per field; the target is the previous window's network
        at the window's start time when given, else the problem's initial condition."""
        if previous is None:
            misfit = self.initial_misfit(model, points)
        else:
            pred = network_values(model, points, self.problem)
            with torch.no_grad():
                target = network_values(previous, points, self.problem)
            misfit = {k: pred[k] - target[k] for k in pred}
        return {f"initial/{k}": r.square().mean() for k, r in misfit.items()}


# -- training task -----------------------------------------------------------------------------
class CausalPINNTask(PINNTask):
    """Training task of the causal PINN: chunked, causally weighted loss and its schedule.

    Under ``torchrun`` every process draws its own batch in the same chunks; the causal
    weights come from the chunk losses averaged over the processes (those of the global
    batch), gradient-norm weights are averaged likewise and the schedule runs on rank 0's
    clock, so every process weights, anneals and switches windows at the same step. It trains
    one window's network at a time, outside a DDP wrapper: the Trainer averages the
    gradients (``average_gradients``).
    """

    average_gradients = True

    def __init__(
        self, problem: Problem, config: CausalPINNConfig, model: WindowedNetwork, rng, device
    ):
        super().__init__(problem, config, model, rng, device)
        c = config.causal
        self.dist = distributed.current()
        self.physics = CausalPhysics(
            problem, config, rng, device=device, dtype=config.train.torch_dtype
        )
        self.spans = training_spans(model.edges.tolist(), c.overlap)
        for a, b in self.spans:  # refuse too-short windows now, not at a window switch
            try:
                TimeDomain(a, b)
            except ParameterError as e:
                raise ParameterError(f"causal.windows = {c.windows}: a window {e}") from None
        budget = config.train.time_budget_s
        total = budget if budget > 0 else config.train.steps
        self.schedule = AnnealingSchedule(
            c.eps,
            c.delta,
            windows=c.windows,
            total=total,
            stage_steps=c.stage_steps,
            early_stop=c.early_stop,
            check_every=c.check_every,
        )
        self.physics.set_window(*self.spans[0])
        self.elapsed = 0.0  # seconds of training (between the first and the last step)
        self._tick: float | None = None
        self.weights: torch.Tensor | None = None  # causal weights of the last loss evaluation
        self.last = {
            "eps": self.schedule.epsilon,
            "stage": 0,
            "window": 0,
            "min_w": float("nan"),
            "train_s": 0.0,
        }
        self.records: dict[str, list] = {k: [] for k in ("step", "window", "stage", "eps")}
        self.records["weights"] = []
        w = config.weights
        #: weights of the loss terms: the config's, or balanced by gradient norms
        self.lambdas = {"residual": 1.0, "initial": w.initial, "boundary": w.boundary}
        self._step = 0
        self._window_start = 0  # first step of the window being trained
        self._new_window = False  # whether the last after_step switched windows

    @property
    def net(self) -> nn.Module:
        """The network of the window being trained."""
        return self.model.nets[self.schedule.window]

    def next_batch(self, step: int) -> None:
        self._step = step
        if self._tick is None:
            self._tick = time.perf_counter()
        super().next_batch(step)

    def loss(self):
        cfg, b, k = self.config, self.batch, self.schedule.window
        losses, outside, terms = self.physics.chunk_losses(self.net, b, cfg.weights)
        ic = losses.new_zeros(())
        if b.initial is not None:
            previous = self.model.nets[k - 1] if k > 0 else None
            ic_terms = self.physics.initial_terms(self.net, b.initial, previous)
            terms.update(ic_terms)
            ic = sum(ic_terms.values())
        lam = self.lambdas
        initial = lam["initial"] * ic
        n = cfg.causal.chunks
        eps = self.schedule.epsilon
        shared = self._over_ranks(torch.cat([losses.detach(), initial.detach().reshape(1)]))
        if cfg.causal.initial_in_chain:
            w = causal_weights(shared[:-1], eps, shared[-1])
            residual = (w * losses).sum() / n
            total = lam["residual"] * residual + initial / n
        else:
            w = causal_weights(shared[:-1], eps)
            residual = (w * losses).mean()
            total = lam["residual"] * residual + initial
        self.weights = w
        every = cfg.causal.grad_norm_every
        if every and (self._step - self._window_start) % every == 0:
            # balance the terms as they enter the loss: in the chain the initial term is
            # lambda * ic / N
            ic_term = ic / n if cfg.causal.initial_in_chain else ic
            parts = {"residual": residual, "initial": ic_term, "boundary": outside}
            parts = {key: v for key, v in parts.items() if v.requires_grad}
            new = grad_norm_weights(parts, list(self.net.parameters()))
            if self.dist.enabled:  # every process must weight its terms alike
                new = dict(zip(new, self.dist.mean(list(new.values())), strict=True))
            self._rebalance(new)
        return total + lam["boundary"] * outside, terms

    def _over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        """Mean of a (detached) vector over the processes; the vector itself in one."""
        if not self.dist.enabled:
            return values
        means = self.dist.mean(list(values))
        return torch.tensor(means, dtype=values.dtype, device=values.device)

    def _rebalance(self, new: dict[str, float]) -> None:
        """Moving average of gradient-norm weights; the first update of a window sets them."""
        first = self._step == self._window_start
        m = 0.0 if first else self.config.causal.grad_norm_momentum
        for key, value in new.items():
            self.lambdas[key] = m * self.lambdas[key] + (1.0 - m) * value

    def after_step(self, step: int, terms) -> bool:
        now = time.perf_counter()
        if self._tick is not None:
            self.elapsed += now - self._tick
        self._tick = now
        sched = self.schedule
        min_w = float(self.weights.min())
        timed = self.config.train.time_budget_s > 0
        seconds = self.elapsed
        if timed and self.dist.enabled:  # rank 0's clock decides for all, as the Trainer's does
            seconds = self.dist.sum([self.elapsed if self.dist.is_writer else 0.0])[0]
        self.last = {
            "eps": sched.epsilon,
            "stage": sched.stage,
            "window": sched.window,
            "min_w": min_w,
            "train_s": seconds,  # the seconds clock the schedule saw at this step
        }
        clock = seconds if timed else float(step)
        weights = self.weights.detach().to("cpu", torch.float64)
        event = sched.update(step, clock, min_w)
        if event or step % self.config.train.log_every == 0:
            for key in ("window", "stage", "eps"):
                self.records[key].append(self.last[key])
            self.records["step"].append(step)
            self.records["weights"].append(weights)
        self._new_window = event == "window"
        if event == "window":
            self._window_start = step
            if self.config.causal.warm_start:
                # parameters and persistent buffers (Fourier features); the time scaling of
                # each window is a non-persistent buffer and stays the window's own
                self.net.load_state_dict(self.model.nets[sched.window - 1].state_dict())
            self.physics.set_window(*self.spans[sched.window])
            self.batch = None  # draw in the new window at the next step
            self._draw_state = None  # so a checkpoint taken here resumes with a fresh draw
        return event == "finished"

    def new_problem(self) -> bool:
        """The step just taken ended a window: the next one is a new network's problem, with
        its own learning-rate schedule (the paper's code builds a new model and optimiser per
        window)."""
        return self._new_window

    def finished(self) -> bool:
        return self.schedule.finished

    def _schedule_state(self, state: dict) -> dict:
        """The schedule's saved state; for checkpoints written before it kept its budget and
        clock, those are recovered: the clock from the last recorded step (or the seconds),
        and a finished run counts as stopped by its budget unless the criterion could have
        ended it (early_stop and a last min w above delta). A finished run's old budget is
        taken as its clock, so a larger budget resumes it; an unfinished run keeps its plan."""
        sched = dict(state["schedule"])
        if "total" in sched:
            return sched
        c = self.config
        steps = state["records"]["step"]
        if c.train.time_budget_s > 0:
            clock = float(state["elapsed"])
        else:
            clock = float(steps[-1]) if len(steps) else 0.0
        met = c.causal.early_stop and float(state["last"]["min_w"]) > c.causal.delta
        finished = bool(sched["finished"])
        sched.update(
            total=clock if finished else self.schedule.total,
            clock=clock,
            budget_spent=finished and not met,
        )
        return sched

    def status(self) -> dict[str, float]:
        out = dict(self.last)
        if self.config.causal.grad_norm_every:
            out.update({f"lambda_{k}": v for k, v in self.lambdas.items()})
        return out

    def weight_history(self) -> dict[str, torch.Tensor]:
        """Recorded causal weights: step, window, stage, eps (n,) and weights (n, chunks)."""
        r = self.records
        n_chunks = self.config.causal.chunks
        return {
            "step": torch.tensor(r["step"], dtype=torch.int64),
            "window": torch.tensor(r["window"], dtype=torch.int64),
            "stage": torch.tensor(r["stage"], dtype=torch.int64),
            "eps": torch.tensor(r["eps"], dtype=torch.float64),
            "weights": torch.stack(r["weights"])
            if r["weights"]
            else torch.zeros(0, n_chunks, dtype=torch.float64),
        }

    def state_dict(self) -> dict:
        return {
            "base": super().state_dict(),
            "schedule": self.schedule.state_dict(),
            "elapsed": self.elapsed,
            "last": dict(self.last),
            "weights": None if self.weights is None else self.weights.detach().cpu().clone(),
            "records": self.weight_history(),
            "lambdas": dict(self.lambdas),
            "window_start": self._window_start,
        }

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(self._schedule_state(state))
        k = self.schedule.window
        self.physics.set_window(*self.spans[k])
        super().load_state_dict(state["base"])  # re-draws the batch in use, in this window
        self.elapsed = float(state["elapsed"])
        self._tick = None
        self.last = dict(state["last"])
        self.last.setdefault("train_s", self.elapsed)  # checkpoints written before it was kept
        w = state["weights"]
        self.weights = None if w is None else w.to(self.model.edges.device)
        rec = state["records"]
        self.records = {k: rec[k].tolist() for k in ("step", "window", "stage", "eps")}
        self.records["weights"] = list(rec["weights"].to(torch.float64))
        self.lambdas = {k: float(v) for k, v in state["lambdas"].items()}
        self._window_start = int(state["window_start"])


@contextlib.contextmanager
def flush_denormal(enabled: bool = True):
    """Flush subnormal floats to zero inside the block (CPU, where supported)."""
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


# -- presets: the settings of benchmarks/causal_pinn.py, measured there ---------------------------
#: the benchmark's CPU-sized network and batch, with the modified MLP and 32 causal chunks; a
#: stage ends on the causal criterion only
_BENCHMARK_CPU = {
    "network.width": 64,
    "network.depth": 3,
    "sampling.n_interior": 2048,
    "sampling.n_initial": 256,
    "sampling.n_boundary": 256,
    "network.kind": "modified_mlp",
    "causal.chunks": 32,
    "causal.stage_steps": 10**9,
}


#: per problem, the causal PINN's derivative engine, measured fastest on this CPU (median of the
#: step-to-step differences of ``train_s`` in the history over steps 20-150 of a 150-step run
#: at the settings above, one thread, 2026-11-23, in ms; autograd / taylor / taylor_compiled):
#: allen_cahn 40.1 / 51.5 / 28.7, burgers 45.1 / 55.3 / 38.6, taylor_green 128.1 / 63.4 / 29.4,
#: convection_beta50 (first derivatives only) 19.1 / 38.6 / 26.9 -> autograd, the default.
#: The compiled engine's first step compiles (about 10 s, counted in the budget). The vanilla
#: PINN keeps its "auto" engine (compiled Taylor for these long runs where the residual has
#: second derivatives, see pdekit.solvers.physics.resolve_engine).
_BENCHMARK_ENGINE = {
    "convection_diffusion/allen_cahn": "taylor_compiled",
    "convection_diffusion/burgers": "taylor_compiled",
    "navier_stokes/taylor_green": "taylor_compiled",
}


#: per problem, the causal PINN's time marching: windows trained one after the other, each
#: starting from the previous window's network (``causal.warm_start``), all sharing the budget
#: as training goes (``causal.stage_steps`` 0), eps up to 1. Measured one at a time before the
#: full run (600 s, one thread, seed 0; rel_l2, one window with the paper's eps list and stages
#: ending on the criterion only -> these settings; pressure compared up to its constant):
#: convection_beta50 0.914 -> 8.8e-3 (16 windows without warm start: 0.556, the chain broke at
#: t = 0.78; 16 warm windows: 1.8e-2, the handoff error grew to 3.2e-2 at t = 1);
#: allen_cahn 0.125 -> 3.6e-2 with 4 windows (ending the last window on the criterion: 4.3e-2
#: after 444 s) -> 2.9e-2 with 2 windows (one window with these settings: 0.116; 2 windows with
#: overlap 0.25: 4.3e-2);
#: taylor_green 5.2e-2 -> 2.3e-2 (4 windows, criterion stop, no overlap: 3.8e-2 after 285 s;
#: 8 windows: 2.3e-2 too).
#: burgers keeps one window: 4 windows as taylor_green's gave 4.5e-2 against 4.0e-2.
#: taylor_green trains on 512 residual points per step instead of 2048: its solution holds only
#: the lowest Fourier modes, so the run is limited by its number of steps rather than by the
#: sampling of the residual (same settings otherwise, 600 s, one thread, seed 0, two runs side
#: by side on the 2-core machine; rel_l2, steps): 2048 points 1.81e-2 (13,543 steps), 1024
#: 1.27e-2 (20,879), 512 7.6e-3 (49,415), 256 6.2e-3 (73,504). 512 keeps 16 points per time
#: chunk. The other cases keep 2048: allen_cahn with 512 points 6.8e-2 and with 4096 4.4e-2,
#: burgers with 1024 5.3e-2 (2048 in the full run: 2.7e-2 and 3.6e-2).
#: burgers chunks its points the jaxpi way ("sorted": 2048 random space-time points sorted
#: into equal-count chunks) instead of the paper's 32 time slices of 64 x's each, which put
#: the points at only 32 distinct times, and its thin shock is then seen at those times only;
#: with distinct times a finer chain pays (same settings otherwise, 600 s, seed 0, one thread,
#: rel_l2): slices 3.6e-2 (full run), sorted 1.42e-2, sorted with 4096 points 1.47e-2, sorted
#: with 128 chunks 7.9e-3. allen_cahn sorted: 2.8e-2 (slices 2.7e-2), so it keeps slices.
#: allen_cahn stays at 2.5e-2 to 3.5e-2 whatever was tried (600 s, seed 0, one thread beside a
#: second job, 2026-11-23 evening, when this machine made 12-16k steps where the full run made
#: 17k; rel_l2): sorted with 128 chunks 2.54e-2, 32 random Fourier features 2.61e-2, two x
#: harmonics 2.97e-2, eps up to 10 3.53e-2, weight factorization (network.factorization) with
#: mean 1 2.74e-2 and with mean 0.5 2.55e-2; the benchmark setting on two threads, alone,
#: 2.96e-2 after 16,045 steps (one thread beside a second job made 12-15k that evening, so a
#: second thread buys few steps at this size, and the full run is two one-thread jobs side by
#: side). In every run the error grows steadily from 5e-3 at t = 0 to 4-6e-2 at t = 1
#: (u = 0 is unstable, growth rate 5). All of that was before each window restarted the
#: learning-rate schedule (5c0cfe5); with the restart the full run gave 1.97e-2 (19,791 steps),
#: and two trials after it (600 s, seed 0, one thread each, side by side, 22:00 UTC) gave
#: 3 windows 1.23e-2 (23,722 steps) and 4 windows 1.47e-2 (23,617). 3 windows adopted after a
#: full run with them (22:17 UTC): 1.32e-2 (23,625 steps). The host made more steps in that run
#: than in the one before (convection 30,348 against 25,039), so part of the gain over 2 windows
#: (1.97e-2, 19,791 steps) is the host's speed. What the error growth wanted was jaxpi's
#: embedding (its Allen-Cahn ablation: 4.35e-1 without Fourier features): random Fourier
#: features of scale 2 on the embedded inputs with random weight factorization, on top of the
#: 3 windows (600 s, one thread, side by side, 2026-11-23 23:00-23:44 UTC; rel_l2, steps; the
#: 3 windows alone gave 1.23e-2, 23,722, at 22:00): lr decay every 1000 steps 1.28e-2
#: (22,638), every 500 1.61e-2 (22,166); 64 features 1.09e-2 (14,501), with factorization
#: 9.4e-3 (14,091), seed 1 5.9e-3 (16,001); 32 features with factorization 6.9e-3 (18,209),
#: adopted. Full run with it (73adf84, 23:44-00:24 UTC): 8.67e-3 after 16,997 steps.
_MARCH = {"causal.warm_start": True, "causal.stage_steps": 0, "causal.eps": [0.01, 0.1, 1.0]}
_BENCHMARK_MARCH = {
    "convection_diffusion/convection": {**_MARCH, "causal.windows": 8},
    "convection_diffusion/allen_cahn": {
        **_MARCH,
        "causal.windows": 3,
        "causal.early_stop": False,
        "network.fourier_features": 32,
        "network.fourier_scale": 2.0,
        "network.factorization": True,
    },
    "navier_stokes/taylor_green": {
        **_MARCH,
        "causal.windows": 4,
        "causal.early_stop": False,
        "causal.overlap": 0.25,
        "sampling.n_interior": 512,
    },
    "convection_diffusion/burgers": {"causal.chunking": "sorted", "causal.chunks": 128},
}


#: ``--preset benchmark``: the settings of ``benchmarks/causal_pinn.py`` per problem (Allen-Cahn,
#: convection (tuned at beta = 50), Burgers, Taylor-Green), for runs of minutes on a CPU (the
#: benchmark adds only its wall-clock budget); the README's causal PINN table was measured with
#: them
BENCHMARK_PRESET = {
    name: {
        **_BENCHMARK_CPU,
        **({"engine": _BENCHMARK_ENGINE[name]} if name in _BENCHMARK_ENGINE else {}),
        **_BENCHMARK_MARCH.get(name, {}),
    }
    for name in (
        "convection_diffusion/allen_cahn",
        "convection_diffusion/convection",
        "convection_diffusion/burgers",
        "navier_stokes/taylor_green",
    )
}


@register_solver("causal_pinn")
class CausalPINN(PINN):
    """Causal PINN (Wang, Sankaran & Perdikaris 2022) on pdekit's residual core."""

    Config = CausalPINNConfig
    description = "causality-respecting PINN: residuals weighted in time, epsilon annealing"
    paper = "Wang, Sankaran & Perdikaris, arXiv:2203.07404 (2022); CMAME 421 (2024)"
    presets = {"benchmark": BENCHMARK_PRESET}

    def supports(self, problem: Problem) -> str | None:
        reason = super().supports(problem)
        if reason is not None:
            return reason
        if not problem.time_dependent or not isinstance(problem.domain(), SpaceTime):
            return "causal weighting orders residuals in time: it needs a time-dependent problem"
        return None

    def build_model(self, problem: Problem, config: CausalPINNConfig) -> WindowedNetwork:
        dom = problem.domain()
        edges = np.linspace(dom.time.t0, dom.time.t1, config.causal.windows + 1)
        nets = []
        ext = config.causal.overlap * (edges[1] - edges[0]) if len(edges) > 2 else 0.0
        # every network scales time over its window plus the overlap, the last one too, so a
        # warm start is an exact shift in time
        for a, b in zip(edges[:-1], edges[1:] + ext):
            bounds = dom.bounds.copy()
            bounds[:, -1] = (a, b)
            nets.append(build_mlp(config.network, bounds, dom.periodic, len(problem.fields)))
        return WindowedNetwork(nets, edges)

    def build_task(self, problem, config, model, rng, device) -> CausalPINNTask:
        taylor = config.engine in ("taylor", "taylor_compiled")
        if taylor and not all(TaylorFields.supports(n) for n in model.nets):
            raise ParameterError(
                f"engine {config.engine!r} needs networks with forward_taylor; "
                f"{type(model.nets[0]).__name__} has none (use engine='autograd')"
            )
        return CausalPINNTask(problem, config, model, rng, device)

    def extras(self, task: CausalPINNTask) -> dict:
        return {"causal_weights": task.weight_history()}

    def fit(self, problem, config: CausalPINNConfig, run):
        with flush_denormal(config.causal.flush_denormal):
            return super().fit(problem, config, run)


__all__ = [
    "CausalConfig",
    "CausalPINN",
    "CausalPINNConfig",
    "CausalPINNTask",
    "WindowedNetwork",
]
