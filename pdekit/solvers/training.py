"""The one training loop shared by every network solver.

A solver describes *what* to minimise as a :class:`TrainingTask` (model, batch sampling, loss
terms, its own state); the :class:`Trainer` does the rest: Adam or AdamW with a step, cosine or
one-cycle schedule, in one or several :class:`Phase` s (pretrain, then fine-tune named parameters
with the rest frozen), optionally followed by L-BFGS, a tqdm progress bar, loss-term history, a
divergence guard, and checkpoints, with a complete state (model, optimisers, scheduler, phase,
task/sampler state, RNG, step counters) so that a resumed run continues bit for bit where it
stopped.

Runs that survive:

* **Checkpoints** every ``checkpoint_every`` steps, every ``checkpoint_minutes`` minutes, at the
  end, and on SIGTERM/SIGINT: while :meth:`Trainer.run` runs it handles both signals by finishing
  the current step, writing a checkpoint and raising :class:`~pdekit.errors.TrainingInterrupted`
  (the same signal a second time stops at once, as it would without pdekit). The previous
  handlers are restored afterwards.
* **Divergence guard.** A non-finite loss or gradient, or a loss above ``explode_factor`` times
  the best loss so far, never reaches a checkpoint: the trainer restores the last good state (the
  newest snapshot whose next loss was good), multiplies the learning rate by
  ``rollback_lr_factor`` and carries on; after ``max_rollbacks`` rollbacks it raises
  :class:`~pdekit.errors.DivergenceError`, leaving the last checkpoint intact. The good states
  are kept in host memory (tensors copied to the CPU), so the guard costs no GPU memory.
* **Several processes** (``torchrun``): the model is wrapped in DistributedDataParallel and
  every decision is taken on all-reduced numbers; see :mod:`pdekit.solvers.distributed`.

Collocation tasks (the PINN family) implement :class:`TrainingTask` themselves; learning from a
dataset of (input, target) pairs is :class:`pdekit.solvers.dataset_task.DatasetTask`.
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pdekit.checkpoints.tree import check_optimizer_state, tree_from_bytes, tree_to_bytes
from pdekit.errors import CheckpointError, DivergenceError, ParameterError, TrainingInterrupted
from pdekit.solvers import distributed
from pdekit.solvers.config import check

#: optimisers and learning-rate schedules TrainConfig can name
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine", "onecycle")
#: the one-cycle schedule starts at its peak learning rate divided by this (torch's default)
ONE_CYCLE_DIV = 25.0


@dataclass
class TrainConfig:
    """Optimisation settings (shared by all network solvers)."""

    #: Adam steps (the training budget)
    steps: int = 5000
    #: Adam learning rate
    lr: float = 1e-3
    #: multiply the learning rate by this factor every ``decay_every`` steps
    lr_decay: float = 0.9
    #: steps between learning-rate decays
    decay_every: int = 1000
    #: L-BFGS iterations after Adam (0: none); full batch on the last sampled points
    lbfgs_steps: int = 0
    #: steps between loss-history records (and divergence-guard snapshots)
    log_every: int = 50
    #: write a checkpoint every this many steps (0: only at the end); needs an output directory
    checkpoint_every: int = 0
    #: also write one when this many minutes passed since the last (0: off)
    checkpoint_minutes: float = 0.0
    #: keep this many periodic checkpoints (older ones are deleted)
    keep_checkpoints: int = 3
    #: clip the gradient norm to this value (0: no clipping)
    grad_clip: float = 0.0
    #: floating-point precision of the network: float32 or float64
    dtype: str = "float32"
    #: on divergence, roll back and lower the learning rate at most this many times, then stop
    max_rollbacks: int = 3
    #: a loss above this multiple of the best loss so far counts as divergence (0: only
    #: non-finite losses and gradients do)
    explode_factor: float = 1e6
    #: a training whose loss has not once fallen below ``stall_ratio`` times its loss at step 0
    #: after this many steps has failed (a network saturated by too large a learning rate
    #: plateaus at its starting loss) and stops with a DivergenceError (0: off). Only the start
    #: of a training is judged: a task's later problems (e.g. causal windows) are not
    stall_steps: int = 1000
    #: see ``stall_steps``
    stall_ratio: float = 0.5
    #: on each rollback, multiply the learning rate by this factor
    rollback_lr_factor: float = 0.5
    #: wall-clock budget of the whole training in seconds (0: none): training stops when it
    #: is spent, whatever ``steps`` says; with ``lbfgs_steps`` > 0, Adam hands over to L-BFGS
    #: once ``1 - lbfgs_budget_share`` of it is spent (or after ``steps``, if sooner)
    time_budget_s: float = 0.0
    #: share of ``time_budget_s`` kept for L-BFGS when ``lbfgs_steps`` > 0
    lbfgs_budget_share: float = 0.2
    #: first-order optimiser: "adam", or "adamw" (decoupled weight decay, Loshchilov & Hutter 2019)
    optimizer: str = "adam"
    #: weight decay: decoupled for "adamw", an L2 term in the gradient for "adam" (0: none)
    weight_decay: float = 0.0
    #: learning-rate schedule over the Adam steps (of each phase): "step" (multiply by
    #: ``lr_decay`` every ``decay_every`` steps), "cosine" (from ``lr`` down to ``lr_min``) or
    #: "onecycle" (warm up from ``lr / 25`` to the peak ``lr`` over ``pct_start`` of the steps,
    #: then cosine down to ``lr_min``; Smith & Topin 2019). Cosine and one-cycle span the
    #: configured steps: keep ``steps`` when resuming such a run
    schedule: str = "step"
    #: floor of the "cosine" schedule and final learning rate of "onecycle"
    lr_min: float = 0.0
    #: share of the steps spent warming up in the "onecycle" schedule
    pct_start: float = 0.3

    def __post_init__(self):
        check(self, "steps", self.steps, low=0, high=10**9, kind=int)
        check(self, "lr", self.lr)  # a finite number
        if not 0 < self.lr <= 10:
            raise ParameterError(f"TrainConfig.lr must be in (0, 10]; got {self.lr!r}")
        check(self, "lr_decay", self.lr_decay, low=1e-6, high=1.0)
        check(self, "decay_every", self.decay_every, low=1, kind=int)
        check(self, "lbfgs_steps", self.lbfgs_steps, low=0, high=10**7, kind=int)
        check(self, "log_every", self.log_every, low=1, kind=int)
        check(self, "checkpoint_every", self.checkpoint_every, low=0, kind=int)
        check(self, "checkpoint_minutes", self.checkpoint_minutes, low=0.0)
        check(self, "keep_checkpoints", self.keep_checkpoints, low=1, kind=int)
        check(self, "grad_clip", self.grad_clip, low=0.0)
        check(self, "dtype", self.dtype, choices=("float32", "float64"))
        check(self, "max_rollbacks", self.max_rollbacks, low=0, high=100, kind=int)
        check(self, "explode_factor", self.explode_factor, low=0.0)
        if 0 < self.explode_factor <= 1:
            raise ParameterError(
                f"TrainConfig.explode_factor must be 0 (off) or > 1; got {self.explode_factor!r}"
            )
        check(self, "stall_steps", self.stall_steps, low=0, kind=int)
        check(self, "stall_ratio", self.stall_ratio, low=1e-12, high=1.0)
        check(self, "rollback_lr_factor", self.rollback_lr_factor, low=1e-6, high=1.0)
        check(self, "time_budget_s", self.time_budget_s, low=0.0)
        check(self, "lbfgs_budget_share", self.lbfgs_budget_share, low=0.0, high=1.0)
        check(self, "optimizer", self.optimizer, choices=OPTIMIZERS)
        check(self, "weight_decay", self.weight_decay, low=0.0, high=10.0)
        check(self, "schedule", self.schedule, choices=SCHEDULES)
        check(self, "lr_min", self.lr_min, low=0.0, high=self.lr)
        check(self, "pct_start", self.pct_start, low=0.0, high=1.0)

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def adam_budget_s(self) -> float:
        """Seconds of ``time_budget_s`` after which Adam hands over: all of it, less
        ``lbfgs_budget_share`` when L-BFGS follows (0: no budget)."""
        share = self.lbfgs_budget_share if self.lbfgs_steps > 0 else 0.0
        return self.time_budget_s * (1.0 - share)


#: TrainConfig fields that may change when a run is resumed (the rest must match the checkpoint)
RESUMABLE_FIELDS = (
    "steps",
    "lbfgs_steps",
    "log_every",
    "checkpoint_every",
    "checkpoint_minutes",
    "keep_checkpoints",
    "max_rollbacks",
    "explode_factor",
    "stall_steps",
    "stall_ratio",
    "rollback_lr_factor",
    "time_budget_s",
    "lbfgs_budget_share",
)


@dataclass(frozen=True)
class Phase:
    """One phase of a phased training (pretrain, then fine-tune a part of the model).

    Each phase starts a fresh optimiser (``TrainConfig.optimizer``) over its trainable parameters
    and its own learning-rate schedule over its ``steps``; the other parameters stay frozen: the
    optimiser never sees them, so they do not change at all (weight decay included).
    """

    #: the phase's name (in messages)
    name: str
    #: Adam steps of this phase
    steps: int
    #: its peak learning rate (None: ``TrainConfig.lr``)
    lr: float | None = None
    #: which parameters train, by their names in ``model.named_parameters()``: None (all), a
    #: name prefix or a tuple of prefixes, or a predicate ``name -> bool``
    train: str | tuple[str, ...] | Callable[[str], bool] | None = None

    def __post_init__(self):
        check(self, "steps", self.steps, low=1, high=10**9, kind=int)
        if self.lr is not None:
            check(self, "lr", self.lr, low=1e-12, high=10.0)

    def trains(self, name: str) -> bool:
        """Whether the parameter called ``name`` trains in this phase."""
        if self.train is None:
            return True
        if callable(self.train):
            return bool(self.train(name))
        prefixes = (self.train,) if isinstance(self.train, str) else tuple(self.train)
        return name.startswith(prefixes)


def _schedule_factor(config: TrainConfig, steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier of step ``t`` of a "cosine" or "onecycle" schedule over
    ``steps`` steps (closed form in ``t``, so a rollback's scaling of the base rates holds)."""
    floor = config.lr_min / config.lr
    total = max(1, steps)

    def cosine(t: int, start: float, end: float, length: int) -> float:
        frac = min(max(t, 0), length) / max(1, length)
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))

    if config.schedule == "cosine":
        return lambda t: cosine(t, 1.0, floor, total)
    warm = int(round(config.pct_start * total))

    def one_cycle(t: int) -> float:
        if t < warm:
            return cosine(warm - t, 1.0, 1.0 / ONE_CYCLE_DIV, warm)
        return cosine(t - warm, 1.0, floor, total - warm)

    return one_cycle


