"""Error metrics of a prediction against a reference.

All functions take arrays of equal shape. Definitions:

* ``rel_l2``  = ||pred - ref||_2 / ||ref||_2 (the PINN literature's relative L2 error);
* ``max_abs`` = max |pred - ref|;
* ``rmse``    = sqrt(mean (pred - ref)^2);
* ``nrmse``   = rmse / (max ref - min ref): RMSE normalised by the reference's range.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def rel_l2(pred: np.ndarray, ref: np.ndarray) -> float:
    denom = np.linalg.norm(ref)
    err = np.linalg.norm(np.asarray(pred) - np.asarray(ref))
    return float(err / denom) if denom > 0 else float(err)


def max_abs(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(pred) - np.asarray(ref)))) if np.size(ref) else 0.0


def rmse(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(ref)) ** 2)))


def nrmse(pred: np.ndarray, ref: np.ndarray) -> float:
    span = float(np.max(ref) - np.min(ref)) if np.size(ref) else 0.0
    e = rmse(pred, ref)
    return e / span if span > 0 else e


METRICS = {"rel_l2": rel_l2, "max_abs": max_abs, "nrmse": nrmse}


def field_errors(pred: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Errors per field (``"rel_l2/u"``...) and over all fields together (``"rel_l2"``...).

    The joint rel_l2 stacks every field: ||pred - ref|| / ||ref|| over all of them; the joint
    max_abs is the largest of the fields'; the joint nrmse is the mean of the fields'.
    """
    names = [k for k in ref if k in pred]
    if not names:
        raise ValueError(
            f"no common fields between prediction {list(pred)} and reference {list(ref)}"
        )
    out: dict[str, float] = {}
    for k in names:
        for m, fn in METRICS.items():
            out[f"{m}/{k}"] = fn(pred[k], ref[k])
    p = np.concatenate([np.ravel(pred[k]) for k in names])
    r = np.concatenate([np.ravel(ref[k]) for k in names])
    out["rel_l2"] = rel_l2(p, r)
    out["max_abs"] = max(out[f"max_abs/{k}"] for k in names)
    out["nrmse"] = float(np.mean([out[f"nrmse/{k}"] for k in names]))
    return dict(sorted(out.items(), key=lambda kv: ("/" in kv[0], kv[0])))
