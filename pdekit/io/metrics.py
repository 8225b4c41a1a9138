"""A run's training metrics as a table: ``metrics.csv`` (and TensorBoard when installed).

The trainer records a history of series (``Solution.history``): ``step``, ``loss``, one
``loss/<term>`` per loss term, ``lr``, the task's status values, all at the same steps; and
series with their own steps, ``<group>/step`` beside ``<group>/<name>`` (the validation record
``valid/step``, ``valid/metric``). Written in long form, one row per recorded value::

    step,name,value
    0,loss,0.57
    0,lr,0.0004
    250,valid/metric,0.31

so every series keeps its own steps, and a spreadsheet or ``pandas.read_csv(...).pivot(
index="step", columns="name", values="value")`` gives the wide table.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def metric_rows(history: Mapping[str, Sequence]) -> list[tuple[int, str, float]]:
    """``(step, name, value)`` for every recorded value, by series then step.

    A series ``g/name`` takes its steps from ``g/step`` when that exists and has its length,
    any other series from ``step`` when it has that length; a series matching neither (a
    history cut by a rollback) takes its own index as the step.
    """
    steps = list(history.get("step", []))
    rows: list[tuple[int, str, float]] = []
    for name, values in history.items():
        values = list(values)
        if name == "step" or name.endswith("/step"):
            continue
        group = name.rsplit("/", 1)[0] if "/" in name else ""
        own = list(history.get(f"{group}/step", [])) if group else []
        if own and len(own) == len(values):
            at = own
        elif len(steps) == len(values):
            at = steps
        else:
            at = list(range(len(values)))
        for s, v in zip(at, values):
            try:
                value = float(v)
            except (TypeError, ValueError):
                continue  # not a number: not a metric
            rows.append((int(s), name, value))
    return rows


def write_metrics_csv(history: Mapping[str, Sequence], path: str | Path) -> Path | None:
    """Write :func:`metric_rows` to ``path`` (header ``step,name,value``); None, and no file,
    for an empty history (a solver that does not train)."""
    rows = metric_rows(history)
    if not rows:
        return None
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "name", "value"])
        for s, name, v in rows:
            writer.writerow([s, name, repr(v) if math.isfinite(v) else str(v)])
    return path


def write_tensorboard(history: Mapping[str, Sequence], directory: str | Path) -> Path | None:
    """The same scalars as TensorBoard event files in ``directory`` when the ``tensorboard``
    package is installed (an optional extra); None otherwise, and for an empty history."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is not a dependency of pdekit
        return None
    rows = metric_rows(history)
    if not rows:
        return None
    directory = Path(directory)
    writer = SummaryWriter(log_dir=str(directory))
    try:
        for s, name, v in rows:
            writer.add_scalar(name, v, global_step=s)
    finally:
        writer.close()
    return directory
