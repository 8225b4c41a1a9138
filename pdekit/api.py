"""The public entry points: solve a named problem with a named solver; load a checkpoint."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pdekit import problems, solvers
from pdekit.checkpoints import (
    Checkpoint,
    ensure_writable_dir,
    find_resumable,
    load_checkpoint,
    load_checkpoint_bytes,
)
from pdekit.errors import (
    CheckpointError,
    ParameterError,
    PdekitError,
    UnknownNameError,
    UnsupportedPairError,
)
from pdekit.problems.base import Problem
from pdekit.solution import Solution
from pdekit.solvers import distributed
from pdekit.solvers.base import RunOptions
from pdekit.solvers.config import apply_overrides, to_dict
from pdekit.solvers.training import RESUMABLE_FIELDS, select_device

#: config keys that may differ from the checkpoint's when resuming
RESUMABLE_KEYS = tuple(f"train.{k}" for k in RESUMABLE_FIELDS)
MAX_SEED = 2**63 - 1


def _unsupported(problem: Problem, solver_name: str) -> str | None:
    """Why the solver cannot solve the problem (geometry only in the problem's grid scene,
    which the solver does not read; then the solver's own ``supports``), or None."""
    solver = solvers.get(solver_name)  # an unknown name is refused with the valid ones first
    why = getattr(problem, "scene_only_geometry", "")
    if why and not getattr(solver, "reads_mac_scene", False):
        return why
    return solver.supports(problem)


def supported_solvers(problem: Problem) -> list[str]:
    """Names of the solvers that can solve ``problem``."""
    return [n for n in solvers.names() if _unsupported(problem, n) is None]


def check_pair(problem: Problem, solver_name: str) -> None:
    """Raise UnsupportedPairError (why, and who can) if the solver cannot solve the problem."""
    reason = _unsupported(problem, solver_name)
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
    solver = solvers.get(_name(solver_name, "solver"))
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ParameterError(
            f"overrides must be a mapping of dotted config keys; got {overrides!r}"
        )
    overrides = dict(overrides or {})
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ParameterError(f"steps must be a non-negative integer; got {steps!r}")
        overrides["train.steps"] = steps
    return apply_overrides(solver.Config, config, overrides)


def preset_overrides(solver: str, preset: str, problem: str) -> dict[str, Any]:
    """The dotted config settings of a solver's named ``preset`` for ``problem``.

    Raises UnknownNameError for a preset the solver does not have (listing those it has) and
    ParameterError for a preset that does not cover the problem (listing the problems it does).
    """
    s = solvers.get(_name(solver, "solver"))
    if preset not in s.presets:
        raise UnknownNameError(f"preset of {solver}", preset, sorted(s.presets))
    per_problem = s.presets[preset]
    if problem not in per_problem:
        raise ParameterError(
            f"{solver}'s preset {preset!r} has settings for {', '.join(sorted(per_problem))}, "
            f"not for {problem}"
        )
    return dict(per_problem[problem])


def solve(
    name: str,
    solver: str = "pinn",
    steps: int | None = None,
    config: Any = None,
    device: str = "auto",
    seed: int = 0,
    *,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    params: Mapping[str, Any] | None = None,
    **kwparams: Any,
) -> Solution:
    """Solve the named problem with the named solver.

    Parameters
    ----------
    name: problem name, ``"family/name"`` (see ``pdekit.problems.names()``).
    solver: solver name (see ``pdekit.solvers.names()``).
    steps: training budget (overrides ``config.train.steps``).
    config: the solver's typed config (``solvers.get(solver).Config``), a (nested) dict, or None
        for the paper defaults.
    device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    seed: seeds the network initialisation and the collocation sampling (per rank under
        torchrun).
    preset: a named set of settings of the solver for this problem, measured to work
        (``solvers.get(solver).presets``; ``causal_pinn``'s ``"benchmark"``), applied on top
        of ``config`` and under ``overrides``.
    overrides: dotted config keys applied on top of ``config``, e.g. ``{"train.lr": 1e-3}``.
    resume: continue training from this checkpoint file, or from the newest good checkpoint of
        this run directory; a damaged file is reported on stderr and the newest good one before
        it is used. Problem parameters and config default to the checkpoint's; only the keys in
        ``RESUMABLE_KEYS`` (e.g. ``train.steps``) may differ. On CPU with the same config the
        result is bit-identical to an uninterrupted run. Extending a run to more steps than it
        was configured for is too: where ``engine="auto"`` would choose another engine for the
        new length (the compiled Taylor engine from 2000 steps on, see
        :func:`~pdekit.solvers.physics.resolve_engine`; round-off apart, 4e-7 measured), the
        resumed run keeps the engine the run started with (said on stderr).
    checkpoint_dir: write checkpoints here (every ``config.train.checkpoint_every`` steps and
        ``checkpoint_minutes`` minutes, at the end, and on SIGTERM/SIGINT; the newest
        ``keep_checkpoints`` are kept). Checked for writability before training starts.
    verbose: progress bar and resume messages on stderr.
    params: the problem's parameters as a mapping; needed for a parameter whose name is one of
        ``solve``'s own arguments (``navier_stokes/kolmogorov``'s ``seed``:
        ``params={"seed": 3}``; ``seed=3`` seeds the training).
    **kwparams: the problem's parameters as keywords (``beta=30``, ``re=100``...).

    Under ``torchrun`` (an initialised ``torch.distributed`` process group) every rank calls
    ``solve`` with the same arguments; training uses DistributedDataParallel with per-rank
    collocation batches and only rank 0 writes checkpoints.

    Returns
    -------
    Solution: ``sol(points)``, ``sol.errors()``, ``sol.to_vtk(path)``, ``sol.save(path)``.

    Raises
    ------
    UnknownNameError, ParameterError, UnsupportedPairError: bad names, values or pairs.
    CheckpointError: an unusable or incompatible checkpoint to resume from.
    OutputError: an unwritable ``checkpoint_dir``.
    DivergenceError: training diverged beyond ``train.max_rollbacks`` rollbacks.
    TrainingInterrupted: SIGTERM/SIGINT arrived; a checkpoint was written first.
    """
    problems.get_class(_name(name, "problem"))
    solvers.get(_name(solver, "solver"))
    params = _problem_params(params, kwparams)
    _check_seed(seed)
    select_device(device)
    dist = distributed.current()
    ckpt: Checkpoint | None = None
    if resume is not None:
        ckpt = _resume_checkpoint(resume, dist, verbose)
        if ckpt.problem != name:
            raise CheckpointError(
                f"{ckpt.source} is a checkpoint of problem {ckpt.problem!r}, not {name!r}"
            )
        if ckpt.solver != solver:
            raise CheckpointError(
                f"{ckpt.source} is a checkpoint of solver {ckpt.solver!r}, not {solver!r}"
            )
        params = {**ckpt.problem_params, **params}
    problem = problems.get(name, **params)
    check_pair(problem, solver)
    if preset is not None:
        overrides = {**preset_overrides(solver, preset, problem.name), **(overrides or {})}
    if ckpt is not None:
        _check_resume(ckpt, problem, solver, ckpt.source)
        cfg = _resume_config(solver, ckpt, config, overrides, steps)
        saved = make_config(solver, ckpt.solver_config)
        cfg = _keep_engine(solver, problem, saved, cfg, verbose and dist.is_writer)
    else:
        cfg = make_config(solver, config, overrides, steps=steps)
    if checkpoint_dir is not None:
        if not isinstance(checkpoint_dir, str | os.PathLike):
            raise ParameterError(f"checkpoint_dir must be a path; got {checkpoint_dir!r}")
        dist.on_writer(lambda: _writable(checkpoint_dir, "checkpoint directory"))
    run = RunOptions(
        device=device,
        seed=seed,
        verbose=verbose,
        resume=ckpt,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
    )
    return solvers.get(solver).fit(problem, cfg, run)


def _problem_params(params: Any, kwparams: dict[str, Any]) -> dict[str, Any]:
    """``params`` and the keyword parameters together (a name given in both is refused)."""
    if params is None:
        return dict(kwparams)
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ParameterError(
            f"params must be a mapping of problem parameter names to values; got {params!r}"
        )
    both = sorted(set(params) & set(kwparams))
    if both:
        raise ParameterError(
            f"problem parameter(s) {', '.join(both)} given both in params and as keywords"
        )
    return {**params, **kwparams}


def _name(value: Any, kind: str) -> str:
    if not isinstance(value, str):
        raise ParameterError(f"{kind} name must be a string; got {value!r}")
    return value


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"seed must be an integer in [0, 2**63 - 1]; got {seed!r}")


