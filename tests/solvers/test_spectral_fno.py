"""The ``spectral_fno`` solver (Cao et al., ICLR 2025): the SFNO's time resampling and its
spectral time derivative (exact on trigonometric trajectories), the refinement loss against an
independent numpy evaluation of the H^-1 residual norm, the loss on an exact solution of the
forced Navier-Stokes equations (round-off) against a perturbed one, the widened output layer
(the same output) and freezing (every other parameter bit-identical), and a tiny model trained
for 300 steps on a tiny Kolmogorov family (32^2, 17 snapshots on [0, 2]): better than the zero
predictor on the test split, and refinement lowers its error; the solver path (store, zero-shot
grid, extras) and the bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pdekit
from pdekit import store
from pdekit.errors import ParameterError
from pdekit.metrics import rel_l2
from pdekit.problems.datasets import Dataset
from pdekit.problems.family import Family, families
from pdekit.problems.grid import grid_fields
from pdekit.solvers.operator_solution import predict
from pdekit.solvers.spectral_fno import (
    SFNO,
    RefineConfig,
    SFNONetworkConfig,
    SpectralConvT,
    SpectralFNOSolution,
    Windows,
    refine,
    refinement_loss,
    widened,
)

PROBLEM = "navier_stokes/kolmogorov"
NU = 1e-3
TINY = "test_sfno_tiny_kolmogorov"
#: 17 snapshots on [0, 2] (dt = 0.125); simulated on 64^2, exact point values at the 32^2 nodes
TINY_FAMILY = Family(
    name=TINY,
    problem=PROBLEM,
    fixed={"nu": NU, "t_end": 2.0},
    seed_param="seed",
    sizes={"train": 24, "valid": 4, "test": 4},
    grid=32,
    times=tuple(np.linspace(0.0, 2.0, 17)),
    min_solver_cells=64,
    description="a tiny family for tests",
)
IN_STEPS, DT = 4, 0.125
CONFIG = {
    "dataset": {"family": TINY, "n_train": 24, "n_valid": 4, "in_steps": IN_STEPS, "start": 0,
                "grid": 32, "batch_size": 4, "eval_every": 50},
    "network": {"modes": 6, "modes_t": 2, "width": 8, "layers": 2, "latent_steps": 4,
                "out_modes_t": 0},
    "train": {"steps": 300, "log_every": 50},
    "refine": {"steps": 0},
}  # fmt: skip
SEED = 123  # the instance solved (not a member of the tiny family's splits)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PDEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    families.register(TINY_FAMILY)
    yield
    families.unregister(TINY)
    mp.undo()


@pytest.fixture(scope="module")
def trained(cache):
    torch.set_num_threads(1)
    return pdekit.solve(
        PROBLEM, solver="spectral_fno", nu=NU, t_end=2.0, params={"seed": SEED}, config=CONFIG,
        verbose=False,
    )  # fmt: skip


def _problem():
    return pdekit.problems.get(PROBLEM, nu=NU, t_end=2.0)


def _small_model(seed: int = 0) -> SFNO:
    torch.manual_seed(seed)
    cfg = SFNONetworkConfig(modes=4, modes_t=2, width=6, layers=2, latent_steps=4, out_modes_t=0)
    model = SFNO(3, 5, cfg).double()
    with torch.no_grad():  # a non-zero output bias, so the tests see it
        model.out.bias.normal_(0.0, 1e-2)
    return model


# -- the network's time axis --------------------------------------------------------------------
def test_spectral_time_derivative_is_exact_on_trigonometric_trajectories():
    grid = _problem().grid(16)
    nt, dt = 12, 0.3
    t = np.arange(nt) * dt
    period = nt * dt
    x, y = grid.axis(0, "node")[:, None], grid.axis(1, "node")[None, :]
    om = 2 * math.pi / period
    space = np.sin(2 * math.pi * x) * np.cos(4 * math.pi * y)
    w = (np.cos(2 * om * t) + 0.5 * np.sin(3 * om * t))[:, None, None] * space
    w_t = (-2 * om * np.sin(2 * om * t) + 1.5 * om * np.cos(3 * om * t))[:, None, None] * space
    prob = _problem()
    full = prob.complete({"w": torch.as_tensor(w)}, grid)
    f = grid_fields(prob, full, grid, times=t, engine="spectral", time_scheme="spectral",
                    locations="node")  # fmt: skip
    np.testing.assert_allclose(f.d("w", "t").numpy(), w_t, rtol=0, atol=1e-12)


def test_the_output_window_is_one_band_limited_function_of_time():
    """Sampled at 1 and at 3 frames per interval, the window agrees on the common frames, and
    so do its spectral time derivatives: the derivative is the function's, not a difference."""
    model = _small_model()
    prob, grid = _problem(), _problem().grid(16)
    x = torch.randn(2, 3, 16, 16, 1, dtype=torch.float64)
    w = x[..., 0].movedim(1, -1)
    latent, last = model.latent(w), w[..., -1]
    coarse = last[:, None] + model.window(latent, last, 5, per_step=1)
    fine = last[:, None] + model.window(latent, last, 5, per_step=3)
    assert coarse.shape == (2, 12, 16, 16) and fine.shape == (2, 36, 16, 16)
    torch.testing.assert_close(fine[:, ::3], coarse, rtol=0, atol=1e-12)

    def dt_of(win, h):
        full = prob.complete({"w": win}, grid)
        times = np.arange(win.shape[1]) * h
        f = grid_fields(prob, full, grid, times=times, engine="spectral",
                        time_scheme="spectral", locations="node")  # fmt: skip
        return f.d("w", "t")

    torch.testing.assert_close(dt_of(fine, 0.1 / 3)[:, ::3], dt_of(coarse, 0.1), rtol=0,
                               atol=1e-9)  # fmt: skip
    # the prediction is the window's second half after the last input's time
    pred = model(x)
    torch.testing.assert_close(pred[..., 0], coarse[:, 7:], rtol=0, atol=0)


