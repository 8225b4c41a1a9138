"""The Solver interface and the shared machinery of network (PINN-type) solvers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from pdekit.checkpoints import Checkpoint, checkpoint_name, remove_stale_temporaries, rotate
from pdekit.core.allocator import retain_freed_memory
from pdekit.errors import CheckpointError
from pdekit.problems.base import Problem
from pdekit.solution import Solution
from pdekit.solvers import distributed
from pdekit.solvers.training import Trainer, TrainingTask, select_device


@dataclass
class RunOptions:
    """How to run a fit (not part of the solver's config: it does not change the result)."""

    device: str = "auto"
    seed: int = 0
    verbose: bool = True
    #: directory for periodic checkpoints (None: no periodic checkpoints)
    checkpoint_dir: Path | None = None
    #: a checkpoint to resume from (its trainer state is restored)
    resume: Checkpoint | None = None
    #: filled in by the solver (also when training stops with an error): ``wall_s``, the wall
    #: time of the fit, and ``checkpoint_write_s``, the seconds each checkpoint write took
    stats: dict[str, Any] = field(default_factory=dict)


class Solver:
    """A solver backend. Subclasses set ``name``, ``Config``, ``description`` and implement
    :meth:`supports`, :meth:`fit` and :meth:`restore`."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: the solver reads the problem's grid scene (``mac_scene``: solids as cells), so it can
    #: solve problems whose geometry lives only there (``Problem.scene_only_geometry``)
    reads_mac_scene: ClassVar[bool] = False
    #: named settings measured to work: ``{preset: {problem name: {dotted key: value}}}``
    #: (``pdekit.solve(..., preset=NAME)``, ``pdekit solve --preset NAME``)
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}

    def supports(self, problem: Problem) -> str | None:
        """None when the problem is supported, else the reason it is not."""
        return None

    def fit(self, problem: Problem, config: Any, run: RunOptions) -> Solution:
        raise NotImplementedError

    def restore(self, problem: Problem, config: Any, ckpt: Checkpoint) -> Solution:
        """Rebuild a Solution from a checkpoint written by this solver."""
        raise NotImplementedError


def network_predictor(model: torch.nn.Module, fields, batch: int = 65536):
    """Numpy-in, numpy-out prediction of a network whose outputs are ``fields`` in order."""
    param = next(model.parameters())

    def predict(points: np.ndarray) -> dict[str, np.ndarray]:
        outs = []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for i in range(0, len(points), batch):
                x = torch.as_tensor(points[i : i + batch], dtype=param.dtype, device=param.device)
                outs.append(model(x).cpu().double().numpy())
        model.train(was_training)
        out = np.concatenate(outs) if outs else np.zeros((0, len(fields)))
        return {k: out[:, j] for j, k in enumerate(fields)}

    return predict


class NetworkSolver(Solver):
    """Base of solvers that train one torch network with the shared :class:`Trainer`.

    Subclasses implement :meth:`build_model` and :meth:`build_task`; they may override
    :meth:`predictor` (how the trained model answers at points) and :meth:`extras`.
    """

    def build_model(self, problem: Problem, config: Any) -> torch.nn.Module:
        raise NotImplementedError

    def build_task(
        self,
        problem: Problem,
        config: Any,
        model: torch.nn.Module,
        rng: np.random.Generator,
        device: torch.device,
    ) -> TrainingTask:
        raise NotImplementedError

    def predictor(self, problem: Problem, config: Any, model: torch.nn.Module):
        return network_predictor(model, problem.fields)

    def extras(self, task: TrainingTask) -> dict[str, Any]:
        return {}

    # -- fit / restore -------------------------------------------------------------------------
    def _model(self, problem: Problem, config: Any, device: torch.device) -> torch.nn.Module:
        return self.build_model(problem, config).to(device=device, dtype=config.train.torch_dtype)

    def fit(self, problem: Problem, config: Any, run: RunOptions) -> Solution:
        """Train (or continue training from ``run.resume``) and return the Solution.

        Under ``torchrun`` (an initialised process group) every rank trains the same model on
        its own collocation batches (seeded per rank), its gradients averaged by
        DistributedDataParallel or by the Trainer (see TrainingTask), and rank 0 alone writes
        checkpoints.
        """
        dist = distributed.current()
        device = dist.place(select_device(run.device))
        if device.type == "cpu":
            retain_freed_memory()  # no page faults on every step's fresh tensors
        torch.manual_seed(run.seed)
        rng = np.random.default_rng(dist.seed(run.seed))
        model = self._model(problem, config, device)
        if (rank_seed := dist.torch_seed(run.seed)) is not None:
            torch.manual_seed(rank_seed)  # the same network, then each rank's own draws
        task = self.build_task(problem, config, model, rng, device)
        trainer = Trainer(
            task,
            config.train,
            verbose=run.verbose,
            checkpoint_fn=self._checkpointer(problem, config, task, run, dist),
            dist=dist,
        )
        if run.resume is not None:
            _resume(model, trainer, run.resume)
        t0 = time.perf_counter()
        try:
            trainer.run()
        finally:
            run.stats["wall_s"] = time.perf_counter() - t0
            run.stats["checkpoint_write_s"] = list(trainer.checkpoint_seconds)
        return self._solution(problem, config, model, task, trainer, trainer.full_state())

    def _solution(self, problem, config, model, task, trainer, state=None) -> Solution:
        return Solution(
            problem,
            self.name,
            config,
            self.predictor(problem, config, model),
            model=model,
            trainer_state=state if state is not None else trainer.state_dict(),
            history=trainer.history,
            extras=self.extras(task),
            step=trainer.step,
        )

    def _checkpointer(self, problem, config, task, run: RunOptions, dist=None):
        """The function writing ``checkpoint_<step>.h5`` files into ``run.checkpoint_dir`` and
        keeping the newest ``config.train.keep_checkpoints`` (rank 0 only)."""
        if run.checkpoint_dir is None:
            return None
        directory = Path(run.checkpoint_dir)
        if dist is None or dist.is_writer:
            remove_stale_temporaries(directory)

        def write(trainer: Trainer) -> Path:
            state = trainer.checkpoint_state()
            sol = self._solution(problem, config, trainer.model, task, trainer, state)
            path = sol.save(directory / checkpoint_name(trainer.step))
            rotate(directory, config.train.keep_checkpoints, trainer.step)
            return path

        return write

    def restore(self, problem: Problem, config: Any, ckpt: Checkpoint) -> Solution:
        model = self._model(problem, config, torch.device("cpu"))
        _load_model(model, ckpt)
        extras = dict(ckpt.extras)
        history = extras.pop("history", {})
        return Solution(
            problem,
            self.name,
            config,
            self.predictor(problem, config, model),
            model=model,
            trainer_state=ckpt.trainer,
            history=history,
            extras=extras,
            step=ckpt.step,
        )


def _load_model(model: torch.nn.Module, ckpt: Checkpoint) -> None:
    try:
        model.load_state_dict(ckpt.model)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{ckpt.source or 'the checkpoint'}: its model weights do not fit the network built "
            f"from its config ({first})"
        ) from None


def _resume(model: torch.nn.Module, trainer: Trainer, ckpt: Checkpoint) -> None:
    """Restore model and trainer state from a checkpoint, naming the file on failure."""
    name = ckpt.source or "the checkpoint"
    if ckpt.trainer is None:
        raise CheckpointError(f"{name} holds no trainer state; it cannot be resumed")
    _load_model(model, ckpt)
    try:
        trainer.load_state_dict(ckpt.trainer)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot resume {name}: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{name}: its trainer state is incomplete or does not fit this solver ({first})"
        ) from None
    if ckpt.source:
        trainer.resumed_from(Path(ckpt.source))