class TrainingTask(Protocol):
    """What a solver trains: the Trainer calls these, in this order, every step.

    The task must call ``self.model(x)`` for every forward pass: under ``torchrun`` the Trainer
    sets ``task.model`` to the DistributedDataParallel wrapper for the duration of
    :meth:`Trainer.run` (and back afterwards). A task whose loss leaves some parameters unused
    sets ``ddp_find_unused_parameters = True``. A task that calls parts of its model directly
    (branches, one network of several) sets ``average_gradients = True`` instead: the model is
    then not wrapped and the Trainer averages the gradients over the processes after every
    backward pass (:meth:`~pdekit.solvers.distributed.Distributed.average_gradients`).
    ``after_step`` receives the loss terms averaged over all processes, so decisions taken
    from them agree on every rank. A task may define ``begin_lbfgs()``: called once before
    full-batch L-BFGS draws its one batch (the PINN tasks draw it at
    ``sampling.lbfgs_n_interior`` points).
    """

    model: torch.nn.Module

    def next_batch(self, step: int) -> None:
        """Draw (or keep) the collocation points for this step."""

    def loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named terms on the current batch."""

    # Defaults for a task with no state beyond its model (inherited by subclassing explicitly)
    def after_step(self, step: int, terms: dict[str, float]) -> bool:
        """Update solver state after an optimiser step; return True to stop training."""
        return False

    def status(self) -> dict[str, float]:
        """Extra numbers to show and log (e.g. causal epsilon and min weight)."""
        return {}

    def state_dict(self) -> dict:
        """Solver state beyond the model (sampler RNG, stages...) for exact resume."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def finished(self) -> bool:
        """After :meth:`load_state_dict` of a run that the task stopped early: whether it is
        still finished under this run's config (a causal run stopped by its step budget is not,
        when resumed with a larger one)."""
        return True

    def new_problem(self) -> bool:
        """After :meth:`after_step`: whether the task has just switched to a new optimisation
        problem (a causal PINN's next time window, trained by a network of its own). The
        Trainer then restarts the learning-rate schedule, as a fresh optimiser would, and its
        divergence guard: the best loss and the good state belong to the problem before."""
        return False


