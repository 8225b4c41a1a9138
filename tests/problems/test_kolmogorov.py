"""Kolmogorov (FNO) forced turbulence: initial field statistics, reference accuracy and caching."""

import math
import os

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.problems import get
from pdekit.problems.navier_stokes import kolmogorov as kol


def test_parameters_validated():
    with pytest.raises(ParameterError, match="nu"):
        get("navier_stokes/kolmogorov", nu=2e-3)
    with pytest.raises(ParameterError, match="t_end"):
        get("navier_stokes/kolmogorov", t_end=0.0)
    with pytest.raises(ParameterError, match="seed"):
        get("navier_stokes/kolmogorov", seed=-1)


def test_initial_field_has_the_fno_spectrum():
    """Mean power per mode over seeds equals the FNO GaussianRF's |sqrt_eig / s^2|^2 = 2 sigma^2
    (4 pi^2 |m|^2 + tau^2)^-alpha (Li et al. 2021, alpha = 2.5, tau = 7, sigma = tau^(alpha-1))."""
    seeds = 400
    power = np.mean([np.abs(kol.initial_modes(s)) ** 2 for s in range(seeds)], axis=0)
    K = kol.GRF_MODES
    m = np.arange(-K, K + 1)
    lam = 4 * math.pi**2 * (m[:, None] ** 2 + m[None, :] ** 2) + 49.0
    want = 2 * 7.0**3 * lam**-2.5
    want[K, K] = 0
    # |xi|^2 of a standard complex normal is Exp(1): the mean of 400 has relative sd 1/20;
    # pooled over the 8 modes with |m| = 1 (and sqrt 2) the sd is 1/20/sqrt(4): 5 sd = 0.125
    for shell in (
        [(K + 1, K), (K - 1, K), (K, K + 1), (K, K - 1)],
        [(K + 1, K + 1), (K - 1, K - 1), (K + 1, K - 1), (K - 1, K + 1)],
    ):
        got = np.mean([power[i] for i in shell]) / np.mean([want[i] for i in shell])
        assert abs(got - 1) < 0.125
    assert power[K, K] == 0


def test_initial_condition_pointwise_matches_reference_grid():
    p = get("navier_stokes/kolmogorov", t_end=0.5, seed=3)
    ref = p.reference()
    n = ref.shape[0]
    x = ref.axes["x"]
    X, Y = np.meshgrid(x, x, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    ic = p.initial_condition(torch.as_tensor(pts))
    for k in ("u", "v", "w"):
        # trigonometric sum at the points vs inverse FFT on the grid: round-off
        assert np.abs(ic[k].numpy() - ref.values[k][:, :, 0].ravel()).max() < 1e-12, k
    assert n == kol.REFERENCE_GRID[p.nu]


def test_reference_converges_in_space_and_is_spectrally_resolved():
    """Grids 96 and 128 share every 4th/3rd node; at nu = 1e-3 they agree to 1e-9."""
    p = get("navier_stokes/kolmogorov", t_end=1.0)
    a, b = (
        p.simulate({"w": kol.initial_vorticity(0, n)[None]}, p.grid(n), [0.0, 1.0], max_dt=1 / 50)
        for n in (96, 128)
    )
    diff = np.abs(a["w"][0, -1, ::3, ::3] - b["w"][0, -1, ::4, ::4]).max()
    # both runs share the time step, so this measures the spatial error of the coarser one
    assert diff < 1e-9, diff


def test_default_reference_description_and_cache(reference_cache):
    p = get("navier_stokes/kolmogorov")
    ref = p.reference()
    assert ref.source == "computed"
    assert "128x128" in ref.description and "ETDRK4" in ref.description
    files = [f for f in os.listdir(reference_cache) if f.startswith("navier_stokes__kolmogorov")]
    assert files
    # the evaluation grid lies on reference nodes and snapshot times: no interpolation error
    grid = p.evaluation_grid()
    assert set(grid.axes["t"]).issubset(set(ref.axes["t"]))
    assert np.all(np.isin(grid.axes["x"], ref.axes["x"]))


def test_stated_time_step_error_is_honest():
    """The Richardson estimate in the accuracy string against a run at half the step
    (t_end = 2 keeps it cheap; same settings rule as the default)."""
    p = get("navier_stokes/kolmogorov", t_end=2.0)
    ref = p.reference()
    settings = p.reference_settings()
    n, times = settings["n"], ref.axes["t"]
    h = p.t_end / settings["n_steps"]
    fine = p.simulate({"w": kol.initial_vorticity(p.seed, n)[None]}, p.grid(n), times, max_dt=h / 2)
    err = np.abs(np.moveaxis(fine["w"][0], 0, -1) - ref.values["w"]).max()
    stated = float(ref.accuracy.split("~")[1].split(" ")[0])
    # the fine run has 1/16 of the reference's error: err ~ (15/16) true error; allow 2x
    assert err < 2 * stated + 1e-12, (err, ref.accuracy)
    assert err < 1e-6
