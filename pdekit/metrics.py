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


def match_gauge(
    pred: Mapping[str, np.ndarray],
    ref: Mapping[str, np.ndarray],
    fields,
    times: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``pred`` with each field of ``fields`` shifted to the reference's mean.

    For a field the equations fix only up to an additive constant (at each time), such as the
    pressure of incompressible flow on a periodic box or in a closed cavity, a prediction's
    constant is arbitrary and says nothing about the solution. Here it is replaced by the
    reference's: pred - mean(pred) + mean(ref), the means taken over all points, or over the
    points at each time when ``times`` (n,) is given (the points of a grid, so the mean is the
    grid's quadrature of the spatial mean). Other fields are returned unchanged.
    """
    out = {k: np.asarray(v) for k, v in pred.items()}
    for k in fields:
        if k not in out or k not in ref:
            continue
        p, r = np.asarray(out[k], dtype=float).ravel(), np.asarray(ref[k], dtype=float).ravel()
        if times is None:
            shifted = p - p.mean() + r.mean()
        else:
            _, slot = np.unique(np.asarray(times).ravel(), return_inverse=True)
            counts = np.bincount(slot)
            offset = (np.bincount(slot, r) - np.bincount(slot, p)) / counts
            shifted = p + offset[slot]
        out[k] = shifted.reshape(np.shape(out[k]))
    return out


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
