"""A training task over a dataset of (input, target) pairs: what operator learners train on.

:class:`DatasetTask` plugs into the one :class:`~pdekit.solvers.training.Trainer`: epochs of
shuffled mini-batches, a validation metric every ``eval_every`` steps with the best parameters
kept, and data parallelism under ``torchrun``. A solver uses it as::

    task = DatasetTask(model, train_data, DatasetConfig(batch_size=32, eval_every=100),
                       valid=valid_data)
    trainer = Trainer(task, train_config, phases=[Phase("pretrain", 2000),
                                                  Phase("finetune", 500, 1e-4, train="head.")])
    trainer.run()            # ends with the best parameters in the model when keep_best

Data is anything with ``len(data)`` and ``data[i] -> (x, y)`` tensors (a torch Dataset), or a
pair ``(X, Y)`` of tensors holding every sample along the first axis.

Batches. Every epoch is a permutation of the samples drawn from a numpy generator seeded with
``DatasetConfig.seed`` (the same on every process); global batch ``k`` of an epoch is the
permutation's entries ``k * B ... (k + 1) * B - 1`` (``B = batch_size``), and the last
``len(data) % B`` entries of each epoch are dropped, so every batch has ``B`` samples. The
generator state the epoch was drawn from and the position in the epoch are the task's state, so a
run stopped mid-epoch resumes with the very batches it would have seen.

Several processes (``torchrun``): process ``r`` of ``W`` takes the ``r``-th of ``W`` equal,
contiguous parts of every global batch (``B`` must be a multiple of ``W``); the parts are
disjoint, their union is the global batch, and DDP's averaged gradient of the per-process mean
loss is the gradient of the mean loss on the global batch: the run equals one process with batch
``B`` to rounding. Validation runs on the whole validation set on every process (alike on all).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.solvers import distributed
from pdekit.solvers.config import check
from pdekit.solvers.training import TrainingTask


class PairDataset(Protocol):
    """What a dataset task reads: ``len(data)`` samples, ``data[i] -> (x, y)`` tensors."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]: ...


#: a loss or metric of a prediction against its target
PairFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every entry of the batch (the default training loss)."""
    return torch.mean((pred - target) ** 2)


def rel_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Relative L2 error of each sample, :math:`\|\hat y_i - y_i\|_2 / \|y_i\|_2`, over all
    entries of the sample (the default validation metric; shape ``(batch,)``)."""
    diff = (pred - target).reshape(pred.shape[0], -1)
    ref = target.reshape(target.shape[0], -1)
    return torch.linalg.vector_norm(diff, dim=1) / torch.linalg.vector_norm(ref, dim=1)