def _writable(path, what: str) -> None:
    ensure_writable_dir(path, what)


def _warn(message: str) -> None:
    print(f"pdekit: warning: {message}", file=sys.stderr, flush=True)


def _resume_checkpoint(resume, dist: distributed.Distributed, verbose: bool) -> Checkpoint:
    """The checkpoint to resume from, chosen and verified on rank 0 and sent to every rank."""
    if not isinstance(resume, str | os.PathLike):
        raise ParameterError(f"resume must be a checkpoint file or run directory; got {resume!r}")
    if dist.enabled:

        def pick() -> bytes:
            path, data, _ = find_resumable(resume, _warn)
            return os.fsencode(path) + b"\0" + data

        name, _, data = dist.on_writer(pick).partition(b"\0")
        ckpt = load_checkpoint_bytes(data, os.fsdecode(name))
    else:
        _, _, ckpt = find_resumable(resume, _warn)
    if verbose and dist.is_writer:
        print(f"pdekit: resuming from {ckpt.source} (step {ckpt.step})", file=sys.stderr)
    return ckpt


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


def _merge(base: dict, update: Mapping) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _resume_config(solver: str, ckpt: Checkpoint, config, overrides, steps):
    """The checkpoint's config with the user's changes, which must be resumable ones."""
    try:
        saved = make_config(solver, ckpt.solver_config)
    except PdekitError as exc:
        raise CheckpointError(
            f"{ckpt.source}: its solver config is not valid for this pdekit ({exc})"
        ) from None
    base: Any = to_dict(saved)
    if isinstance(config, Mapping):
        base = _merge(base, config)
    elif config is not None:
        base = config
    cfg = make_config(solver, base, overrides, steps=steps)
    old, new = _flatten(to_dict(saved)), _flatten(to_dict(cfg))
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    refused = [k for k in changed if k not in RESUMABLE_KEYS]
    if refused:
        what = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in refused)
        raise CheckpointError(
            f"cannot resume {ckpt.source} with a different {what}: only "
            f"{', '.join(RESUMABLE_KEYS)} may change when resuming"
        )
    return cfg


