"""Batched pseudo-spectral Navier-Stokes behind Problem.simulate (Kolmogorov, Taylor-Green):
a batch equals its members run one by one, Taylor-Green from its initial condition is exact,
and the solver's batch features (forcing f(t), blow-up detection, non-uniform output times)."""

import math

import numpy as np
import pytest
import torch

from pdekit.core import spectral
from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.navier_stokes import kolmogorov as kol
from pdekit.problems.references import spectral_ns as sns

TWO_PI = (2 * math.pi, 2 * math.pi)


def nodes(grid):
    x, y = (grid.axis(k, "node") for k in (0, 1))
    return np.meshgrid(x, y, indexing="ij")


def random_velocity(n, modes, batch, seed):
    """Divergence-free random velocities on [0, 2pi)^2 with |m| < modes, max speed 1."""
    rng = np.random.default_rng(seed)
    c = np.zeros((batch, n, n // 2 + 1), dtype=complex)
    rows = np.r_[0:modes, n - modes + 1 : n]
    shape = (batch, rows.size, modes)
    c[:, rows, :modes] = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    w = torch.fft.irfft2(torch.as_tensor(c), s=(n, n))
    u, v = spectral.velocity_from_vorticity(w, TWO_PI)
    scale = torch.maximum(u.abs().amax(dim=(-2, -1)), v.abs().amax(dim=(-2, -1)))[:, None, None]
    return (u / scale).numpy(), (v / scale).numpy()


# -- a batch equals its members one by one --------------------------------------------------------
def test_kolmogorov_batch_of_three_equals_three_runs():
    p = get("navier_stokes/kolmogorov", nu=1e-3)
    grid = p.grid(64)
    w0 = np.stack([kol.initial_vorticity(seed, 64) for seed in (0, 1, 2)])
    times = [0.0, 0.25, 0.5]
    batch = p.simulate({"w": w0}, grid, times)["w"]
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == np.float64
    one_by_one = np.concatenate(
        [p.simulate({"w": w0[i : i + 1]}, grid, times)["w"] for i in range(3)]
    )
    # batched vs single FFTs: round-off (measured 2.2e-16 absolute, max |w| 0.45)
    assert np.abs(batch - one_by_one).max() < 1e-13
    assert np.abs(batch[0, 1] - batch[1, 1]).max() > 0.1  # the members do differ


def test_taylor_green_batch_of_three_equals_three_runs():
    tg = get("navier_stokes/taylor_green", nu=0.05)
    grid = tg.grid(32)
    u, v = random_velocity(32, 6, 3, seed=0)
    u = u + np.array([0.2, -0.4, 0.0])[:, None, None]  # different mean flows
    times = [0.0, 0.5, 1.0]
    batch = tg.simulate({"u": u, "v": v}, grid, times)
    singles = [tg.simulate({"u": u[i : i + 1], "v": v[i : i + 1]}, grid, times) for i in range(3)]
    for k in ("u", "v"):
        one_by_one = np.concatenate([s[k] for s in singles])
        # measured 4.4e-16 absolute (speeds ~1)
        assert np.abs(batch[k] - one_by_one).max() < 1e-13, k
    # a resolved divergence-free input is its own projection: the first snapshot is the input
    assert np.abs(batch["u"][:, 0] - u).max() < 1e-13


# -- Taylor-Green: simulate is exact from its initial condition ------------------------------------
@pytest.mark.parametrize("n", [8, 16])
def test_taylor_green_simulate_matches_the_exact_solution(n):
    """One Fourier mode with u.grad(w) = 0, viscous decay integrated exactly: round-off on any
    grid that keeps the mode, and the pressure from complete() is the exact one (zero mean)."""
    tg = get("navier_stokes/taylor_green", nu=0.1, t_end=2.0)
    grid = tg.grid(n)
    X, Y = nodes(grid)
    pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], axis=1))
    ic = {k: a.numpy().reshape(X.shape)[None] for k, a in tg.initial_condition(pts).items()}
    times = np.linspace(0.0, tg.t_end, 5)
    out = tg.simulate({"u": ic["u"], "v": ic["v"]}, grid, times)
    full = tg.complete({k: torch.as_tensor(out[k]) for k in ("u", "v")}, grid)
    for j, t in enumerate(times):
        pts_t = torch.as_tensor(np.stack([X.ravel(), Y.ravel(), np.full(X.size, t)], axis=1))
        exact = tg.exact(pts_t)
        for k in ("u", "v", "p"):
            want = exact[k].numpy().reshape(X.shape)
            # measured <= 5.6e-16 (u, v, p) absolute on n = 8, 16; amplitudes <= 1
            assert np.abs(full[k][0, j].numpy() - want).max() < 1e-13, (k, t)


