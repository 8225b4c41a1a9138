"""metrics.csv: every value of a training history once, each series at its own steps."""

from __future__ import annotations

import csv

import pytest

from pdekit.io.metrics import metric_rows, write_metrics_csv, write_tensorboard

HISTORY = {
    "step": [0, 50, 100],
    "loss": [1.0, 0.5, float("nan")],
    "loss/pde": [0.9, 0.4, 0.2],
    "lr": [1e-3, 1e-3, 5e-4],
    "valid/step": [50, 100],
    "valid/metric": [0.3, 0.2],
    "wall": [0.1, 0.2],  # cut short (neither the steps' length nor a group of its own)
    "note": ["a", "b", "c"],  # not numbers: not metrics
}


def test_rows_keep_each_series_at_its_own_steps():
    rows = metric_rows(HISTORY)
    by = {}
    for s, name, v in rows:
        by.setdefault(name, []).append((s, v))
    assert by["loss/pde"] == [(0, 0.9), (50, 0.4), (100, 0.2)]
    assert by["valid/metric"] == [(50, 0.3), (100, 0.2)]
    assert by["wall"] == [(0, 0.1), (1, 0.2)]
    assert set(by) == {"loss", "loss/pde", "lr", "valid/metric", "wall"}


def test_csv_round_trips_and_an_empty_history_writes_nothing(tmp_path):
    path = write_metrics_csv(HISTORY, tmp_path / "m.csv")
    rows = list(csv.DictReader(path.open()))
    assert rows[0] == {"step": "0", "name": "loss", "value": "1.0"}
    assert [float(r["value"]) for r in rows if r["name"] == "lr"] == HISTORY["lr"]
    assert any(r["value"] == "nan" for r in rows)
    assert write_metrics_csv({}, tmp_path / "none.csv") is None
    assert not (tmp_path / "none.csv").exists()


def test_tensorboard_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    out = write_tensorboard(HISTORY, tmp_path / "tb")
    assert out is not None and any(out.iterdir())
