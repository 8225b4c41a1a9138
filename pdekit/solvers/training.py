"""The one training loop shared by every network solver.

A solver describes *what* to minimise as a :class:`TrainingTask` (model, batch sampling, loss
terms, its own state); the :class:`Trainer` does the rest: Adam with a step-decay schedule,
optionally followed by L-BFGS, a tqdm progress bar, loss-term history, a divergence guard that
rolls back to the last good state, periodic checkpoints, and a complete state (model, optimisers,
scheduler, task/sampler state, RNG) so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from pdekit.errors import DivergenceError
from pdekit.solvers.config import check


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
    #: on a non-finite loss, roll back and halve the learning rate at most this many times
    max_rollbacks: int = 3

    def __post_init__(self):
        check(self, "steps", self.steps, low=0, high=10**9, kind=int)
        check(self, "lr", self.lr, low=0.0, high=10.0)
        if self.lr <= 0:
            check(self, "lr", self.lr, low=1e-300)
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

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


class TrainingTask(Protocol):
    """What a solver trains: the Trainer calls these, in this order, every step."""

    model: torch.nn.Module

    def next_batch(self, step: int) -> None:
        """Draw (or keep) the collocation points for this step."""

    def loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named terms on the current batch."""

    def after_step(self, step: int, terms: dict[str, float]) -> bool:
        """Update solver state after an optimiser step; return True to stop training."""

    def status(self) -> dict[str, float]:
        """Extra numbers to show and log (e.g. causal epsilon and min weight)."""

    def state_dict(self) -> dict:
        """Solver state beyond the model (sampler RNG, stages...) for exact resume."""

    def load_state_dict(self, state: dict) -> None: ...


