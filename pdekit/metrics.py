"""Error metrics of a prediction against a reference.

All functions take arrays of equal shape. Definitions:

* ``rel_l2``  = ||pred - ref||_2 / ||ref||_2 (the PINN literature's relative L2 error);
* ``max_abs`` = max ``|pred - ref|``;
* ``rmse``    = sqrt(mean (pred - ref)^2);
* ``nrmse``   = rmse / (max ref - min ref): RMSE normalised by the reference's range.

PDEBench's metrics (Takamoto et al., "PDEBench: an extensive benchmark for scientific machine
learning", NeurIPS 2022 Datasets and Benchmarks) are the ``pdebench_*`` functions, with
:func:`pdebench_metrics` computing them all. They are written from the definitions in PDEBench's
code, ``pdebench/models/metrics.py``, function ``metric_func`` (github.com/pdebench/PDEBench at
9754b4c, Dec 2024), which produced the paper's tables. Layout: ``(batch, *space, *extra)`` with
``ndim`` spatial axes; each (sample, extra index) is one field on the grid. PDEBench's own layout
``(batch, x..., t, channel)`` is this with ``ndim = len(x...)``: its time and channel axes are
the extra axes, and every metric is averaged over them uniformly, as ``metric_func`` does with
``if_mean=True``. With ``d = pred - ref``, ``N`` grid points and ``mean_x`` over the grid:

* ``rmse``  = mean over (sample, extra) of sqrt(mean_x d^2);
* ``nrmse`` = mean over (sample, extra) of sqrt(mean_x d^2) / sqrt(mean_x ref^2);
* ``crmse`` = mean over extra of sqrt(mean_batch (mean_x d)^2): the error of the conserved
  quantity sum_x u, divided by ``N`` (note the batch RMS inside the root);
* ``brmse`` = mean over (sample, extra) of sqrt(sum_boundary d^2 / n_boundary): the points with
  index 0 or n-1 on some axis, each face summed separately (edges and corners counted once per
  face, in the sum and in n_boundary = sum_a 2 prod_{b != a} n_b);
* ``max``   = mean over extra of max over (batch, grid) ``|d|``;
* ``frmse_low/mid/high``: see :func:`pdebench_frmse`.

How our ``nrmse`` differs from PDEBench's nRMSE: ours is one pooled RMSE over all points divided
by the reference's range (max - min); PDEBench's is an L2-relative error (divided by the
reference's root mean square, not its range), computed per sample and per channel and time
slice, then averaged. The two differ even for a single field: a reference 10 + sin x has range 2
but root mean square about 10.

Where PDEBench's code and paper may differ: only the paper's nRMSE formula,
||u_pred - u_true||_2 / ||u_true||_2, could be checked (second-hand); it does not say how
samples, channels and times are pooled, and the code's per-slice average is what the tables
report, so we follow the code. Two defects of the code, against its own 1D/2D definitions, are
not copied: in 3D ``metric_func`` sums the boundary error over channels (its ``view`` merges the
channel axis) where 1D/2D treat channels separately; and ``metrics`` averages per-loader-batch
results dividing by the last batch index (number of batches - 1). We compute over the batch
given, as one loader batch. ``metric_func`` first drops ``initial_step`` (default 1) leading time
steps, the model's input context: slice those off before calling these functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from pdekit.errors import ParameterError


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


def _pdebench_fields(pred, ref, ndim: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """``pred - ref`` and ``ref`` as float arrays ``(batch, *space, m)``, m = prod(extra)."""
    p, r = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    if p.shape != r.shape:
        raise ParameterError(f"pred and ref must have the same shape; got {p.shape} and {r.shape}")
    if p.ndim < 2:
        raise ParameterError(f"pred needs a batch axis and a grid axis; got shape {p.shape}")
    ndim = p.ndim - 1 if ndim is None else ndim
    if isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer)):
        raise ParameterError(f"ndim must be an integer; got {ndim!r}")
    if not 1 <= ndim <= p.ndim - 1:
        raise ParameterError(f"ndim must be between 1 and {p.ndim - 1} for shape {p.shape}")
    if p.size == 0:
        raise ParameterError(f"pred and ref are empty (shape {p.shape})")
    shape = (p.shape[0], *p.shape[1 : 1 + ndim], -1)
    return (p - r).reshape(shape), r.reshape(shape), int(ndim)


def _space(ndim: int) -> tuple[int, ...]:
    return tuple(range(1, 1 + ndim))


def pdebench_rmse(pred, ref, *, ndim: int | None = None) -> float:
    """PDEBench's RMSE: mean over samples (and extra axes) of each field's grid RMSE.

    ``pred``, ``ref``: ``(batch, *space, *extra)``; ``ndim`` spatial axes (default: all after
    the batch axis). See the module docstring for the layout.
    """
    d, _, ndim = _pdebench_fields(pred, ref, ndim)
    return float(np.mean(np.sqrt(np.mean(d**2, axis=_space(ndim)))))


def pdebench_nrmse(pred, ref, *, ndim: int | None = None) -> float:
    """PDEBench's nRMSE: mean over fields of ||pred - ref||_2 / ||ref||_2 on the grid.

    Each (sample, extra index) field is normalised by its own reference norm; a field whose
    reference is zero everywhere gives inf (nan if its error is zero too), as in PDEBench.
    """
    d, r, ndim = _pdebench_fields(pred, ref, ndim)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt(np.mean(d**2, axis=_space(ndim)) / np.mean(r**2, axis=_space(ndim)))
    return float(np.mean(ratio))


def pdebench_crmse(pred, ref, *, ndim: int | None = None) -> float:
    """PDEBench's cRMSE: RMS over samples of the error of the grid mean, averaged over extras.

    ``sqrt(mean_batch (sum_x pred - sum_x ref)^2) / N``, the error of the conserved quantity
    ``sum_x u`` (a mass, for a uniform grid up to the cell size) per grid point.
    """
    d, _, ndim = _pdebench_fields(pred, ref, ndim)
    return float(np.mean(np.sqrt(np.mean(np.mean(d, axis=_space(ndim)) ** 2, axis=0))))


def pdebench_max_error(pred, ref, *, ndim: int | None = None) -> float:
    """PDEBench's maximum error: max over samples and grid of ``|pred - ref|``, mean over extras."""
    d, _, ndim = _pdebench_fields(pred, ref, ndim)
    return float(np.mean(np.max(np.abs(d), axis=(0, *_space(ndim)))))


