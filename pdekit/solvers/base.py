"""The Solver interface and the shared machinery of network (PINN-type) solvers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from pdekit.checkpoints import Checkpoint
from pdekit.problems.base import Problem
from pdekit.solution import Solution
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
    #: filled in by the solver: wall time of the fit in seconds
    stats: dict[str, Any] = field(default_factory=dict)


class Solver:
    """A solver backend. Subclasses set ``name``, ``Config``, ``description`` and implement
    :meth:`supports`, :meth:`fit` and :meth:`restore`."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""

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
        device = select_device(run.device)
        torch.manual_seed(run.seed)
        rng = np.random.default_rng(run.seed)
        model = self._model(problem, config, device)
        task = self.build_task(problem, config, model, rng, device)
        trainer = Trainer(
            task,
            config.train,
            verbose=run.verbose,
            checkpoint_fn=self._checkpointer(problem, config, task, run),
        )
        if run.resume is not None:
            model.load_state_dict(run.resume.model)
            if run.resume.trainer is None:
                raise ValueError("this checkpoint holds no trainer state; it cannot be resumed")
            trainer.load_state_dict(run.resume.trainer)
        t0 = time.perf_counter()
        trainer.run()
        run.stats["wall_s"] = time.perf_counter() - t0
        return self._solution(problem, config, model, task, trainer)

    def _solution(self, problem, config, model, task, trainer) -> Solution:
        return Solution(
            problem,
            self.name,
            config,
            self.predictor(problem, config, model),
            model=model,
            trainer_state=trainer.state_dict(),
            history=trainer.history,
            extras=self.extras(task),
            step=trainer.step,
        )

    def _checkpointer(self, problem, config, task, run: RunOptions):
        if run.checkpoint_dir is None:
            return None
        directory = Path(run.checkpoint_dir)

        def write(trainer: Trainer) -> None:
            sol = self._solution(problem, config, trainer.model, task, trainer)
            sol.save(directory / f"checkpoint_{trainer.step:08d}.h5")
            old = sorted(directory.glob("checkpoint_*.h5"))[: -config.train.keep_checkpoints]
            for p in old:
                p.unlink(missing_ok=True)

        return write

    def restore(self, problem: Problem, config: Any, ckpt: Checkpoint) -> Solution:
        model = self._model(problem, config, torch.device("cpu"))
        model.load_state_dict(ckpt.model)
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
