"""The Solution of one instance by an operator learner trained on a family of instances.

An operator network maps the first ``k`` snapshots of a trajectory (from snapshot ``start``) to
the rest of it. Answering one instance of the family's problem (one initial condition):

1. its first ``start + k`` snapshots at the family's output times are simulated by the problem's
   own solver (:meth:`~pdekit.problems.base.Problem.simulate`, on the dataset grid, refined as the
   family asks: :func:`simulate_instance`), exactly as the dataset's trajectories were;
2. the network predicts the snapshots after them from the last ``k``;
3. the state fields at every snapshot (simulated, then predicted) are completed to all the
   problem's fields (:meth:`~pdekit.problems.base.Problem.complete`) and interpolated: local
   cubic Lagrange interpolation in space (periodic axes wrapped) and time
   (:class:`~pdekit.problems.references.grid.GridReference`), exact at the grid nodes and
   snapshot times.

``errors()`` scores the *predicted* snapshots (not the simulated inputs) at the dataset grid's
nodes, against the problem's reference; ``family_errors(split)`` scores the model on a split of
the family, as the operator-learning papers report it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pdekit.geometries.grid import Grid, TensorGrid
from pdekit.metrics import pdebench_metrics
from pdekit.metrics import rel_l2 as _rel_l2
from pdekit.problems.base import Problem
from pdekit.problems.datasets import Dataset, restrict
from pdekit.problems.family import Family
from pdekit.problems.references.grid import GridReference
from pdekit.solution import Solution


def simulate_instance(fam: Family, problem: Problem, grid: Grid, times: np.ndarray) -> np.ndarray:
    """The state trajectory ``(len(times), *space, fields)`` of ``problem`` (a member of
    ``fam``) from its own initial state, on ``grid``: simulated on the family's refined solver
    grid and restricted, as :meth:`Dataset.generate` does."""
    factor = fam.solver_factor(grid)
    fine = grid if factor == 1 else Grid(grid.lo, grid.hi, [n * factor for n in grid.n],
                                         grid.periodic, grid.coordinates)  # fmt: skip
    start = problem.initial_state(fine)
    states = {k: v[None] for k, v in start.items()}
    traj = problem.simulate(states, fine, np.asarray(times), **fam.solver_options)
    loc = problem.state_location
    return np.stack([restrict(traj[k], factor, loc, grid.dim)[0] for k in problem.state], axis=-1)


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: np.ndarray | torch.Tensor, batch: int = 16):
    """The model's outputs for inputs ``(n, k, *space, fields)``, as float64 numpy, in batches
    (by the model's ``answer`` where it has one: the same function evaluated for answering,
    :meth:`~pdekit.solvers.fno.NeuralopFNO.answer`)."""
    param = next(model.parameters())
    run = getattr(model, "answer", model)
    x = torch.as_tensor(np.asarray(inputs))
    was_training = model.training
    model.eval()
    try:
        # no autograd graph of the network: answering is not training. no_grad, not
        # inference_mode: a hard-constrained model's LM takes derivatives of its residual inside
        with torch.no_grad():
            outs = [
                run(x[i : i + batch].to(param.device, param.dtype)).cpu().double().numpy()
                for i in range(0, len(x), batch)
            ]
    finally:
        model.train(was_training)
    return np.concatenate(outs)


class OperatorSolution(Solution):
    """One instance of a family's problem answered by an operator network (module docstring).

    Parameters
    ----------
    problem: the instance.
    solver: the solver's name.
    config: the solver's config.
    model: the network ``(B, k, *space, fields) -> (B, rest, *space, fields)``.
    family: the family the model was trained on.
    grid: the dataset grid.
    times: the family's output times.
    in_steps, start: the network sees snapshots ``start .. start + in_steps - 1``.
    inputs: the instance's first ``start + in_steps`` snapshots (default: simulated).

    Notes
    -----
    Other keyword arguments go to :class:`~pdekit.solution.Solution`.
    """

    def __init__(
        self,
        problem: Problem,
        solver: str,
        config: Any,
        model: torch.nn.Module,
        family: Family,
        grid: Grid,
        times: np.ndarray,
        in_steps: int,
        start: int,
        *,
        inputs: np.ndarray | None = None,
        **kwargs: Any,
    ):
        super().__init__(problem, solver, config, self._evaluate, model=model, **kwargs)
        self.family, self.grid = family, grid
        self.times = np.asarray(times, dtype=np.float64)
        self.in_steps, self.start = in_steps, start
        self._inputs = inputs
        self._trajectory: np.ndarray | None = None
        self._interpolant: GridReference | None = None

    def regridded(self, grid: Grid) -> OperatorSolution:
        """The same instance and model answered on another ``grid`` of the family."""
        return type(self)(
            self.problem, self.solver, self.config, self.model, self.family, grid, self.times,
            self.in_steps, self.start,
        )  # fmt: skip

    # -- the instance --------------------------------------------------------------------------
    @property
    def known(self) -> int:
        """Snapshots simulated (inputs and those before them); the rest are predicted."""
        return self.start + self.in_steps

    @property
    def trajectory(self) -> np.ndarray:
        """State ``(len(times), *space, fields)``: simulated snapshots, then the prediction."""
        if self._trajectory is None:
            if self._inputs is None:
                self._inputs = simulate_instance(
                    self.family, self.problem, self.grid, self.times[: self.known]
                )
            x = self._inputs[None, self.start : self.known]
            pred = predict(self.model, x)[0]
            self._trajectory = np.concatenate([self._inputs.astype(np.float64), pred])
        return self._trajectory

    @property
    def predicted_times(self) -> np.ndarray:
        return self.times[self.known :]

    def fields_on_grid(self) -> dict[str, np.ndarray]:
        """Every field of the problem at the grid nodes and snapshot times, ``(t, *space)``."""
        traj = self.trajectory
        state = {k: torch.as_tensor(traj[..., j]) for j, k in enumerate(self.problem.state)}
        full = self.problem.complete(state, self.grid)
        return {k: v.detach().cpu().double().numpy() for k, v in full.items()}

    def _evaluate(self, points: np.ndarray) -> dict[str, np.ndarray]:
        if self._interpolant is None:
            loc = self.problem.state_location
            space = self.grid.axes(loc)
            axes = {c: (self.times if c == "t" else space[c]) for c in self.problem.coordinates}
            periodic = [False if c == "t" else self.grid.periodic[list(space).index(c)]
                        for c in self.problem.coordinates]  # fmt: skip
            t_axis = self.problem.coordinates.index("t")
            values = {k: np.moveaxis(v, 0, t_axis) for k, v in self.fields_on_grid().items()}
            self._interpolant = GridReference(
                axes,
                values,
                periodic,
                description=f"{self.solver} prediction of {self.problem.name}",
                accuracy="the model's; cubic interpolation between nodes and snapshots",
            )
        return self._interpolant(points)

    # -- scores --------------------------------------------------------------------------------
    def prediction_grid(self) -> TensorGrid:
        """The dataset grid's nodes at the predicted snapshot times."""
        space = self.grid.axes(self.problem.state_location)
        return TensorGrid(
            {c: (self.predicted_times if c == "t" else space[c]) for c in self.problem.coordinates}
        )

    def errors(self, grid: TensorGrid | None = None) -> dict[str, float]:
        """Errors against the problem's reference (:meth:`Solution.errors`), by default on
        :meth:`prediction_grid`: the predicted snapshots at the grid nodes, where the model
        answers (the simulated input snapshots are left out)."""
        return super().errors(grid if grid is not None else self.prediction_grid())

    def family_errors(
        self, split: str = "test", size: int | None = None, *, progress: bool | None = False
    ) -> dict[str, dict[str, float]]:
        """The model's errors over a split of its family (the dataset, generated if needed).

        Per member, over the predicted snapshots of its state: the relative L2 error
        ||pred - ref||_2 / ||ref||_2 over space, time and fields (the true relative L2, not divided
        by sqrt(n_t)), and PDEBench's metrics (:func:`pdekit.metrics.pdebench_metrics`, time and
        fields as the extra axes). Returns ``{metric: {"mean": ..., "std": ...}}`` (std: the
        population standard deviation over members) and ``{"members": {"count": n}}``.
        """
        ds = Dataset.generate(
            self.family, split, size, grid=list(self.grid.n), times=self.times, progress=progress
        ).with_steps(self.in_steps, self.start)
        data = ds.trajectories
        pred = predict(self.model, data[:, self.start : self.known])
        ref = data[:, self.known :].astype(np.float64)
        per: dict[str, list[float]] = {"rel_l2": []}
        dim = self.grid.dim
        for p, r in zip(pred, ref, strict=True):
            per["rel_l2"].append(_rel_l2(p, r))
            # PDEBench's layout: (batch, *space, time, fields)
            metrics = pdebench_metrics(np.moveaxis(p, 0, dim)[None], np.moveaxis(r, 0, dim)[None],
                                       ndim=dim)  # fmt: skip
            for k, v in metrics.items():
                per.setdefault(k, []).append(v)
        out = {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in per.items()}
        out["members"] = {"count": len(ref)}
        return out