def mean_rel_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The relative (Bochner) L2 loss: per sample ||pred - y|| / ||y|| over all its entries
    (space and time: the true relative error, not divided by sqrt(n_t)), averaged over the
    batch."""
    return rel_l2(pred, target).mean()


@dataclass
class DatasetConfig:
    """How a dataset task draws batches and validates."""

    #: global mini-batch size (over all processes under torchrun)
    batch_size: int = 32
    #: seed of the generator of every epoch's permutation (the same on every process)
    seed: int = 0
    #: evaluate the metric on the validation data every this many steps (0: never)
    eval_every: int = 100
    #: keep the parameters of the best validation so far, and put them in the model at the end
    keep_best: bool = True

    def __post_init__(self):
        check(self, "batch_size", self.batch_size, low=1, kind=int)
        check(self, "seed", self.seed, low=0, high=2**63 - 1, kind=int)
        check(self, "eval_every", self.eval_every, low=0, kind=int)
        if not isinstance(self.keep_best, bool):
            raise ParameterError(
                f"DatasetConfig.keep_best must be true or false; got {self.keep_best!r}"
            )


class _Samples:
    """Uniform access to a pair of tensors or a dataset of pairs."""

    def __init__(self, data: Any, what: str):
        if (
            isinstance(data, tuple | list)
            and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            x, y = data
            if x.shape[0] != y.shape[0]:
                raise ParameterError(
                    f"{what}: inputs and targets must have the same number of samples; got "
                    f"{x.shape[0]} and {y.shape[0]}"
                )
            self.tensors: tuple[torch.Tensor, torch.Tensor] | None = (x, y)
            self.n = int(x.shape[0])
        elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
            self.tensors, self.data, self.n = None, data, len(data)
        else:
            raise ParameterError(
                f"{what} must be a pair (inputs, targets) of tensors or a dataset with len() and "
                f"[i] -> (x, y); got {type(data).__name__}"
            )
        if self.n == 0:
            raise ParameterError(f"{what} is empty")

    def take(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tensors is not None:
            idx = torch.from_numpy(np.ascontiguousarray(index, dtype=np.int64))
            x, y = self.tensors
            return x[idx.to(x.device)], y[idx.to(y.device)]
        pairs = [self.data[int(i)] for i in index]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class DatasetTask(TrainingTask):
    """Supervised learning of ``model(x) ≈ y`` over a dataset, for the Trainer.

    Parameters
    ----------
    model: the network (its parameters' device and dtype are those of every batch).
    train: the training data (a dataset of pairs or a pair of tensors; see the module).
    config: batches and validation.
    valid: validation data (None: no validation).
    loss_fn: training loss of a batch (default :func:`mse`).
    metric: validation metric, lower is better: per-sample values or a scalar; the validation
        value is its mean over the validation set (default :func:`rel_l2`).
    dist: the process group (default: :func:`pdekit.solvers.distributed.current`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train: PairDataset | tuple[torch.Tensor, torch.Tensor],
        config: DatasetConfig | None = None,
        *,
        valid: PairDataset | tuple[torch.Tensor, torch.Tensor] | None = None,
        loss_fn: PairFn = mse,
        metric: PairFn = rel_l2,
        dist: distributed.Distributed | None = None,
    ):
        self.model = model
        self.net = model  # the unwrapped network (``model`` becomes the DDP wrapper in a run)
        self.config = config if config is not None else DatasetConfig()
        self.dist = dist if dist is not None else distributed.current()
        self.train = _Samples(train, "training data")
        self.valid = None if valid is None else _Samples(valid, "validation data")
        self.loss_fn, self.metric = loss_fn, metric
        b, world = self.config.batch_size, self.dist.world_size
        if b > self.train.n:
            raise ParameterError(
                f"DatasetConfig.batch_size {b} exceeds the {self.train.n} training samples"
            )
        if b % world:
            raise ParameterError(
                f"DatasetConfig.batch_size {b} must be a multiple of the {world} processes"
            )
        #: mini-batches per epoch (the remainder of each epoch's permutation is dropped)
        self.batches_per_epoch = self.train.n // b
        self.rng = np.random.default_rng(self.config.seed)
        self.epoch = -1  # index of the epoch in progress (-1: none drawn yet)
        self.cursor = 0  # batches of the epoch used so far
        self._perm: np.ndarray | None = None
        self._epoch_state: dict | None = None  # generator state the epoch was drawn from
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None
        #: validation record: the steps and the metric's values there
        self.valid_history: dict[str, list] = {"step": [], "metric": []}
        self.best_metric = math.inf
        self.best_step = -1
        #: parameters (and buffers) at the best validation, on the CPU
        self.best_state: dict[str, torch.Tensor] = {}

    # -- batches -------------------------------------------------------------------------------
    def _new_epoch(self) -> None:
        self._epoch_state = self.rng.bit_generator.state
        self._perm = self.rng.permutation(self.train.n)
        self.epoch += 1
        self.cursor = 0

    def next_batch(self, step: int) -> None:
        if self._perm is None or self.cursor >= self.batches_per_epoch:
            self._new_epoch()
        b = self.config.batch_size
        part = b // self.dist.world_size
        start = self.cursor * b + self.dist.rank * part
        self.cursor += 1
        self.batch = self.train.take(self._perm[start : start + part])

    def _placed(self, x: torch.Tensor, y: torch.Tensor):
        ref = next(self.net.parameters())
        cast = (lambda t: t.to(ref.device, ref.dtype)) if ref.is_floating_point() else None
        return (cast(x), cast(y)) if cast else (x.to(ref.device), y.to(ref.device))

    def loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = self._placed(*self.batch)
        loss = self.loss_fn(self.model(x), y)
        return loss, {"data": loss}

    # -- validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, data: PairDataset | tuple | None = None) -> float:
        """The mean validation metric of the network on ``data`` (default: the validation
        data), in batches of ``batch_size``."""
        samples = self.valid if data is None else _Samples(data, "evaluation data")
        if samples is None:
            raise ParameterError("no validation data was given to the dataset task")
        was_training = self.net.training
        self.net.eval()
        total, count = 0.0, 0
        try:
            for lo in range(0, samples.n, self.config.batch_size):
                index = np.arange(lo, min(lo + self.config.batch_size, samples.n))
                x, y = self._placed(*samples.take(index))
                values = torch.as_tensor(self.metric(self.net(x), y)).reshape(-1)
                weight = len(index) if values.numel() == 1 else 1
                total += float(values.double().sum()) * weight
                count += len(index)
        finally:
            self.net.train(was_training)
        return total / count

    def after_step(self, step: int, terms: dict[str, float]) -> bool:
        every = self.config.eval_every
        if self.valid is not None and every > 0 and step % every == 0:
            value = self.evaluate()
            self.valid_history["step"].append(step)
            self.valid_history["metric"].append(value)
            if self.config.keep_best and value < self.best_metric:
                self.best_metric, self.best_step = value, step
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()
                }
        return False

    def status(self) -> dict[str, float]:
        return {}

    def end_training(self) -> None:
        """Called by the Trainer when training ends: with ``keep_best``, put the parameters of
        the best validation into the model."""
        if self.config.keep_best and self.best_state:
            self.net.load_state_dict(self.best_state)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "epoch_rng": self._epoch_state,
            "epoch": self.epoch,
            "cursor": self.cursor,
            "valid_step": list(self.valid_history["step"]),
            "valid_metric": list(self.valid_history["metric"]),
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "best": dict(self.best_state),
        }

    def load_state_dict(self, state: dict) -> None:
        self._epoch_state = state["epoch_rng"]
        if self._epoch_state is not None:  # re-draw the permutation of the epoch in progress
            self.rng.bit_generator.state = self._epoch_state
            self._perm = self.rng.permutation(self.train.n)
        else:
            self._perm = None
        self.rng.bit_generator.state = state["rng"]
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.valid_history = {
            "step": [int(s) for s in state["valid_step"]],
            "metric": [float(v) for v in state["valid_metric"]],
        }
        self.best_metric = float(state["best_metric"])
        self.best_step = int(state["best_step"])
        self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in state["best"].items()}
        self.batch = None

    def finished(self) -> bool:
        return False
