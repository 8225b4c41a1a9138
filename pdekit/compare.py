"""Solvers side by side on one problem at one wall-clock budget (``pdekit compare``).

Each solver trains for the same ``budget_s`` seconds of wall-clock time (its
``train.time_budget_s``; steps unbounded) in a fresh process of its own, so the peak memory
reported is that run's alone and no run warms another's caches. Each run's checkpoint is kept
under ``out/<solver>/``; the table (``compare.json``) holds per solver the errors against the
problem's reference, the steps made, the wall time and the process's peak resident memory, and
the figure (``compare.png``) the reference and each solver's prediction and error on one colour
scale. Used as::

    rows = pdekit.compare.compare("convection_diffusion/burgers", ["pinn", "causal_pinn",
                                  "deepxde"], budget_s=120, out="runs/compare")
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from pdekit.errors import ParameterError, PdekitError


def parse_budget(text: str | float) -> float:
    """Seconds from ``"120"``, ``"120s"``, ``"2m"`` or ``"1h"`` (a number is seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smh]?)\s*", str(text))
        if m is None:
            raise ParameterError(
                f"budget must be seconds such as 120, 120s, 2m or 1h; got {text!r}"
            )
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 0 < seconds < 10**7:
        raise ParameterError(f"budget must be positive seconds; got {text!r}")
    return seconds


def _run_one(job: dict) -> dict:
    """One solver's run, in its own process: solve, save the checkpoint, measure."""
    import resource

    import torch

    from pdekit import api

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    t0 = time.perf_counter()
    sol = api.solve(
        job["problem"],
        solver=job["solver"],
        params=job["params"],
        seed=job["seed"],
        device=job["device"],
        preset=job.get("preset"),
        overrides={
            **job.get("overrides", {}),
            "train.time_budget_s": job["budget_s"],
            "train.steps": 10**9,
        },
        verbose=False,
    )
    wall = time.perf_counter() - t0
    path = Path(job["out"]) / job["solver"] / "checkpoint.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    sol.save(path)
    errors = sol.errors()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "solver": job["solver"],
        "rel_l2": float(errors["rel_l2"]),
        "max_abs": float(errors["max_abs"]),
        "steps": int(sol.step),
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "checkpoint": str(path),
    }


