"""The pseudo-spectral Navier-Stokes solver and its ETDRK4 time stepper, against exact solutions."""

import math

import numpy as np
import pytest
import torch

from pdekit.core import spectral
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.navier_stokes.kolmogorov import forcing
from pdekit.problems.references import etdrk4
from pdekit.problems.references import spectral_ns as sns


def observed_orders(errors):
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def square(n, length):
    """The periodic n x n grid on [0, length)^2 and its node mesh."""
    grid = Grid((0.0, 0.0), (length, length), n, periodic=True)
    x = grid.axis(0, "node")
    return grid, np.meshgrid(x, x, indexing="ij")


# -- ETDRK4 ----------------------------------------------------------------------------------------
def test_etdrk4_fourth_order_on_stiff_riccati():
    """v' = L v + v^2 has v = L v0 e^{Lt} / (L + v0 (1 - e^{Lt})); stiff (L = -50) and L = 0."""
    L = torch.tensor([-1.0, -50.0, 0.0, -0.3], dtype=torch.float64)
    v0 = torch.tensor([0.5, 0.5, 0.3, 0.2], dtype=torch.float64)
    e = torch.exp(L)
    exact = torch.where(L == 0, v0 / (1 - v0), L * v0 * e / (L + v0 * (1 - e)))
    errs = []
    for n in (10, 20, 40, 80):
        _, snaps = etdrk4.integrate(v0, L, lambda v, t: v**2, 0.0, 1.0, n)
        errs.append(float((snaps[-1] - exact).abs().max()))
    # asymptotic from 10 steps on for this smooth problem: slopes 4 +- 0.2
    assert np.all(np.abs(observed_orders(errs) - 4) < 0.2), errs


def test_etdrk4_coefficients_limits_and_closed_forms():
    h = 0.1
    c = etdrk4.coefficients(torch.tensor([0.0, -200.0], dtype=torch.float64), h)
    # hL = 0: Q = h/2 and f1 = f2 = f3 = h/6 (Taylor limits); the contour mean gets them to
    # round-off where the closed forms would divide 0 by 0
    for got, want in ((c.Q, h / 2), (c.f1, h / 6), (c.f2, h / 6), (c.f3, h / 6)):
        assert float(got[0]) == pytest.approx(want, rel=1e-13)
    # |hL| = 20: the closed forms have no cancellation; they agree with the contour means
    z = -20.0
    ez = math.exp(z)
    closed = {
        "Q": h * (math.exp(z / 2) - 1) / z,
        "f1": h * (-4 - z + ez * (4 - 3 * z + z**2)) / z**3,
        "f2": h * (2 + z + ez * (z - 2)) / z**3,
        "f3": h * (-4 - 3 * z - z**2 + ez * (4 - z)) / z**3,
    }
    for name, want in closed.items():
        assert float(getattr(c, name)[1]) == pytest.approx(want, rel=1e-12)


def test_etdrk4_snapshots():
    times, snaps = etdrk4.integrate(
        torch.ones(3, dtype=torch.float64),
        torch.zeros(3, dtype=torch.float64),
        lambda v, t: torch.zeros_like(v),
        0.0,
        2.0,
        8,
        save_every=2,
    )
    np.testing.assert_allclose(times.numpy(), [0.0, 0.5, 1.0, 1.5, 2.0])
    assert snaps.shape == (5, 3)


# -- spatial discretisation ------------------------------------------------------------------------
@pytest.mark.parametrize("n", [8, 16, 32])
def test_taylor_green_spectral_accuracy(n):
    """Taylor-Green is a single Fourier mode with u.grad(w) = 0: the solver must reproduce it to
    round-off on any grid that resolves the mode (issue requirement: <= 1e-10 in float64)."""
    tg = get("navier_stokes/taylor_green", nu=0.1, t_end=2.0)
    grid, (X, Y) = square(n, 2 * math.pi)
    times = np.linspace(0.0, tg.t_end, 5)
    sol = sns.solve(torch.as_tensor(-2 * np.cos(X) * np.cos(Y)), grid, tg.nu, times, 5)
    uv = spectral.velocity_from_vorticity(torch.as_tensor(sol.w), (2 * math.pi, 2 * math.pi))
    u, v = (a.numpy() for a in uv)
    for k, t in enumerate(sol.times):
        pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel(), np.full(X.size, t)], axis=1))
        ex = {key: val.numpy().reshape(X.shape) for key, val in tg.exact(pts).items()}
        assert np.abs(u[k] - ex["u"]).max() <= 1e-10
        assert np.abs(v[k] - ex["v"]).max() <= 1e-10
        # w = v_x - u_y = -2 cos x cos y exp(-2 nu t)
        assert (
            np.abs(sol.w[k] - (-2 * np.cos(X) * np.cos(Y) * np.exp(-2 * tg.nu * t))).max() <= 1e-10
        )