def _keep_engine(solver: str, problem: Problem, saved, cfg, verbose: bool):
    """``cfg`` with the derivative engine the checkpoint's run trained with, where
    ``engine="auto"`` would choose another one for the resumed run's budget (a run extended past
    :data:`~pdekit.solvers.physics.COMPILE_MIN_STEPS` steps would switch to the compiled Taylor
    engine, whose round-off differs: extending a run would no longer equal training it that
    long in one go). The pinned engine is the resolved name, kept in the run's checkpoints."""
    if getattr(saved, "engine", None) != "auto" or getattr(cfg, "engine", None) != "auto":
        return cfg
    from dataclasses import replace

    from pdekit.solvers.physics import resolve_engine

    model = solvers.get(solver).build_model(problem, cfg)
    before = resolve_engine("auto", problem, model, saved.train.steps, saved.train.time_budget_s)
    after = resolve_engine("auto", problem, model, cfg.train.steps, cfg.train.time_budget_s)
    if before == after:
        return cfg
    if verbose:
        print(
            f"pdekit: resuming with the engine the run started with ({before}); engine='auto' "
            f"would choose {after} for the new budget",
            file=sys.stderr,
        )
    return replace(cfg, engine=before)


def load(path: str | os.PathLike) -> Solution:
    """Load a Solution from an HDF5 checkpoint written by ``Solution.save`` or training.

    Needs nothing but the file: problem, parameters, solver and config are stored in it. A run
    directory gives its newest good checkpoint.

    Raises
    ------
    CheckpointError: the file is missing, damaged, of another format or version, or its
        content does not fit this pdekit's problem or solver.
    """
    if not isinstance(path, str | os.PathLike):
        raise ParameterError(f"path must be a checkpoint file or run directory; got {path!r}")
    if Path(path).is_dir():
        _, _, ckpt = find_resumable(path, _warn)
    else:
        ckpt = load_checkpoint(path)
    try:
        problem = problems.get(ckpt.problem, **ckpt.problem_params)
        solver = solvers.get(ckpt.solver)
        config = make_config(ckpt.solver, ckpt.solver_config)
        return solver.restore(problem, config, ckpt)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} cannot be restored: {exc}") from None