def test_taylor_green_simulate_with_mean_flow_is_the_translated_exact_solution():
    """Galilean invariance: u = U + u_TG(x - U t, t); the solver translates the modes exactly."""
    tg = get("navier_stokes/taylor_green", nu=0.1)
    grid = tg.grid(16)
    X, Y = nodes(grid)
    U = (0.3, -0.7)
    times = np.array([0.0, 0.5, 1.5])
    t = times[:, None, None]
    F = np.exp(-2 * tg.nu * t)
    u0, v0 = np.cos(X) * np.sin(Y) + U[0], -np.sin(X) * np.cos(Y) + U[1]
    out = tg.simulate({"u": u0[None], "v": v0[None]}, grid, times)
    u_exact = U[0] + np.cos(X - U[0] * t) * np.sin(Y - U[1] * t) * F
    v_exact = U[1] - np.sin(X - U[0] * t) * np.cos(Y - U[1] * t) * F
    # measured 8.9e-16 absolute
    assert np.abs(out["u"][0] - u_exact).max() < 1e-13
    assert np.abs(out["v"][0] - v_exact).max() < 1e-13


def test_taylor_green_simulate_projects_a_non_solenoidal_input():
    """A gradient added to the initial velocity is not part of the flow: the first snapshot is
    the divergence-free part (documented Leray projection)."""
    tg = get("navier_stokes/taylor_green")
    grid = tg.grid(16)
    X, Y = nodes(grid)
    u0, v0 = np.cos(X) * np.sin(Y), -np.sin(X) * np.cos(Y)
    # grad of phi = sin(x + 2y)
    gu, gv = np.cos(X + 2 * Y), 2 * np.cos(X + 2 * Y)
    out = tg.simulate({"u": (u0 + gu)[None], "v": (v0 + gv)[None]}, grid, [0.0, 0.1])
    # measured 1.6e-15 and 2.1e-15 (the gradient has amplitude 2)
    assert np.abs(out["u"][0, 0] - u0).max() < 1e-13
    assert np.abs(out["v"][0, 0] - v0).max() < 1e-13


# -- the solver's batch features -------------------------------------------------------------------
def manufactured(nu, X, Y):
    """w = a(t) cos x + b(t) cos 2y with the forcing that makes it exact (u.grad(w) != 0)."""

    def w(t):
        return (math.cos(t) + 0.5) * np.cos(X) + (math.exp(-t) + 1) * np.cos(2 * Y)

    def f(t):
        a, b = math.cos(t) + 0.5, math.exp(-t) + 1
        return torch.as_tensor(
            -math.sin(t) * np.cos(X)
            - math.exp(-t) * np.cos(2 * Y)
            - 1.5 * a * b * np.sin(X) * np.sin(2 * Y)
            + nu * (a * np.cos(X) + 4 * b * np.cos(2 * Y))
        )

    return w, f


def test_time_dependent_forcing_is_broadcast_over_the_batch_and_times_need_not_be_uniform():
    nu = 0.1
    grid = Grid((0.0, 0.0), TWO_PI, 16, periodic=True)
    X, Y = nodes(grid)
    w, f = manufactured(nu, X, Y)
    times = np.array([0.0, 0.1, 0.5, 0.6, 2.0])  # non-uniform
    steps = sns.steps_per_interval(times, 0.05)
    assert steps.tolist() == [2, 8, 2, 28]
    other = 0.5 * np.sin(X + Y)
    sol = sns.solve(torch.as_tensor(np.stack([w(0.0), w(0.0) + other])), grid, nu, times, steps, f)
    assert sol.w.shape == (2, 5, 16, 16) and sol.steps == 40
    np.testing.assert_array_equal(sol.times, times)
    for j, t in enumerate(times):
        # 4th-order time error at dt <= 0.05: measured 2.6e-7 (max |w| 3.5)
        assert np.abs(sol.w[0, j] - w(t)).max() < 1e-6
    alone = sns.solve(torch.as_tensor(w(0.0) + other), grid, nu, times, steps, f)
    assert np.abs(sol.w[1] - alone.w).max() < 1e-13  # measured 6.7e-16