def compare(
    problem: str,
    solvers: Sequence[str],
    budget_s: float | str,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    out: str | os.PathLike = "runs/compare",
    presets: Mapping[str, str] | None = None,
    threads: int = 0,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict:
    """Train every solver on ``problem`` for ``budget_s`` seconds each (module docstring) and
    write ``compare.json`` and ``compare.png`` into ``out``; returns the table as a dict
    ``{"problem", "params", "budget_s", "rows": [...], "figure"}``.

    ``presets``: ``{solver: preset}`` (e.g. ``{"causal_pinn": "benchmark"}``); ``threads``:
    torch threads per run (0: torch's default); ``overrides``: ``{solver: {dotted key: value}}``,
    that solver's config settings (e.g. ``{"pinn": {"network.width": 32}}``; the budget is
    compare's own, so ``train.steps`` and ``train.time_budget_s`` are refused). Every (problem,
    solver) pair, preset and override is checked before anything runs; an unknown name, key or
    unsupported pair raises at once.
    """
    from pdekit import api, problems
    from pdekit import solvers as registry

    budget = parse_budget(budget_s)
    names = [s.strip() for s in solvers if s.strip()]
    if not names:
        raise ParameterError("compare needs at least one solver")
    if len(set(names)) != len(names):
        raise ParameterError(f"solvers are named twice: {names}")
    inst = problems.get(problem, **dict(params or {}))
    presets = dict(presets or {})
    for name in presets:
        if name not in names:
            raise ParameterError(f"a preset is given for {name}, which is not compared")
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    for name, settings in overrides.items():
        if name not in names:
            raise ParameterError(f"overrides are given for {name}, which is not compared")
        clock = sorted(k for k in settings if k in ("train.steps", "train.time_budget_s"))
        if clock:
            raise ParameterError(
                f"overrides for {name} set {', '.join(clock)}: compare gives every solver the "
                "same wall-clock budget (budget_s)"
            )
        api.make_config(name, None, settings)  # unknown keys and bad values raise here
    for name in names:
        api.check_pair(inst, name)
        cfg = registry.get(name).Config
        if "train" not in getattr(cfg, "__dataclass_fields__", {}):
            raise ParameterError(f"{name} has no training budget to compare at")
        if name in presets:
            api.preset_overrides(name, presets[name], inst.name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        {"problem": problem, "solver": n, "params": inst.params(), "seed": seed,
         "device": device, "budget_s": budget, "out": str(out), "preset": presets.get(n),
         "threads": threads, "overrides": overrides.get(n, {})}
        for n in names
    ]  # fmt: skip
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for job in jobs:  # one after the other: each run has the machine to itself
        # an executor, not a Pool: a worker that dies (at start-up too) raises here, where a
        # Pool would replace it and wait for ever
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            try:
                rows.append(pool.submit(_run_one, job).result())
            except BrokenProcessPool:
                raise PdekitError(
                    f"the process training {job['solver']} died without a result: killed (out "
                    "of memory, a signal), or it could not start. Runs start by 'spawn', which "
                    "imports the calling script again: a script calling compare() must do so "
                    'under `if __name__ == "__main__":`'
                ) from None
    table = {
        "problem": problem,
        "params": inst.params(),
        "budget_s": budget,
        "device": device,
        "seed": seed,
        "rows": rows,
    }
    table["figure"] = str(plot_compare(table, out / "compare.png"))
    (out / "compare.json").write_text(json.dumps(table, indent=2, default=str) + "\n")
    return table


def format_table(table: dict) -> str:
    """The comparison as a Markdown table."""
    lines = [
        f"{table['problem']}, {table['budget_s']:g} s per solver ({table['device']}, seed "
        f"{table['seed']})",
        "",
        "| solver | rel. L2 | max abs | steps | wall s | peak memory MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in table["rows"]:
        lines.append(
            f"| {r['solver']} | {r['rel_l2']:.3e} | {r['max_abs']:.3e} | {r['steps']} "
            f"| {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def plot_compare(table: dict, path: Path) -> Path:
    """The reference, then each solver's prediction and error, of the problem's first field on
    its evaluation grid (the plane :func:`pdekit.io.plot.plot_solution` draws); predictions on
    the reference's colour scale, errors on one symmetric scale for all solvers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pdekit import api
    from pdekit.io.grids import solution_arrays
    from pdekit.io.plot import _plane, plane_inside, save_figure

    sols = [api.load(r["checkpoint"]) for r in table["rows"]]
    problem = sols[0].problem
    grid = problem.evaluation_grid()
    field = problem.fields[0]
    inside = plane_inside(problem, grid)

    def plane(values):
        img = _plane(grid, values)[0]
        return img if inside is None else np.where(inside, img, np.nan)

    arrays = [solution_arrays(s, grid) for s in sols]
    ref = plane(arrays[0][f"{field}_reference"])
    lo, hi = float(np.nanmin(ref)), float(np.nanmax(ref))
    errs = [plane(a[f"{field}_error"]) for a in arrays]
    lim = max(float(np.nanmax(np.abs(e))) for e in errs) or 1.0
    names = list(grid.coordinates)
    a0 = grid.axes[names[0]]
    a1 = grid.axes[names[1]] if len(names) > 1 else np.array([0.0, 1.0])
    extent = [a0.min(), a0.max(), a1.min(), a1.max()]
    aspect = "equal" if "t" not in names[:2] and len(names) > 1 else "auto"
    n = len(sols)
    fig, axes = plt.subplots(n + 1, 2, figsize=(8.6, 3.2 * (n + 1)), squeeze=False)
    im = axes[0, 0].imshow(ref.T, origin="lower", extent=extent, aspect=aspect, cmap="viridis",
                           vmin=lo, vmax=hi)  # fmt: skip
    axes[0, 0].set_title(f"{field}: reference")
    fig.colorbar(im, ax=axes[0, 0])
    axes[0, 1].axis("off")
    for i, (row, err, arr) in enumerate(zip(table["rows"], errs, arrays), start=1):
        im = axes[i, 0].imshow(plane(arr[field]).T, origin="lower", extent=extent, aspect=aspect,
                               cmap="viridis", vmin=lo, vmax=hi)  # fmt: skip
        axes[i, 0].set_title(f"{row['solver']}: {field} ({row['steps']} steps)")
        fig.colorbar(im, ax=axes[i, 0])
        im = axes[i, 1].imshow(err.T, origin="lower", extent=extent, aspect=aspect,
                               cmap="RdBu_r", vmin=-lim, vmax=lim)  # fmt: skip
        axes[i, 1].set_title(f"{row['solver']}: error (rel. L2 {row['rel_l2']:.2e})")
        fig.colorbar(im, ax=axes[i, 1])
    for ax in axes.ravel():
        if ax.axison:
            ax.set_xlabel(names[0])
            if len(names) > 1:
                ax.set_ylabel(names[1])
    fig.suptitle(f"{table['problem']}: {table['budget_s']:g} s per solver")
    return save_figure(fig, path)