def test_spectral_conv_t_resamples_a_band_limited_signal():
    layer = SpectralConvT(1, 1, (3, 3, 3)).double()
    with torch.no_grad():  # the identity on the kept modes
        layer.weight.zero_()
        layer.weight[..., 0] = 1.0
    n, T = 8, 10
    t = torch.arange(T, dtype=torch.float64) / T
    xs = torch.arange(n, dtype=torch.float64) / n
    sig = (torch.cos(2 * math.pi * xs)[:, None, None] * torch.sin(2 * math.pi * xs)[None, :, None]
           * (1 + torch.cos(2 * math.pi * 2 * t))[None, None, :])  # fmt: skip
    out = layer(sig[None, None], 25)
    t25 = torch.arange(25, dtype=torch.float64) / 25
    want = (torch.cos(2 * math.pi * xs)[:, None, None] * torch.sin(2 * math.pi * xs)[None, :, None]
            * (1 + torch.cos(2 * math.pi * 2 * t25))[None, None, :])  # fmt: skip
    torch.testing.assert_close(out[0, 0], want, rtol=0, atol=1e-13)


# -- the refinement loss --------------------------------------------------------------------------
def _numpy_loss(window: np.ndarray, last: np.ndarray, dt: float, nu: float, alpha: float):
    """The refinement objective written out with numpy alone: spectral time and space
    derivatives, velocity from the stream function, the vorticity residual at the nodes, its
    H^-1 norm summed mode by mode over the 2/3-dealiased full spectrum, the trapezoidal rule."""
    nt, n = window.shape[0], window.shape[1]
    k = np.fft.fftfreq(n, 1.0 / n)
    kx, ky = np.meshgrid(2 * np.pi * k, 2 * np.pi * k, indexing="ij")
    k2 = kx**2 + ky**2
    kt = 2 * np.pi * np.fft.fftfreq(nt, dt)
    if nt % 2 == 0:
        kt[nt // 2] = 0.0  # the unmatched Nyquist mode of an odd derivative
    nyq = np.abs(k) == n // 2
    w_hat = np.fft.fft2(window)
    w_t = np.real(np.fft.ifft(1j * kt[:, None, None] * np.fft.fft(window, axis=0), axis=0))
    psi_hat = np.where(k2 > 0, w_hat / np.where(k2 > 0, k2, 1.0), 0.0)
    u = np.real(np.fft.ifft2(1j * ky * np.where(nyq[None, :], 0, 1) * psi_hat))
    v = np.real(np.fft.ifft2(-1j * kx * np.where(nyq[:, None], 0, 1) * psi_hat))
    w_x = np.real(np.fft.ifft2(1j * kx * np.where(nyq[:, None], 0, 1) * w_hat))
    w_y = np.real(np.fft.ifft2(1j * ky * np.where(nyq[None, :], 0, 1) * w_hat))
    lap = np.real(np.fft.ifft2(-k2 * w_hat))
    x = np.arange(n)[:, None] / n
    y = np.arange(n)[None, :] / n
    f = 0.1 * (np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y)))
    r = w_t + u * w_x + v * w_y - nu * lap - f
    r_hat = np.fft.fft2(r) / n**2  # Fourier-series coefficients; box volume 1
    keep = (3 * np.abs(k)[:, None] < n) & (3 * np.abs(k)[None, :] < n)
    norms = [
        sum(abs(r_hat[t, i, j]) ** 2 / (alpha + k2[i, j])
            for i in range(n) for j in range(n) if keep[i, j])
        for t in range(nt)
    ]  # fmt: skip
    half = nt // 2
    sq = np.asarray(norms[half:])
    initial = np.mean((window[half] - last) ** 2)
    return initial + dt * (sq.sum() - 0.5 * (sq[0] + sq[-1]))