class SampledTask(TrainingTask):
    """Plumbing shared by training tasks whose batches are drawn from ``self.rng`` (a numpy
    Generator): the resampling schedule, and a state that resumes exactly by re-drawing the batch
    in use at save time from the generator state it was drawn from.

    Subclasses set ``rng`` and implement :meth:`draw_batch`; ``resample_every`` (0: draw once,
    1: every step, n: every n steps) defaults to ``config.sampling.resample_every``.
    """

    rng: np.random.Generator
    batch = None
    _draw_state = None  # the generator state before the current batch was drawn

    @property
    def resample_every(self) -> int:
        return self.config.sampling.resample_every

    def draw_batch(self):
        raise NotImplementedError

    def refresh_sampling(self, step: int) -> bool:
        """Renew what batches are drawn from at ``step`` (adaptive sampling); True when it did,
        which draws a new batch whatever ``resample_every`` says. Default: nothing to renew."""
        return False

    def next_batch(self, step: int) -> None:
        every = self.resample_every
        renewed = self.refresh_sampling(step)
        if self.batch is None or renewed or (every > 0 and step % every == 0):
            self._draw_state = self.rng.bit_generator.state
            self.batch = self.draw_batch()

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "draw_state": self._draw_state}

    def load_state_dict(self, state: dict) -> None:
        if state.get("draw_state") is not None:  # re-draw the batch in use at save time
            self.rng.bit_generator.state = state["draw_state"]
            self.batch = self.draw_batch()
            self._draw_state = state["draw_state"]
        else:
            self.batch = None
        self.rng.bit_generator.state = state["rng"]