def pdebench_brmse(pred, ref, *, ndim: int | None = None) -> float:
    """PDEBench's bRMSE: each field's RMS error over its boundary faces, mean over fields.

    The faces are the points with index 0 and n-1 along each axis; their squared errors are
    summed face by face (an edge or corner point once per face it lies on) and divided by the
    faces' total size ``sum_a 2 prod_{b != a} n_b``: 2 in 1D, ``2 nx + 2 ny`` in 2D,
    ``2 (nx ny + ny nz + nz nx)`` in 3D.
    """
    d, _, ndim = _pdebench_fields(pred, ref, ndim)
    n = d.shape[1 : 1 + ndim]
    total = np.zeros((d.shape[0], d.shape[-1]))
    size = 0
    for a in range(ndim):
        others = tuple(b for b in _space(ndim) if b != 1 + a)
        for end in (0, n[a] - 1):
            face = np.take(d, [end], axis=1 + a)
            total += np.sum(face**2, axis=(1 + a, *others))
        size += 2 * math.prod(n[b] for b in range(ndim) if b != a)
    return float(np.mean(np.sqrt(total / size)))


def _shell_power(d: np.ndarray, ndim: int) -> np.ndarray:
    """``|DFT(d)|^2`` summed per shell as PDEBench bins it: ``(batch, shells, m)``."""
    if ndim == 1:  # every rfft bin its own shell, Nyquist included
        return np.abs(np.fft.rfft(d, axis=1)) ** 2
    power = np.abs(np.fft.fftn(d, axes=_space(ndim))) ** 2
    half = [n // 2 for n in d.shape[1 : 1 + ndim]]
    if min(half) == 0:  # an axis of one point: no shell
        return np.zeros((d.shape[0], 0, d.shape[-1]))
    power = power[(slice(None), *(slice(0, h) for h in half))]  # 0 <= j_a < n_a / 2 only
    shell = np.floor(np.sqrt(np.sum(np.indices(half) ** 2, axis=0))).astype(int)
    return np.stack([power[:, shell == k].sum(axis=1) for k in range(min(half))], axis=1)


def pdebench_frmse(
    pred,
    ref,
    *,
    ndim: int | None = None,
    lengths=None,
    bands: tuple[int, int] = (4, 12),
) -> tuple[float, float, float]:
    """PDEBench's fRMSE in the low, mid and high Fourier bands: ``(low, mid, high)``.

    With ``D = DFT(pred - ref)`` (unnormalised, over the grid axes) and ``N`` grid points:

    * shells: in 1D each ``rfft`` bin ``k = 0 .. n // 2`` (Nyquist included) is a shell. In 2D
      and 3D only the modes with integer indices ``0 <= j_a < n_a // 2`` on every axis are used,
      binned by ``k = floor(sqrt(sum_a j_a^2))`` and kept for ``k < min_a(n_a // 2)``: the
      binning is by index, not by physical wavenumber (a non-square box is binned as if square),
      and the other quadrants/octants, where ``j_a < 0`` on some axis, are never seen;
      e.g. the error ``cos 2 pi (3x - 4y)`` on the unit square scores 0 in every band.
    * ``S_k`` = sum of ``|D_j|^2`` over the shell; per shell
      ``E_k = sqrt(mean_batch S_k) / N * prod(lengths)`` (``|D_j| / N`` is the Fourier
      coefficient; PDEBench multiplies by ``Lx Ly Lz``, which its scripts set to 1).
    * band values: the mean of ``E_k`` over ``k < low``, ``low <= k < high``, ``k >= high``
      (PDEBench's ``iLow = 4``, ``iHigh = 12``), then the mean over the extra axes. A band with
      no shell (a small grid) is nan.

    ``lengths``: the box lengths (default 1 per grid axis). ``bands``: ``(iLow, iHigh)``.
    """
    d, _, ndim = _pdebench_fields(pred, ref, ndim)
    lengths = [1.0] * ndim if lengths is None else [float(x) for x in lengths]
    if len(lengths) != ndim or any(not (np.isfinite(x) and x > 0) for x in lengths):
        raise ParameterError(f"lengths needs {ndim} positive entries; got {lengths}")
    low, high = bands
    if not 0 <= low <= high:
        raise ParameterError(f"bands must be (low, high) with 0 <= low <= high; got {bands}")
    n_points = math.prod(d.shape[1 : 1 + ndim])
    err = np.sqrt(np.mean(_shell_power(d, ndim), axis=0)) / n_points * math.prod(lengths)
    out = []
    for band in (err[:low], err[low:high], err[high:]):
        out.append(float(np.mean(band)) if band.size else float("nan"))
    return out[0], out[1], out[2]


def pdebench_metrics(
    pred,
    ref,
    *,
    ndim: int | None = None,
    lengths=None,
    bands: tuple[int, int] = (4, 12),
) -> dict[str, float]:
    """All of PDEBench's metrics: keys "rmse", "nrmse", "crmse", "brmse", "max", "frmse_low",
    "frmse_mid", "frmse_high" (definitions in the module docstring and :func:`pdebench_frmse`).
    """
    kw = {"ndim": ndim}
    low, mid, high = pdebench_frmse(pred, ref, ndim=ndim, lengths=lengths, bands=bands)
    return {
        "rmse": pdebench_rmse(pred, ref, **kw),
        "nrmse": pdebench_nrmse(pred, ref, **kw),
        "crmse": pdebench_crmse(pred, ref, **kw),
        "brmse": pdebench_brmse(pred, ref, **kw),
        "max": pdebench_max_error(pred, ref, **kw),
        "frmse_low": low,
        "frmse_mid": mid,
        "frmse_high": high,
    }