def test_refinement_loss_equals_a_direct_evaluation_of_the_h_minus_1_residual():
    model = _small_model(1)
    prob, grid = _problem(), _problem().grid(12)
    x = torch.randn(1, 3, 12, 12, 1, dtype=torch.float64)
    w = x[..., 0].movedim(1, -1)
    latent, last = model.latent(w), w[..., -1]
    window = last[:, None] + model.window(latent, last, 5)
    got = refinement_loss(prob, window, last, grid, 0.2, alpha=0.05).detach()
    want = _numpy_loss(window[0].detach().numpy(), last[0].numpy(), 0.2, NU, 0.05)
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(want, rel=1e-10)


def _stationary(n: int) -> np.ndarray:
    """The exact steady state w = (0.1 / (8 pi^2 nu)) (sin 2pi(x+y) + cos 2pi(x+y)) of the
    forced problem: its advection vanishes (one wavevector) and nu lap w + f = 0."""
    x = np.arange(n)[:, None] / n
    y = np.arange(n)[None, :] / n
    s = 2 * np.pi * (x + y)
    return 0.1 / (8 * np.pi**2 * NU) * (np.sin(s) + np.cos(s))


def test_the_loss_tells_an_exact_solution_from_a_perturbed_one():
    prob, grid = _problem(), _problem().grid(16)
    w = torch.as_tensor(_stationary(16))
    window = w.expand(1, 12, 16, 16).clone()
    exact = float(refinement_loss(prob, window, w[None], grid, 0.25)[0])
    scale = float((w**2).mean())  # the size of the field in the loss's units
    assert exact < 1e-25 * scale  # round-off: the exact solution's own accuracy
    x = np.arange(16)[:, None] / 16
    y = np.arange(16)[None, :] / 16
    bump = torch.as_tensor(np.sin(2 * np.pi * x) * np.cos(4 * np.pi * y))
    ramp = torch.as_tensor(np.sin(np.pi * np.arange(12) / 12))[None, :, None, None]
    for eps in (1e-2, 1e-3):  # a 1% and a 0.1% perturbation in time (the initial frame kept)
        wrong = float(refinement_loss(prob, window + eps * ramp * bump, w[None], grid, 0.25)[0])
        assert wrong > 1e-8 * scale
        assert wrong > 1e10 * max(exact, 1e-300)


# -- widening and freezing -------------------------------------------------------------------
def test_the_widened_output_layer_computes_the_same_output():
    model = _small_model(2)
    x = torch.randn(2, 3, 16, 16, 1, dtype=torch.float64)
    w = x[..., 0].movedim(1, -1)
    latent, last = model.latent(w), w[..., -1]
    wide = widened(model.out, (16, 16, 2 * (latent.shape[-1] + 1)), 2 * (5 + 1))
    assert wide.modes == (8, 8, 5) and wide.bias_modes == (8, 8, 6) and wide.delta == 1.0
    torch.testing.assert_close(
        model.window(latent, last, 5, wide), model.window(latent, last, 5), rtol=0, atol=1e-14
    )


