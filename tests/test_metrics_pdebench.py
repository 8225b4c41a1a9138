"""PDEBench's metrics against hand computations, band placement of sinusoids, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdekit import metrics as m
from pdekit.errors import ParameterError

KEYS = ("rmse", "nrmse", "crmse", "brmse", "max", "frmse_low", "frmse_mid", "frmse_high")

# 1D, two samples of 4 points. ref rows are constant so their norms are obvious; d = pred - ref.
REF_1D = np.array([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
D_1D = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 3.0, 0.0, 1.0]])


def test_1d_by_hand():
    got = m.pdebench_metrics(REF_1D + D_1D, REF_1D, bands=(1, 2), lengths=(2.0,))
    # sample 0: mean d^2 = (1 + 1) / 4 = 0.5; sample 1: (9 + 1) / 4 = 2.5
    assert got["rmse"] == pytest.approx((math.sqrt(0.5) + math.sqrt(2.5)) / 2)
    # reference RMS: 1 and 2
    assert got["nrmse"] == pytest.approx((math.sqrt(0.5) / 1 + math.sqrt(2.5) / 2) / 2)
    # mean d: 2/4 = 0.5 and 4/4 = 1; RMS over the batch
    assert got["crmse"] == pytest.approx(math.sqrt((0.5**2 + 1.0**2) / 2))
    # boundary points x0, x3: sample 0 (1 + 1) / 2 = 1, sample 1 (0 + 1) / 2 = 0.5
    assert got["brmse"] == pytest.approx((1.0 + math.sqrt(0.5)) / 2)
    assert got["max"] == 3.0
    # DFT by hand, D_k = sum_x d_x (-i)^(k x):
    #   sample 0: D0 = 2, D1 = 1 + (-i)^3 = 1 + i (|.|^2 = 2), D2 = 1 + (-1)^3 = 0
    #   sample 1: D0 = 4, D1 = 3(-i) + (-i)^3 = -2i (4), D2 = 3(-1) + (-1)^3 = -4 (16)
    # E_k = sqrt(mean_batch |D_k|^2) / N * L, N = 4, L = 2; bands (1, 2): one bin each
    assert got["frmse_low"] == pytest.approx(math.sqrt((4 + 16) / 2) / 4 * 2)
    assert got["frmse_mid"] == pytest.approx(math.sqrt((2 + 4) / 2) / 4 * 2)
    assert got["frmse_high"] == pytest.approx(math.sqrt((0 + 16) / 2) / 4 * 2)


def test_1d_default_bands_small_grid():
    """n = 4 has 3 rfft bins, all below iLow = 4: low is their mean, mid and high are empty."""
    low, mid, high = m.pdebench_frmse(REF_1D + D_1D, REF_1D)
    assert low == pytest.approx((math.sqrt(10) + math.sqrt(3) + math.sqrt(8)) / 4 / 3)
    assert math.isnan(mid) and math.isnan(high)


def test_2d_by_hand():
    """One 3 x 3 sample: the centre is the only interior point."""
    d = np.array([[[1.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 2.0]]])
    ref = np.full((1, 3, 3), 3.0)
    got = m.pdebench_metrics(ref + d, ref)
    assert got["rmse"] == pytest.approx(math.sqrt((1 + 25 + 4) / 9))
    assert got["nrmse"] == pytest.approx(math.sqrt((1 + 25 + 4) / 9) / 3)
    assert got["crmse"] == pytest.approx(abs(1 + 5 + 2) / 9)
    # faces: row 0 -> 1, row 2 -> 4, column 0 -> 1, column 2 -> 4; size 2*3 + 2*3 = 12
    assert got["brmse"] == pytest.approx(math.sqrt((1 + 4 + 1 + 4) / 12))
    assert got["max"] == 5.0
    # 3 // 2 = 1: the only shell is the mean mode j = (0, 0): D = 8, E_0 = 8 / 9
    assert got["frmse_low"] == pytest.approx(8 / 9)


def test_batch_averaging():
    """rmse, nrmse, brmse average per sample; crmse is an RMS over the batch; max is a max."""
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3, 6, 5)) + 2.0
    pred = ref + rng.normal(size=ref.shape)
    one = [m.pdebench_metrics(pred[i : i + 1], ref[i : i + 1]) for i in range(3)]
    got = m.pdebench_metrics(pred, ref)
    for key in ("rmse", "nrmse", "brmse"):
        assert got[key] == pytest.approx(np.mean([o[key] for o in one]))
    assert got["crmse"] == pytest.approx(math.sqrt(np.mean([o["crmse"] ** 2 for o in one])))
    assert got["max"] == pytest.approx(max(o["max"] for o in one))


def test_extra_axes_are_averaged():
    """PDEBench's (batch, x, t, channel) layout: each (t, channel) slice is a field; every
    metric is the mean over slices of the metric of that slice."""
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(2, 32, 3, 2)) + 1.0
    pred = ref + rng.normal(size=ref.shape)
    got = m.pdebench_metrics(pred, ref, ndim=1)
    per = [m.pdebench_metrics(pred[..., t, c], ref[..., t, c]) for t in range(3) for c in range(2)]
    for key in KEYS:
        assert got[key] == pytest.approx(np.mean([p[key] for p in per]), rel=1e-12), key


NAN = float("nan")


@pytest.mark.parametrize(
    "shape,mode,want",
    [
        # 1D n = 64: sin(2 pi 6 x) has |D_6| = n/2 = 32, E_6 = 32 / 64 = 0.5; mid has 8 bins
        ((64,), (6,), (0.0, 0.5 / 8, 0.0)),
        # 1D n = 64: bins 0..3 are low
        ((64,), (2,), (0.5 / 4, 0.0, 0.0)),
        # 1D n = 64: bins 12..32 (21, Nyquist included) are high
        ((64,), (20,), (0.0, 0.0, 0.5 / 21)),
        # 2D 32 x 32: (3, 4) is in shell 5 (mid, 8 shells); |D| = N/2 = 512, E_5 = 512/1024
        ((32, 32), (3, 4), (0.0, 0.5 / 8, 0.0)),
        # 2D 32 x 32: shell 14 is high, shells 12..15 (cap min(n)//2 = 16)
        ((32, 32), (14, 0), (0.0, 0.0, 0.5 / 4)),
        # 2D 32 x 16: shells by index, capped at 16 // 2 = 8: mid is 4..7, high is empty
        ((32, 16), (0, 5), (0.0, 0.5 / 4, NAN)),
    ],
)
def test_sinusoid_error_lands_in_its_band(shape, mode, want):
    axes = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    error = np.sin(2 * np.pi * sum(j * x for j, x in zip(mode, axes)) + 0.3)
    ref = np.ones((1, *shape))
    got = m.pdebench_frmse(ref + error[None], ref)
    assert got == pytest.approx(want, abs=1e-12, nan_ok=True)


def test_2d_frmse_sees_only_the_first_quadrant():
    """PDEBench bins only 0 <= j_a < n_a/2: an error at (3, -4) and (-3, 4) is invisible."""
    x, y = np.meshgrid(np.arange(32) / 32, np.arange(32) / 32, indexing="ij")
    error = np.cos(2 * np.pi * (3 * x - 4 * y))
    ref = np.ones((1, 32, 32))
    low, mid, high = m.pdebench_frmse(ref + error[None], ref)
    assert max(low, mid, high) < 1e-14
    assert m.pdebench_rmse(ref + error[None], ref) == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("shape", [(2, 16), (2, 8, 12), (1, 4, 6, 8)])
def test_perfect_prediction_gives_zeros(shape):
    ref = np.random.default_rng(2).normal(size=shape) + 3.0
    got = m.pdebench_metrics(ref.copy(), ref)
    assert set(got) == set(KEYS)
    for key in KEYS:
        assert got[key] == 0.0 or (key.startswith("frmse") and math.isnan(got[key])), key


def test_old_nrmse_unchanged_and_different():
    """Ours: range-normalised pooled RMSE; PDEBench's: RMS-normalised, per field."""
    x = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ref = (10 + np.sin(x))[None]
    pred = ref + 0.1
    assert m.nrmse(pred, ref) == pytest.approx(0.1 / (ref.max() - ref.min()))
    assert m.pdebench_nrmse(pred, ref) == pytest.approx(0.1 / math.sqrt(100 + 0.5))


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.pdebench_metrics(np.zeros((2, 8)), np.zeros((2, 9))),
        lambda: m.pdebench_rmse(np.zeros((2, 8, 3)), np.zeros((2, 8))),
        lambda: m.pdebench_brmse(np.zeros(8), np.zeros(8)),
        lambda: m.pdebench_crmse(np.zeros((2, 8)), np.zeros((2, 8)), ndim=2),
        lambda: m.pdebench_frmse(np.zeros((2, 8)), np.zeros((2, 8)), lengths=(1.0, 1.0)),
        lambda: m.pdebench_frmse(np.zeros((2, 8)), np.zeros((2, 8)), bands=(5, 2)),
    ],
)
def test_bad_input_raises_parameter_error(call):
    with pytest.raises(ParameterError):
        call()