def test_chunks_of_the_batch_do_not_change_the_result():
    """One FFT call per trajectory, per two, or for the whole batch: round-off apart."""
    grid = Grid((0.0, 0.0), TWO_PI, 16, periodic=True)
    X, Y = nodes(grid)
    w0 = torch.as_tensor(np.stack([np.cos(X) * np.cos(2 * Y), np.sin(X + Y), np.cos(3 * Y)]))
    f = torch.as_tensor(0.1 * np.sin(2 * X)[None] * np.array([1.0, 2.0, 3.0])[:, None, None])
    runs = [sns.solve(w0, grid, 0.01, [0.0, 0.5, 1.0], 10, f, chunk=c).w for c in (1, 2, 3)]
    assert sns.default_chunk(64, 64) == 8  # 512 KiB of (u, v) per call at 64^2, float64
    for w in runs[1:]:
        assert np.abs(w - runs[0]).max() < 1e-13  # measured 0.0 (|w| ~ 1)


def test_blow_up_names_the_trajectories():
    grid = Grid((0.0, 0.0), TWO_PI, 16, periodic=True)
    X, Y = nodes(grid)
    w0 = np.stack([np.cos(X) * np.cos(2 * Y), 1e4 * np.cos(X) * np.cos(2 * Y), np.sin(X + Y)])
    with pytest.raises(FloatingPointError, match=r"trajectories \[1\] of 3"):
        sns.solve(torch.as_tensor(w0), grid, 1e-3, [0.0, 10.0], 200)


def test_symbols_are_cached_per_shape_lengths_dtype_device():
    a = Grid((0.0, 0.0), (1.0, 1.0), 16, periodic=True)
    b = Grid((0.0, 0.0), (1.0, 1.0), 16, periodic=True)
    assert sns.symbols(a) is sns.symbols(b)
    assert sns.symbols(a) is not sns.symbols(a, torch.float32)
    assert sns.symbols(a, torch.float32).laplacian.dtype == torch.float32


def test_progress_bar_only_when_asked_or_on_a_tty(capsys):
    grid = Grid((0.0, 0.0), TWO_PI, 8, periodic=True)
    X, Y = nodes(grid)
    w0 = torch.as_tensor(np.cos(X) * np.cos(Y))
    sns.solve(w0, grid, 0.1, [0.0, 1.0], 5)  # stderr is not a TTY under pytest: no bar
    assert "step" not in capsys.readouterr().err
    sns.solve(w0, grid, 0.1, [0.0, 1.0], 5, progress=True)
    assert "/5" in capsys.readouterr().err


@pytest.mark.parametrize(
    "grid, match",
    [
        (Grid((0.0, 0.0), (1.0, 1.0), (32, 16), periodic=True), "square"),
        (Grid((0.0, 0.0), (1.0, 1.0), 30 + 1, periodic=True), "even"),
        (Grid((0.0, 0.0), (2.0, 1.0), 32, periodic=True), "domain"),
        (Grid((0.0, 0.0), (1.0, 1.0), 32, periodic=False), "periodic"),
    ],
)
def test_kolmogorov_simulate_checks_its_grid(grid, match):
    p = get("navier_stokes/kolmogorov")
    w0 = np.zeros((1, *grid.shape_of("node")))
    with pytest.raises(ParameterError, match=match):
        p.simulate({"w": w0}, grid, [0.0, 0.1])


def test_mean_velocity_with_forcing_is_refused():
    grid = Grid((0.0, 0.0), TWO_PI, 8, periodic=True)
    w0 = torch.zeros(8, 8, dtype=torch.float64)
    with pytest.raises(ParameterError, match="mean_velocity"):
        sns.solve(w0, grid, 0.1, [0.0, 1.0], 2, forcing=w0, mean_velocity=(1.0, 0.0))