def test_refinement_freezes_every_parameter_of_the_model():
    model = _small_model(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.as_tensor(_stationary(16))[None, None, ..., None].expand(1, 3, 16, 16, 1)
    cfg = RefineConfig(steps=3, optimizer="lbfgs")
    res = refine(model, x.clone(), _problem(), _problem().grid(16), 0.25, cfg)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert res.loss[-1] < res.loss[0]
    assert not torch.equal(res.trajectory, model(x.clone()))  # the copy did change


# -- training, refinement, the solver ---------------------------------------------------------
def test_windows_cover_every_window_of_every_trajectory(cache):
    ds = Dataset.generate(TINY, "valid", 4, grid=32, progress=False)
    win = Windows(ds, IN_STEPS, 10)
    assert win.starts == 17 - IN_STEPS - 10 + 1 and len(win) == 4 * win.starts
    x, y = win[2 * win.starts + 1]
    traj = ds.trajectories[2]
    np.testing.assert_array_equal(x.numpy(), traj[1 : 1 + IN_STEPS])
    np.testing.assert_array_equal(y.numpy(), traj[1 + IN_STEPS : 11 + IN_STEPS])
    with pytest.raises(ParameterError, match="does not fit 17 times"):
        Windows(ds, IN_STEPS, 14)


def test_a_tiny_model_beats_the_zero_predictor_and_refinement_lowers_its_error(trained):
    assert isinstance(trained, SpectralFNOSolution)
    fam = families.get(TINY)
    test = Dataset.generate(fam, "test", 4, grid=32, progress=False)
    traj = np.asarray(test.trajectories)
    x, ref = traj[:, :IN_STEPS], traj[:, IN_STEPS:].astype(np.float64)
    raw = predict(trained.model, x)
    errs = np.array([rel_l2(p, r) for p, r in zip(raw, ref)])
    assert errs.max() < 0.2  # the zero predictor: 1 (measured here: 0.046-0.052)
    cfg = RefineConfig()  # the paper's: 50 Adam steps, lr 0.2 (bias) and 1e-4 (weights)
    res = refine(trained.model, torch.as_tensor(x), fam.template(), fam.make_grid(32), DT, cfg)
    refined = np.array([rel_l2(p, r) for p, r in zip(res.trajectory.numpy(), ref)])
    assert res.loss[-1] < 0.5 * res.loss[0]
    assert np.all(refined < errs)


def test_solve_answers_an_instance_and_reports_refinement(trained, capsys):
    assert trained.step == 300
    found = store.find("spectral_fno", TINY, grid=32)
    assert found is not None and str(found.path) == trained.extras["store_path"]
    assert trained.trajectory.shape == (17, 32, 32, 1)
    assert trained.extras["rel_l2"] < 0.2
    cfg = {**CONFIG, "refine": {"steps": 5, "optimizer": "lbfgs"}}
    sol = pdekit.solve(PROBLEM, solver="spectral_fno", nu=NU, t_end=2.0, params={"seed": SEED},
                       config=cfg)  # fmt: skip
    assert "using the user model spectral_fno" in capsys.readouterr().err
    sol.trajectory  # noqa: B018  (answers and refines)
    ex = sol.extras
    assert ex["rel_l2"] == pytest.approx(trained.extras["rel_l2"], rel=1e-6)
    assert ex["residual_refined"] < ex["residual"] and ex["refine_s"] > 0
    assert 0 < ex["rel_l2_refined"] < 0.2
    # zero-shot on a finer grid: the same model answers at 64^2 (inputs simulated there)
    fine = pdekit.solve(PROBLEM, solver="spectral_fno", nu=NU, t_end=2.0, params={"seed": SEED},
                        config={**CONFIG, "grid": 64}, verbose=False)  # fmt: skip
    assert fine.trajectory.shape == (17, 64, 64, 1)
    assert fine.extras["rel_l2"] < 0.2


def test_the_command_line_trains_and_evaluates(cache, capsys):
    from pdekit.cli import TRAINABLE, main
    from pdekit.solvers.fno import evaluate, operator_solvers

    assert TRAINABLE == operator_solvers()
    flat = [f"--config={section}.{k}={v}" for section, values in CONFIG.items()
            for k, v in values.items() if k != "family"]  # fmt: skip
    argv = ["train", TINY, "--solver", "spectral_fno", "--quiet", *flat, "--config=train.steps=5"]
    assert main(argv) == 0
    path = capsys.readouterr().out.strip().removeprefix("wrote model: ")
    model = store.describe(path)
    assert model.solver == "spectral_fno" and model.command.startswith(
        f"pdekit train {TINY} --solver spectral_fno"
    )
    assert store.load(model).step == 5
    assert main(["evaluate", path, "--split", "test", "--size", "2"]) == 0
    rel = [x for x in capsys.readouterr().out.splitlines() if x.startswith("rel_l2: ")]
    assert rel[0].startswith(f"rel_l2: {evaluate(path, 'test', 2)['rel_l2']['mean']:.4e}")


# -- bad input -------------------------------------------------------------------------------
def test_bad_input_is_named():
    with pytest.raises(ParameterError, match="latent_steps >= 9"):
        SFNONetworkConfig(modes_t=5, latent_steps=8, out_modes_t=0)
    with pytest.raises(ParameterError, match="latent_steps >= 15"):
        SFNONetworkConfig(latent_steps=10, out_modes_t=16)
    with pytest.raises(ParameterError, match="optimizer"):
        RefineConfig(optimizer="sgd")
    with pytest.raises(ParameterError, match="per_step"):
        RefineConfig(per_step=0)
    with pytest.raises(ParameterError, match="needs in_steps >= 3"):
        SFNO(2, 5, SFNONetworkConfig(modes_t=2, latent_steps=4, out_modes_t=0))
    model = _small_model()
    with pytest.raises(ParameterError, match="cannot take a 15x15 grid"):
        model.check_resolution(15)
    with pytest.raises(ParameterError, match="3 snapshots"):
        model(torch.zeros(1, 4, 16, 16, 1, dtype=torch.float64))
    with pytest.raises(ParameterError, match="bias_modes"):
        SpectralConvT(1, 1, (3, 3, 3), bias=True, bias_modes=(2, 3, 3))
    with pytest.raises(pdekit.errors.PdekitError, match="vorticity"):
        pdekit.solve("porous_medium/diffusion_sorption", solver="spectral_fno")