def test_advection_is_dealiased_exactly():
    """For a field with modes |m| < n/3 the dealiased advection (Basdevant's form) equals the
    exact u w_x + v w_y (the direct form, computed with the core's derivatives on a grid twice
    as fine, where nothing aliases) projected onto the kept modes."""
    n = 24
    rng = np.random.default_rng(3)
    grid = square(n, 1.0)[0]
    mask = sns.symbols(grid).dealias
    w_hat = mask * torch.as_tensor(
        rng.standard_normal((n, n // 2 + 1)) + 1j * rng.standard_normal((n, n // 2 + 1))
    )
    w_hat[0, 0] = 0
    w_hat[:, 0] = torch.fft.fft(torch.fft.ifft(w_hat[:, 0]).real)  # real-field symmetry of ky=0
    # embed the same modes on the fine grid (amplitudes scale with the number of points)
    w_fine = torch.zeros((2 * n, n + 1), dtype=torch.complex128)
    idx = np.r_[0 : n // 2, 2 * n - n // 2 : 2 * n]
    w_fine[idx, : n // 2 + 1] = w_hat[np.r_[0 : n // 2, n // 2 : n]] * 4
    # all products resolved on 2n (modes <= 2 (n/3 - 1) < n, the fine grid's Nyquist)
    w_phys = torch.fft.irfft2(w_fine, s=(2 * n, 2 * n))
    u, v = spectral.velocity_from_vorticity(w_phys, (1.0, 1.0))
    wx, wy = spectral.gradient(w_phys, (1.0, 1.0))
    exact_fine = torch.fft.rfft2(u * wx + v * wy) / 4
    got = sns.advection(w_hat, grid)
    want = mask * exact_fine[np.r_[0 : n // 2, 2 * n - n // 2 : 2 * n], : n // 2 + 1]
    # the two forms agree to round-off: measured 6.2e-16 relative
    assert float((got - want).abs().max()) < 1e-12 * float(got.abs().max())
    # the mask is the largest that is alias-free: kept |m| <= K with 3K < n, and K + 1 dropped
    kept = torch.fft.fftfreq(n, 1.0 / n)[mask[:, 0] > 0].abs().max()
    assert 3 * kept < n <= 3 * (kept + 1)


def test_laminar_kolmogorov_flow_is_steady():
    """w = f / (8 pi^2 nu) is a steady solution (a Laplacian eigenfunction, so u.grad(w) = 0):
    checks the forcing's sign and scale against the viscous term."""
    nu, n = 1e-2, 32
    grid, (X, Y) = square(n, 1.0)
    f = forcing(X, Y)
    ws = f / (8 * math.pi**2 * nu)
    sol = sns.solve(torch.as_tensor(ws), grid, nu, [0.0, 1.0], 10, forcing=torch.as_tensor(f))
    assert np.abs(sol.w[-1] - ws).max() < 1e-12


# -- time order ------------------------------------------------------------------------------------
def manufactured(nu, X, Y):
    """w = a(t) cos x + b(t) cos 2y on [0, 2pi)^2: u.grad(w) = -1.5 a b sin x sin 2y != 0; the
    forcing f = w_t + u.grad(w) - nu lap w makes it an exact solution."""

    def a(t):
        return math.cos(t) + 0.5

    def b(t):
        return math.exp(-t) + 1

    def w(t):
        return a(t) * np.cos(X) + b(t) * np.cos(2 * Y)

    def f(t):
        return torch.as_tensor(
            -math.sin(t) * np.cos(X)
            - math.exp(-t) * np.cos(2 * Y)
            - 1.5 * a(t) * b(t) * np.sin(X) * np.sin(2 * Y)
            + nu * (a(t) * np.cos(X) + 4 * b(t) * np.cos(2 * Y))
        )

    return w, f


def test_time_order_measured_on_forced_nonlinear_solution():
    nu, n, t_end = 0.1, 16, 2.0
    grid, (X, Y) = square(n, 2 * math.pi)
    w, f = manufactured(nu, X, Y)
    errs = []
    for steps in (10, 20, 40):
        sol = sns.solve(torch.as_tensor(w(0.0)), grid, nu, [0.0, t_end], steps, forcing=f)
        errs.append(np.abs(sol.w[-1] - w(t_end)).max())
    # declared order 4 (ETDRK4); max CFL 1.5 at 10 steps is inside the asymptotic range: +-0.25
    assert sns.TIME_ORDER == 4
    assert np.all(np.abs(observed_orders(errs) - sns.TIME_ORDER) < 0.25), errs