def select_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; otherwise the named device (checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use 'cpu'")
    return dev


class Trainer:
    """Runs a :class:`TrainingTask` under a :class:`TrainConfig`.

    Parameters
    ----------
    task: the solver's task.
    config: optimisation settings.
    verbose: show a progress bar (only when stderr is a terminal).
    checkpoint_fn: called as ``checkpoint_fn(trainer)`` to write a checkpoint (periodically,
        when configured, and never with a non-finite state).
    """

    def __init__(
        self,
        task: TrainingTask,
        config: TrainConfig,
        *,
        verbose: bool = True,
        checkpoint_fn: Callable[[Trainer], None] | None = None,
    ):
        self.task, self.config = task, config
        self.verbose = verbose
        self.checkpoint_fn = checkpoint_fn
        self.model = task.model
        self.step = 0
        self.rollbacks = 0
        self.history: dict[str, list[float]] = {}
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=config.decay_every, gamma=config.lr_decay
        )
        self.lbfgs: torch.optim.LBFGS | None = None
        self.stopped_early = False
        self._snapshot: dict | None = None
        self._last_ckpt_time = time.monotonic()

    @property
    def total_steps(self) -> int:
        return self.config.steps + self.config.lbfgs_steps

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "step": self.step,
            "rollbacks": self.rollbacks,
            "stopped_early": self.stopped_early,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "task": self.task.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.lbfgs is not None:
            state["lbfgs"] = self.lbfgs.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.rollbacks = int(state.get("rollbacks", 0))
        self.stopped_early = bool(state.get("stopped_early", False))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.task.load_state_dict(state["task"])
        torch.set_rng_state(state["torch_rng"])
        if "lbfgs" in state:
            self._make_lbfgs()
            self.lbfgs.load_state_dict(state["lbfgs"])

    def _make_lbfgs(self) -> None:
        self.lbfgs = torch.optim.LBFGS(
            self.model.parameters(),
            lr=1.0,
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
        cfg = self.config
        bar = None
        if self.verbose and sys.stderr.isatty():
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True)
        if self._snapshot is None:
            self._take_snapshot()
        try:
            while self.step < self.total_steps and not self.stopped_early:
                adam = self.step < cfg.steps
                terms, loss_value = self._adam_step() if adam else self._lbfgs_step()
                if not math.isfinite(loss_value):
                    self._rollback(loss_value)
                    continue
                self.step += 1
                stop = self.task.after_step(self.step, terms)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps or stop:
                    self._record(loss_value, terms)
                if bar is not None:
                    bar.update(1)
                    if self.step % max(1, cfg.log_every // 5) == 0:
                        bar.set_postfix_str(self._postfix(loss_value, terms), refresh=False)
                if stop:
                    self.stopped_early = True
                self._maybe_checkpoint()
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _adam_step(self) -> tuple[dict[str, float], float]:
        self.task.next_batch(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss, terms = self.task.loss()
        value = float(loss.detach())
        if math.isfinite(value):
            loss.backward()
            if self.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
        return {k: float(v.detach()) for k, v in terms.items()}, value

    def _lbfgs_step(self) -> tuple[dict[str, float], float]:
        if self.lbfgs is None:
            self.task.next_batch(self.step)  # one batch, then full-batch L-BFGS on it
            self._make_lbfgs()
        last: dict = {}

        def closure():
            self.lbfgs.zero_grad(set_to_none=True)
            loss, terms = self.task.loss()
            loss.backward()
            last["terms"], last["loss"] = terms, float(loss.detach())
            return loss

        self.lbfgs.step(closure)
        return {k: float(v.detach()) for k, v in last["terms"].items()}, last["loss"]

    def _record(self, loss_value: float, terms: dict[str, float]) -> None:
        h = self.history
        h.setdefault("step", []).append(self.step)
        h.setdefault("loss", []).append(loss_value)
        for k, v in terms.items():
            h.setdefault(f"loss/{k}", []).append(v)
        h.setdefault("lr", []).append(self.optimizer.param_groups[0]["lr"])
        for k, v in self.task.status().items():
            h.setdefault(k, []).append(float(v))
        self._take_snapshot()

    def _take_snapshot(self) -> None:
        """Remember a good state (in memory) for the divergence guard."""
        self._snapshot = {
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": copy.deepcopy(self.scheduler.state_dict()),
            "task": copy.deepcopy(self.task.state_dict()),
            "step": self.step,
        }

    def _rollback(self, loss_value: float) -> None:
        """Non-finite loss: restore the last good state and halve the learning rate."""
        self.rollbacks += 1
        if self.rollbacks > self.config.max_rollbacks:
            raise DivergenceError(
                f"training diverged at step {self.step} (loss = {loss_value}) after "
                f"{self.config.max_rollbacks} rollbacks with halved learning rates; "
                "the last good checkpoint (if any) is intact. Lower train.lr or check the "
                "problem's scaling."
            )
        snap = self._snapshot
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(snap["optimizer"])
        self.scheduler.load_state_dict(snap["scheduler"])
        self.task.load_state_dict(snap["task"])
        self.step = snap["step"]
        self.lbfgs = None
        factor = 0.5**self.rollbacks
        for group in self.optimizer.param_groups:
            group["lr"] *= factor
        self.scheduler.base_lrs = [lr * factor for lr in self.scheduler.base_lrs]
        print(
            f"pdekit: non-finite loss ({loss_value}); rolled back to step {self.step} and "
            f"scaled the learning rate by {factor:g} (rollback {self.rollbacks}/"
            f"{self.config.max_rollbacks})",
            file=sys.stderr,
        )

    def _maybe_checkpoint(self) -> None:
        if self.checkpoint_fn is None:
            return
        cfg = self.config
        due = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
        if cfg.checkpoint_minutes and time.monotonic() - self._last_ckpt_time >= 60 * (
            cfg.checkpoint_minutes
        ):
            due = True
        if due:
            self.checkpoint_fn(self)
            self._last_ckpt_time = time.monotonic()

    def _postfix(self, loss_value: float, terms: dict[str, float]) -> str:
        parts = [f"loss={loss_value:.3e}"]
        parts += [f"{k}={v:.2e}" for k, v in list(terms.items())[:4]]
        parts += [f"{k}={v:.3g}" for k, v in self.task.status().items()]
        return " ".join(parts)