def select_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; otherwise the named device (checked)."""
    if not isinstance(device, str):
        raise ParameterError(f"device must be 'auto', 'cpu' or 'cuda[:n]'; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ParameterError(
            f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:n]'"
        ) from None
    if dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"unsupported device {device!r}; use 'auto', 'cpu' or 'cuda[:n]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but no CUDA GPU is available; use 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ParameterError(
            f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA "
            f"GPU(s): cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return dev


class _SignalGuard:
    """Turns SIGTERM/SIGINT into a request to stop at the next step boundary.

    Installed only in the main thread (Python delivers signals there). The same signal a
    second time restores the previous handlers and re-delivers it: Ctrl-C twice stops at once.
    """

    NAMES = ("SIGTERM", "SIGINT")

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.NAMES:
            sig = getattr(signal, name, None)
            previous = signal.getsignal(sig) if sig is not None else None
            if previous is None:  # a handler installed outside Python: leave it alone
                continue
            signal.signal(sig, self._handle)
            self._previous[sig] = previous

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            return
        if signum != self.signum:
            return
        previous = self._previous.get(signum)
        self.restore()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


class Trainer:
    """Runs a :class:`TrainingTask` under a :class:`TrainConfig`.

    Parameters
    ----------
    task: the solver's task.
    config: optimisation settings.
    verbose: show a progress bar (only when stderr is a terminal, and only on rank 0).
    checkpoint_fn: called as ``checkpoint_fn(trainer)`` on rank 0 to write a checkpoint of
        ``trainer.checkpoint_state()`` (periodically, at the end and on SIGTERM/SIGINT; never
        with a non-finite state); it may return the path written.
    dist: the process group (default: :func:`pdekit.solvers.distributed.current`).
    """

    def __init__(
        self,
        task: TrainingTask,
        config: TrainConfig,
        *,
        verbose: bool = True,
        checkpoint_fn: Callable[[Trainer], Path | None] | None = None,
        dist: distributed.Distributed | None = None,
        phases: list[Phase] | tuple[Phase, ...] | None = None,
    ):
        self.task, self.config = task, config
        self.verbose = verbose
        self.checkpoint_fn = checkpoint_fn
        self.dist = dist if dist is not None else distributed.current()
        self.model = task.model
        self.step = 0
        self.rollbacks = 0
        self.lr_scale = 1.0
        self.best_loss = math.inf
        #: (step, loss) at which training started (the stall rule; see TrainConfig.stall_steps)
        self.start_loss: tuple[int, float] = (0, math.inf)
        self.history: dict[str, list[float]] = {}
        #: the training phases (empty: one phase of ``config.steps``, every parameter trains)
        self.phases = tuple(phases or ())
        #: index of the current phase (part of the resumable state)
        self.phase = 0
        self._check_phases()
        self.optimizer, self.scheduler = self._make_optimizer(0)
        self.lbfgs: torch.optim.LBFGS | None = None
        self.stopped_early = False
        #: training seconds spent (saved, so a resumed run continues its time budget)
        self.elapsed_s = 0.0
        #: the step at which the time budget ended the Adam phase (None: it did not)
        self.adam_cut: int | None = None
        #: whether the last :meth:`run` stopped because ``time_budget_s`` was spent
        self.out_of_time = False
        #: path of the newest checkpoint written (or resumed from)
        self.last_checkpoint: Path | None = None
        #: the newest checkpoint whose state gave a good loss when training went on from it
        #: (the one a DivergenceError names), and (step, path) of a newer one not yet tested
        self.confirmed_checkpoint: Path | None = None
        self._unconfirmed: tuple[int, Path] | None = None
        #: what the state training (re)started from is, and what to do if its first loss
        #: fails (see _rollback)
        self._start = (
            "the initial network",
            "check the problem's scaling, train.dtype and the network",
        )
        #: seconds each checkpoint write took on this process (not saved)
        self.checkpoint_seconds: list[float] = []
        self._good: dict | None = None  # newest snapshot whose next loss was good
        self._pending: dict | None = None  # newer snapshot, not yet confirmed
        self._ckpt_state: dict | None = None
        self._last_ckpt_step: int | None = None
        self._last_ckpt_time = time.monotonic()
        self._guard = _SignalGuard()
        self._clock = (time.monotonic(), 0.0)  # (start of this run, seconds spent before it)
        self._plain_log: tuple[int, float] | None = None  # (step, time) of the last log line

    @property
    def adam_end(self) -> int:
        """The step at which Adam hands over to L-BFGS."""
        return self.adam_steps if self.adam_cut is None else self.adam_cut

    @property
    def adam_steps(self) -> int:
        """Adam steps: ``config.steps``, or the phases' steps together when there are phases."""
        return sum(ph.steps for ph in self.phases) if self.phases else self.config.steps

    # -- phases and optimisers -----------------------------------------------------------------
    def _check_phases(self) -> None:
        names = [n for n, _ in self.model.named_parameters()]
        for i, ph in enumerate(self.phases):
            if not isinstance(ph, Phase):
                raise ParameterError(f"phases[{i}] must be a Phase; got {type(ph).__name__}")
            if not any(ph.trains(n) for n in names):
                raise ParameterError(
                    f"phase {ph.name!r} trains no parameter (train={ph.train!r}); the model's "
                    f"parameters are {names}"
                )

    def trainable(self, phase: int | None = None) -> list[torch.nn.Parameter]:
        """The parameters that train in ``phase`` (default: the current one)."""
        if not self.phases:
            return list(self.model.parameters())
        ph = self.phases[self.phase if phase is None else phase]
        return [p for n, p in self.model.named_parameters() if ph.trains(n)]

    def _make_optimizer(self, phase: int):
        """A fresh optimiser and schedule for ``phase`` (its learning rate scaled by the
        rollbacks so far)."""
        cfg = self.config
        if self.phases:
            ph = self.phases[phase]
            lr, steps = (cfg.lr if ph.lr is None else ph.lr) * self.lr_scale, ph.steps
        else:
            lr, steps = cfg.lr * self.lr_scale, cfg.steps
        params = self.trainable(phase)
        if cfg.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
        elif cfg.weight_decay > 0:
            opt = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=lr)
        if cfg.schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(
                opt, step_size=cfg.decay_every, gamma=cfg.lr_decay
            )
        else:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule_factor(cfg, steps))
        return opt, sched

    def _enter_phase(self, phase: int) -> None:
        self.phase = phase
        self.optimizer, self.scheduler = self._make_optimizer(phase)
        self.lbfgs = None

    @property
    def total_steps(self) -> int:
        return self.adam_end + self.config.lbfgs_steps

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """This process's complete training state (model excepted)."""
        state = {
            "step": self.step,
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "best_loss": self.best_loss,
            "start_loss": list(self.start_loss),
            "stopped_early": self.stopped_early,
            "elapsed_s": self.elapsed_s,
            "adam_cut": -1 if self.adam_cut is None else self.adam_cut,
            "phase": self.phase,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "task": self.task.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        param = next(self.model.parameters())
        if param.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(param.device)
        if self.lbfgs is not None:
            state["lbfgs"] = self.lbfgs.state_dict()
        return state

    def full_state(self) -> dict:
        """:meth:`state_dict` plus, under torchrun, every rank's task (sampler) state, torch
        (and CUDA) generator and the world size: what a checkpoint stores. Collective: every
        rank must call it."""
        state = self.state_dict()
        if self.dist.enabled:
            mine = {k: state[k] for k in ("task", "torch_rng", "cuda_rng") if k in state}
            ranks = [tree_from_bytes(b) for b in self.dist.all_gather_bytes(tree_to_bytes(mine))]
            state["task_ranks"] = [r["task"] for r in ranks]
            # each rank's own generators (dropout, latent noise: see Distributed.torch_seed)
            state["torch_rng_ranks"] = [r["torch_rng"] for r in ranks]
            if "cuda_rng" in mine:
                state["cuda_rng_ranks"] = [r["cuda_rng"] for r in ranks]
            state["world_size"] = self.dist.world_size
        return state

    def checkpoint_state(self) -> dict:
        """The :meth:`full_state` gathered for the checkpoint being written (for
        ``checkpoint_fn``, which runs on rank 0 only)."""
        return self._ckpt_state if self._ckpt_state is not None else self.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`checkpoint_state` (raises CheckpointError on a
        checkpoint written by a different number of processes)."""
        world = int(state.get("world_size", 1))
        if world != self.dist.world_size:
            raise CheckpointError(
                f"the checkpoint was written by a run on {world} process(es) and this run has "
                f"{self.dist.world_size}: each process resumes its own sampler, so resume with "
                f"the same number of processes (torchrun --nproc_per_node={world} or "
                "--nnodes x --nproc_per_node giving that total)"
            )
        task_state = state["task_ranks"][self.dist.rank] if "task_ranks" in state else state["task"]
        self.step = int(state["step"])
        self.rollbacks = int(state.get("rollbacks", 0))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.best_loss = float(state.get("best_loss", math.inf))
        start = state.get("start_loss", (0, math.inf))  # absent in older checkpoints: off
        self.start_loss = (int(start[0]), float(start[1]))
        self.stopped_early = bool(state.get("stopped_early", False))
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        cut = int(state.get("adam_cut", -1))
        self.adam_cut = None if cut < 0 else cut
        phase = int(state.get("phase", 0))
        if phase >= max(1, len(self.phases)):
            raise CheckpointError(
                f"the checkpoint was written in training phase {phase} and this run has "
                f"{max(1, len(self.phases))} phase(s); resume with the run's phases"
            )
        if phase != self.phase:
            self._enter_phase(phase)
        check_optimizer_state(
            self.optimizer, state["optimizer"], self.model, source="its trainer state"
        )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.task.load_state_dict(task_state)
        still = getattr(self.task, "finished", None)  # a structural task may not define it
        self.stopped_early = self.stopped_early and (still is None or bool(still()))
        rank = self.dist.rank
        # a torchrun checkpoint keeps every rank's generator (older ones rank 0's only)
        torch.set_rng_state(
            state["torch_rng_ranks"][rank] if "torch_rng_ranks" in state else state["torch_rng"]
        )
        param = next(self.model.parameters())
        if "cuda_rng" in state and param.device.type == "cuda":
            cuda = state["cuda_rng_ranks"][rank] if "cuda_rng_ranks" in state else state["cuda_rng"]
            torch.cuda.set_rng_state(cuda, param.device)
        self.lbfgs = None
        if "lbfgs" in state:
            self._make_lbfgs()
            check_optimizer_state(
                self.lbfgs, state["lbfgs"], self.model, source="its trainer state"
            )
            self.lbfgs.load_state_dict(state["lbfgs"])
        self._good, self._pending = None, None
        self._last_ckpt_step = self.step
        self.confirmed_checkpoint, self._unconfirmed = None, None
        self._start = (f"the resumed state (step {self.step})", "resume from an earlier state")

    def resumed_from(self, path: Path) -> None:
        """Record the checkpoint this run resumes from: untested until its first loss."""
        self.last_checkpoint = Path(path)
        self._unconfirmed = (self.step, Path(path))
        self._start = (
            f"the state resumed from {path} (step {self.step})",
            "resume from an earlier checkpoint of the run",
        )

    def _make_lbfgs(self) -> None:
        self.lbfgs = torch.optim.LBFGS(
            self.trainable(),
            lr=self.lr_scale,
            max_iter=1,
            # torch's default max_eval = max_iter * 5 // 4 = 1 leaves the strong-Wolfe search
            # no evaluations (max_ls = 0): a rejected first trial returns t = 0 and L-BFGS
            # stalls for good; allow a real line search
            max_eval=25,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, list[float]]:
        """Train to ``total_steps`` (or until the task stops); returns the loss history.

        Raises
        ------
        DivergenceError: after ``max_rollbacks`` rollbacks without recovery.
        TrainingInterrupted: on SIGTERM/SIGINT, after writing a checkpoint.
        """
        if self.step > 0 and self.step >= self.total_steps and self.verbose and self.dist.is_writer:
            print(
                f"pdekit: note: resumed at step {self.step}, which already reaches the "
                f"{self.total_steps} steps asked for: nothing to train (ask for more steps to "
                "continue)",
                file=sys.stderr,
                flush=True,
            )
        bar = self._progress_bar()
        plain = self.verbose and self.dist.is_writer and not sys.stderr.isatty()
        self._plain_log = (self.step, time.monotonic()) if plain else None
        if self._good is None and self._pending is None:
            self._pending = self._snapshot()
        find_unused = bool(getattr(self.task, "ddp_find_unused_parameters", False))
        if not self._manual_average:
            self.task.model = self.dist.wrap(self.model, find_unused)
        self._guard = _SignalGuard()
        self._guard.install()
        try:
            self._loop(bar)
        finally:
            self._guard.restore()
            self.task.model = self.model
            if bar is not None:
                bar.close()
        end = getattr(self.task, "end_training", None)
        if end is not None:  # e.g. a dataset task restoring its best parameters
            end()
        return self.history

    def _loop(self, bar) -> None:
        cfg = self.config
        self._clock = (time.monotonic(), self.elapsed_s)
        self.out_of_time = False
        while self.step < self.total_steps and not self.stopped_early:
            adam = self.step < self.adam_end
            terms, loss_value, problem, flags = self._adam_step() if adam else self._lbfgs_step()
            self.elapsed_s = self._spent()
            if problem is not None:
                self._rollback(problem)
                continue
            if self._pending is not None:  # the loss at the pending snapshot was good
                self._good, self._pending = self._pending, None
            if self._unconfirmed is not None and self._unconfirmed[0] == self.step:
                self.confirmed_checkpoint, self._unconfirmed = self._unconfirmed[1], None
            if self.step == 0 and self.best_loss == math.inf:
                self.start_loss = (0, loss_value)
            self.best_loss = min(self.best_loss, loss_value)
            self._check_stall()
            self.step += 1
            if self.phase + 1 < len(self.phases) and self.step >= self._phase_end(self.phase):
                self._enter_phase(self.phase + 1)
            stop = bool(self.task.after_step(self.step, terms))
            if getattr(self.task, "new_problem", lambda: False)():
                self._restart()
            if self.step % cfg.log_every == 0 or self.step == self.total_steps or stop:
                self._record(loss_value, terms)
            if bar is not None:
                bar.update(1)
                if self.step % max(1, cfg.log_every // 5) == 0:
                    bar.set_postfix_str(self._postfix(loss_value, terms), refresh=False)
            if stop:
                self.stopped_early = True
            interrupted, time_due = flags[0] > 0, flags[1] > 0
            step_due = cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0
            if interrupted or step_due or time_due:
                if not self._params_finite():
                    self._rollback("non-finite parameters")
                    continue
                self._checkpoint()
            if interrupted:
                raise self._interrupted()
            if flags[2] > 0:  # the time budget is spent
                self.out_of_time = True
                break
            if adam and flags[3] > 0 and self.step < self.adam_end:  # L-BFGS's share begins
                self.adam_cut = self.step
                if bar is not None:
                    bar.total = self.total_steps
        if self.checkpoint_fn is not None and self._last_ckpt_step != self.step:
            if not self._params_finite():
                raise DivergenceError(
                    f"training ended at step {self.step} with non-finite parameters; "
                    "no final checkpoint written"
                )
            self._checkpoint()

    @property
    def _manual_average(self) -> bool:
        """Whether the Trainer, not a DDP wrapper, averages the processes' gradients."""
        return self.dist.enabled and bool(getattr(self.task, "average_gradients", False))

    def _average_gradients(self) -> None:
        if self._manual_average:
            self.dist.average_gradients(self.model.parameters())

    def _reduce(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], flags: list[float]):
        """Loss and terms averaged over processes, and flags summed (identity in one process)."""
        if not self.dist.enabled:
            return float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()}, flags
        world = self.dist.world_size
        values = self.dist.sum([loss.detach(), *(v.detach() for v in terms.values()), *flags])
        n = len(terms)
        averaged = {k: values[1 + i] / world for i, k in enumerate(terms)}
        return values[0] / world, averaged, values[1 + n :]

    def _spent(self) -> float:
        """Training seconds spent, this run and the runs it resumes."""
        start, before = self._clock
        return before + time.monotonic() - start

    def _flags(self) -> list[float]:
        """[a stop signal arrived, a time-based checkpoint is due, the time budget is spent,
        Adam's share of it is spent]; rank 0's clock decides."""
        cfg = self.config
        spent_s = self._spent()
        writer = self.dist.is_writer
        due = (
            writer
            and self.checkpoint_fn is not None
            and cfg.checkpoint_minutes > 0
            and time.monotonic() - self._last_ckpt_time >= 60 * cfg.checkpoint_minutes
        )
        budget = cfg.time_budget_s
        out = writer and budget > 0 and spent_s >= budget
        handover = writer and budget > 0 and cfg.lbfgs_steps > 0 and spent_s >= cfg.adam_budget_s
        return [float(self._guard.signum is not None), float(due), float(out), float(handover)]

    def _phase_end(self, phase: int) -> int:
        """The step at which ``phase`` ends."""
        return sum(ph.steps for ph in self.phases[: phase + 1])

    def _adam_step(self):
        self.task.next_batch(self.step)
        self.model.zero_grad(set_to_none=True)
        loss, terms = self.task.loss()
        value, terms_f, flags = self._reduce(loss, terms, self._flags())
        problem = self._diverged(value)
        if problem is None:
            loss.backward()
            self._average_gradients()
            trained = (p for g in self.optimizer.param_groups for p in g["params"])
            params = [p for p in trained if p.grad is not None]
            if self.config.grad_clip > 0:
                norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip))
            else:
                norm = _grad_norm(params)
            if math.isfinite(norm):
                self.optimizer.step()
                self.scheduler.step()
            else:
                problem = f"non-finite gradient (norm {norm})"
        return terms_f, value, problem, flags

    def _lbfgs_step(self):
        if self.lbfgs is None:
            begin = getattr(self.task, "begin_lbfgs", None)
            if begin is not None:  # a task may draw L-BFGS's batch differently (its size)
                begin()
            self.task.next_batch(self.step)  # one batch, then full-batch L-BFGS on it
            self._make_lbfgs()
        last: dict = {}

        def closure():
            self.lbfgs.zero_grad(set_to_none=True)
            loss, terms = self.task.loss()
            last["loss"], last["terms"], _ = self._reduce(loss, terms, [])
            loss.backward()
            self._average_gradients()
            if self.dist.enabled:  # the line search must see the same (global) loss everywhere
                return torch.tensor(last["loss"], dtype=loss.dtype, device=loss.device)
            return loss

        self.lbfgs.step(closure)
        flags = self._flags()
        if self.dist.enabled:
            flags = self.dist.sum(flags)
        problem = self._diverged(last["loss"])
        if problem is None and not self._params_finite():
            problem = "non-finite parameters after an L-BFGS step"
        return last["terms"], last["loss"], problem, flags

    # -- divergence guard ----------------------------------------------------------------------
    def _diverged(self, value: float) -> str | None:
        """Why the loss ``value`` counts as divergence (None when it does not)."""
        if not math.isfinite(value):
            return f"non-finite loss ({value})"
        factor = self.config.explode_factor
        if factor > 0 and 0 < self.best_loss < math.inf and value > factor * self.best_loss:
            return f"exploding loss ({value:.3e} > {factor:g} x the best loss {self.best_loss:.3e})"
        return None

    def _check_stall(self) -> None:
        """Stop a training whose loss never fell below ``stall_ratio`` x its starting loss in
        its first ``stall_steps`` steps (see TrainConfig.stall_steps); judged once, then."""
        cfg = self.config
        start_step, start = self.start_loss
        if cfg.stall_steps <= 0 or self.step - start_step != cfg.stall_steps:
            return
        if not 0 < start < math.inf or self.best_loss < cfg.stall_ratio * start:
            return
        raise DivergenceError(
            f"training failed: after {self.step - start_step} steps the loss never fell below "
            f"{cfg.stall_ratio:g} x its starting value {start:.3e} (best {self.best_loss:.3e}); "
            "the network has likely saturated: try a smaller train.lr (train.stall_steps = 0 "
            "turns this check off)"
        )

    def _restart(self) -> None:
        """A new optimisation problem starts at this step (see TrainingTask.new_problem)."""
        self.best_loss = math.inf
        self.start_loss = (0, math.inf)  # the stall rule judges a training's first problem only
        self._good, self._pending = None, self._snapshot()
        self._start = (
            f"the starting state of the task's new problem at step {self.step} (e.g. a causal "
            "PINN's next time window)",
            "check the state the previous problem ended in and train.lr",
        )
        self.scheduler.last_epoch = 0
        # a closed-form schedule (cosine, one-cycle) starts at its factor of step 0
        factors = getattr(self.scheduler, "lr_lambdas", None)
        start = [f(0) for f in factors] if factors else [1.0] * len(self.scheduler.base_lrs)
        for group, base, f0 in zip(
            self.optimizer.param_groups, self.scheduler.base_lrs, start, strict=True
        ):
            group["lr"] = base * f0
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _params_finite(self) -> bool:
        flags = [torch.isfinite(p.detach()).all() for p in self.model.parameters()]
        return bool(torch.stack(flags).all()) if flags else True

    def _snapshot(self) -> dict:
        """A good state kept in host memory for the divergence guard: its tensors (model,
        optimiser moments, task) are copied to the CPU, so the guard does not double (with
        Adam, triple) the GPU memory a large model takes; a rollback copies them back."""
        return {
            "model": _to_cpu(self.model.state_dict()),
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "scheduler": copy.deepcopy(self.scheduler.state_dict()),
            "task": _to_cpu(self.task.state_dict()),
            "phase": self.phase,
            "step": self.step,
            "lr_scale": self.lr_scale,
            "history_len": {k: len(v) for k, v in self.history.items()},
        }

    def _mark(self) -> None:
        """Take the pending snapshot at this step (once per step)."""
        if self._pending is None or self._pending["step"] != self.step:
            self._pending = self._snapshot()

    def _rollback(self, reason: str) -> None:
        """Restore the last good state and lower the learning rate (bounded number of times).

        Before the first good loss of a run (fresh or resumed) there is no good state to go
        back to: the failing loss is the one at the starting state, computed before any update,
        so no learning rate changes it, and the run stops at once."""
        cfg = self.config
        self.rollbacks += 1
        self._unconfirmed = None  # any untested checkpoint is newer than the good state
        if self._good is None:
            state, advice = self._start
            raise DivergenceError(
                f"training diverged at step {self.step + 1}: {reason}; {state} gives it at "
                f"once, before any update, so no rollback can help; {advice}"
            )
        if self.rollbacks > cfg.max_rollbacks:
            if self.confirmed_checkpoint is not None:
                kept = f"the last good checkpoint {self.confirmed_checkpoint} is intact"
            elif self.last_checkpoint is not None:
                kept = (
                    f"no checkpoint of this run was confirmed good (the newest, "
                    f"{self.last_checkpoint}, holds a state that diverged)"
                )
            elif self.checkpoint_fn is not None:
                kept = "no checkpoint had been written yet"
            else:
                kept = "no checkpoints were being written"
            raise DivergenceError(
                f"training diverged at step {self.step}: {reason}; {cfg.max_rollbacks} "
                f"rollbacks with the learning rate scaled by {cfg.rollback_lr_factor:g} each "
                f"did not recover (train.max_rollbacks); {kept}. Try a smaller train.lr, "
                "train.grad_clip > 0, or check the problem's scaling"
            )
        bad_step = self.step + 1  # the step whose loss or gradient failed
        snap = self._good
        if snap["phase"] != self.phase:
            self._enter_phase(snap["phase"])
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        self.scheduler.load_state_dict(copy.deepcopy(snap["scheduler"]))
        self.task.load_state_dict(copy.deepcopy(snap["task"]))
        self.step = snap["step"]
        kept = snap["history_len"]
        self.history = {k: v[: kept[k]] for k, v in self.history.items() if k in kept}
        self.lbfgs = None
        self._pending = None
        self.lr_scale *= cfg.rollback_lr_factor
        ratio = self.lr_scale / snap["lr_scale"]
        for group in self.optimizer.param_groups:
            group["lr"] *= ratio
        self.scheduler.base_lrs = [lr * ratio for lr in self.scheduler.base_lrs]
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        self._say(
            f"pdekit: warning: {reason} at step {bad_step}; rolled back to step "
            f"{snap['step']} and scaled the learning rate by {cfg.rollback_lr_factor:g} "
            f"(rollback {self.rollbacks}/{cfg.max_rollbacks})"
        )

    # -- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        """Write a checkpoint (rank 0) of the state of every rank; all ranks call this."""
        if self.checkpoint_fn is None:
            return
        self._ckpt_state = self.full_state()
        error: Exception | None = None
        try:
            if self.dist.is_writer:
                t0 = time.perf_counter()
                try:
                    written = self.checkpoint_fn(self)
                except Exception as exc:  # every rank must learn of it before raising
                    error = exc
                else:
                    self.checkpoint_seconds.append(time.perf_counter() - t0)
                    if written is not None:
                        self.last_checkpoint = Path(written)
                        self._unconfirmed = (self.step, Path(written))
            if self.dist.enabled and self.dist.sum([float(error is not None)])[0] > 0:
                error = error or CheckpointError("rank 0 could not write a checkpoint")
        finally:
            self._ckpt_state = None
        if error is not None:
            raise error
        self._last_ckpt_step = self.step
        self._last_ckpt_time = time.monotonic()
        self._mark()

    def _interrupted(self) -> TrainingInterrupted:
        signum = self._guard.signum or signal.SIGTERM
        name = signal.Signals(signum).name
        if self.last_checkpoint is not None and self._last_ckpt_step == self.step:
            where = (
                f"checkpoint written: {self.last_checkpoint} (continue with --resume "
                f"{self.last_checkpoint})"
            )
        elif self.dist.is_writer:
            where = "no checkpoint written (no checkpoint directory was given)"
        else:
            where = "rank 0 wrote the checkpoint"
        return TrainingInterrupted(
            f"training stopped by {name} at step {self.step}; {where}",
            signum=signum,
            step=self.step,
            checkpoint=self.last_checkpoint,
        )

    # -- logging -------------------------------------------------------------------------------
    def _record(self, loss_value: float, terms: dict[str, float]) -> None:
        h = self.history
        h.setdefault("step", []).append(self.step)
        h.setdefault("loss", []).append(loss_value)
        for k, v in terms.items():
            h.setdefault(f"loss/{k}", []).append(v)
        h.setdefault("lr", []).append(self.optimizer.param_groups[0]["lr"])
        for k, v in self.task.status().items():
            h.setdefault(k, []).append(float(v))
        self._mark()
        if self._plain_log is not None:
            self._log_line(loss_value, terms)

    def _log_line(self, loss_value: float, terms: dict[str, float]) -> None:
        """One plain line per record when stderr is not a terminal (a batch job, nohup, a log
        file), where no progress bar is drawn: step, losses, learning rate, steps per second."""
        now = time.monotonic()
        last_step, last_t = self._plain_log
        rate = (self.step - last_step) / (now - last_t) if now > last_t else float("nan")
        self._plain_log = (self.step, now)
        self._say(
            f"pdekit: step {self.step}/{self.total_steps}  {self._postfix(loss_value, terms)}  "
            f"lr={self.optimizer.param_groups[0]['lr']:.3g}  {rate:.3g} steps/s"
        )

    def _say(self, message: str) -> None:
        if self.dist.is_writer:
            print(message, file=sys.stderr, flush=True)

    def _progress_bar(self):
        if not (self.verbose and self.dist.is_writer and sys.stderr.isatty()):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True)

    def _postfix(self, loss_value: float, terms: dict[str, float]) -> str:
        parts = [f"loss={loss_value:.3e}"]
        parts += [f"{k}={v:.2e}" for k, v in list(terms.items())[:4]]
        parts += [f"{k}={v:.3g}" for k, v in self.task.status().items()]
        return " ".join(parts)


def _to_cpu(tree):
    """A copy of a state tree whose tensors are detached copies on the CPU."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return copy.deepcopy(tree)


def _grad_norm(grads_of: list[torch.nn.Parameter]) -> float:
    """Euclidean norm of all gradients together (inf/nan when any is non-finite)."""
    if not grads_of:
        return 0.0
    norms = torch.stack([torch.linalg.vector_norm(p.grad.detach()) for p in grads_of])
    return float(torch.linalg.vector_norm(norms))
