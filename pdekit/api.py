"""The public entry points: solve a named problem with a named solver; load a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pdekit import problems, solvers
from pdekit.checkpoints import Checkpoint, load_checkpoint
from pdekit.errors import CheckpointError, ParameterError, UnsupportedPairError
from pdekit.problems.base import Problem
from pdekit.solution import Solution
from pdekit.solvers.base import RunOptions
from pdekit.solvers.config import apply_overrides


def supported_solvers(problem: Problem) -> list[str]:
    """Names of the solvers that can solve ``problem``."""
    return [n for n in solvers.names() if solvers.get(n).supports(problem) is None]


def check_pair(problem: Problem, solver_name: str) -> None:
    """Raise UnsupportedPairError (why, and who can) if the solver cannot solve the problem."""
    reason = solvers.get(solver_name).supports(problem)
    if reason is not None:
        others = [n for n in supported_solvers(problem) if n != solver_name]
        raise UnsupportedPairError(
            f"solver {solver_name!r} does not support {problem.name}: {reason}. "
            f"Solvers that do: {', '.join(others) or 'none'}"
        )


def make_config(
    solver_name: str, config: Any = None, overrides: dict | None = None, steps: int | None = None
):
    """The solver's typed config from a config instance/dict, dotted overrides and ``steps``."""
    solver = solvers.get(solver_name)
    overrides = dict(overrides or {})
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ParameterError(f"steps must be a non-negative integer; got {steps!r}")
        overrides["train.steps"] = steps
    return apply_overrides(solver.Config, config, overrides)


def solve(
    name: str,
    solver: str = "pinn",
    steps: int | None = None,
    config: Any = None,
    device: str = "auto",
    seed: int = 0,
    *,
    resume: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    **params: Any,
) -> Solution:
    """Solve the named problem with the named solver.

    Parameters
    ----------
    name: problem name, ``"family/name"`` (see ``pdekit.problems.names()``).
    solver: solver name (see ``pdekit.solvers.names()``).
    steps: training budget (overrides ``config.train.steps``).
    config: the solver's typed config (``solvers.get(solver).Config``), a dict, or None for the
        paper defaults.
    device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    seed: seeds the network initialisation and the collocation sampling.
    resume: continue training from this checkpoint (same problem, parameters and solver).
    checkpoint_dir: write periodic checkpoints here (``config.train.checkpoint_every``).
    **params: the problem's parameters (``beta=30``, ``re=100``...).

    Returns
    -------
    Solution: ``sol(points)``, ``sol.errors()``, ``sol.to_vtk(path)``, ``sol.save(path)``.
    """
    problem = problems.get(name, **params)
    check_pair(problem, solver)
    ckpt: Checkpoint | None = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        _check_resume(ckpt, problem, solver, resume)
        if config is None:
            config = ckpt.solver_config
    cfg = make_config(solver, config, steps=steps)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterError(f"seed must be an integer; got {seed!r}")
    run = RunOptions(
        device=device,
        seed=seed,
        verbose=verbose,
        resume=ckpt,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
    )
    return solvers.get(solver).fit(problem, cfg, run)


def _check_resume(ckpt: Checkpoint, problem: Problem, solver: str, path) -> None:
    if ckpt.problem != problem.name:
        raise CheckpointError(
            f"{path} is a checkpoint of problem {ckpt.problem!r}, not {problem.name!r}"
        )
    if ckpt.problem_params != problem.params():
        raise CheckpointError(
            f"{path} was written for parameters {ckpt.problem_params}, not {problem.params()}"
        )
    if ckpt.solver != solver:
        raise CheckpointError(f"{path} is a checkpoint of solver {ckpt.solver!r}, not {solver!r}")


def load(path: str | os.PathLike) -> Solution:
    """Load a Solution from an HDF5 checkpoint written by ``Solution.save`` or training.

    Needs nothing but the file: problem, parameters, solver and config are stored in it.
    """
    ckpt = load_checkpoint(path)
    try:
        problem = problems.get(ckpt.problem, **ckpt.problem_params)
        solver = solvers.get(ckpt.solver)
        config = make_config(ckpt.solver, ckpt.solver_config)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} cannot be restored: {exc}") from None
    return solver.restore(problem, config, ckpt)
