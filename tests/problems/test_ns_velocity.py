"""Velocity from vorticity (written once, in core) and the pressure Poisson solve, against
analytic stream functions and independent implementations."""

import math

import numpy as np
import pytest
import torch

from pdekit.core import spectral
from pdekit.geometries import Grid
from pdekit.problems import get
from pdekit.problems.navier_stokes import kolmogorov as kol
from pdekit.problems.references import spectral_ns as sns


def mesh(grid):
    x, y = (torch.as_tensor(grid.axis(k, "node")) for k in (0, 1))
    return torch.meshgrid(x, y, indexing="ij")


def stream(X, Y, lx, ly):
    """psi, and its exact psi_x, psi_y, -lap psi, for two modes on [0, lx) x [0, ly)."""
    a, b = 2 * math.pi / lx, 2 * math.pi / ly
    first = torch.sin(a * X) * torch.cos(2 * b * Y)
    phase = 3 * a * X + b * Y
    psi = first + 0.3 * torch.cos(phase)
    psi_x = a * torch.cos(a * X) * torch.cos(2 * b * Y) - 0.9 * a * torch.sin(phase)
    psi_y = -2 * b * torch.sin(a * X) * torch.sin(2 * b * Y) - 0.3 * b * torch.sin(phase)
    w = (a**2 + 4 * b**2) * first + 0.3 * (9 * a**2 + b**2) * torch.cos(phase)
    return psi, psi_x, psi_y, w


@pytest.mark.parametrize("shape, lengths", [((24, 32), (2.0, 3.0)), ((16, 16), (1.0, 1.0))])
def test_velocity_from_vorticity_against_analytic_stream_function(shape, lengths):
    """u = psi_y, v = -psi_x for w = -lap psi; a trigonometric field below Nyquist: round-off."""
    grid = Grid((0.0, 0.0), lengths, shape, periodic=True)
    X, Y = mesh(grid)
    _, psi_x, psi_y, w = stream(X, Y, *lengths)
    batch = torch.stack([w, -2 * w + 5.0])  # a batch; the constant (mean vorticity) is dropped
    u, v = spectral.velocity_from_vorticity(batch, lengths)
    scale = float(psi_y.abs().max())
    assert u.shape == v.shape == batch.shape
    # float64 round-off of FFTs on <= 32^2 grids: measured <= 4.6e-15 relative; bound 1e-13
    for got, want in ((u[0], psi_y), (v[0], -psi_x), (u[1], -2 * psi_y), (v[1], 2 * psi_x)):
        assert float((got - want).abs().max()) <= 1e-13 * scale


def test_velocity_multipliers_on_a_mode_table():
    """The same multipliers, on a table of modes (as Kolmogorov's mode sums use them)."""
    k = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, -3.0], [1.0, 2.0]], dtype=torch.float64)
    mu, mv = spectral.velocity_multipliers(k[:, 0], k[:, 1])
    k2 = (k**2).sum(1)
    # psi_hat = w_hat / |k|^2; u = psi_y -> i ky, v = -psi_x -> -i kx; the mean maps to 0
    assert mu[0] == 0 and mv[0] == 0
    torch.testing.assert_close(mu[1:], 1j * k[1:, 1] / k2[1:], rtol=0, atol=1e-16)
    torch.testing.assert_close(mv[1:], -1j * k[1:, 0] / k2[1:], rtol=0, atol=1e-16)


def test_velocity_agrees_with_stream_function_derivatives_on_random_field():
    """Independent path: psi = -inverse_laplacian(w), then core derivatives (with their Nyquist
    rule) -- the old implementation; on a random field including Nyquist modes."""
    n, lengths = 20, (1.0, 2.0)
    w = torch.as_tensor(np.random.default_rng(0).standard_normal((2, n, n)))
    u, v = spectral.velocity_from_vorticity(w, lengths)
    psi = -spectral.inverse_laplacian(w, lengths)
    ref_u = spectral.derivative(psi, [0, 1], lengths)
    ref_v = -spectral.derivative(psi, [1, 0], lengths)
    scale = float(ref_u.abs().max())
    # measured 2.0e-15 relative
    assert float((u - ref_u).abs().max()) <= 1e-13 * scale
    assert float((v - ref_v).abs().max()) <= 1e-13 * scale
    # and the velocity is divergence-free with curl w - mean(w)
    div = spectral.derivative(u, [1, 0], lengths) + spectral.derivative(v, [0, 1], lengths)
    curl = spectral.curl([u, v], lengths)
    assert float(div.abs().max()) <= 1e-13 * float(w.abs().max())  # measured 2.3e-16 rel.
    # the curl misses w's mean and its unmatched Nyquist modes (odd derivatives zero them)
    mask = spectral.dealias_mask((n, n))
    w_kept = torch.fft.irfft2(torch.fft.rfft2(w) * mask, s=(n, n))
    curl_kept = torch.fft.irfft2(torch.fft.rfft2(curl) * mask, s=(n, n))
    want = w_kept - w_kept.mean(dim=(-2, -1), keepdim=True)
    assert float((curl_kept - want).abs().max()) <= 1e-13 * float(w.abs().max())  # 3.4e-16


def test_kolmogorov_complete_and_its_initial_condition_share_the_velocity():
    """complete() on grid samples of the initial vorticity vs the mode sums of
    initial_condition(): two uses of the one multiplier function, FFT vs direct sums."""
    p = get("navier_stokes/kolmogorov", seed=4)
    grid = p.grid(96)  # > 2 K = 64: every mode of the field is held
    w = torch.as_tensor(kol.initial_vorticity(p.seed, 96))
    fields = p.complete({"w": w[None, None]}, grid)  # batch dims (1, 1)
    assert set(fields) == {"u", "v", "w"} and fields["u"].shape == (1, 1, 96, 96)
    X, Y = mesh(grid)
    pts = torch.stack([X.ravel(), Y.ravel()], dim=1)
    ic = p.initial_condition(pts)
    for k in ("u", "v", "w"):
        got = fields[k][0, 0].ravel()
        # measured 5e-17 (u, v; max |u| 0.03) and 7e-16 (w; max |w| 0.5) absolute
        assert float((got - ic[k]).abs().max()) < 1e-13, k


@pytest.mark.parametrize("n", [8, 32])
def test_taylor_green_complete_gives_the_exact_pressure(n):
    tg = get("navier_stokes/taylor_green", nu=0.3)
    grid = tg.grid(n)
    X, Y = mesh(grid)
    t = torch.tensor([0.0, 0.7], dtype=torch.float64)[:, None, None]
    F = torch.exp(-2 * tg.nu * t)
    u, v = torch.cos(X) * torch.sin(Y) * F, -torch.sin(X) * torch.cos(Y) * F
    p = tg.complete({"u": u, "v": v}, grid)["p"]
    exact = -0.25 * (torch.cos(2 * X) + torch.cos(2 * Y)) * F**2
    # exact pressure has zero mean, as complete's; a mode-2 field: round-off (measured 4.4e-16)
    assert float((p - exact).abs().max()) < 1e-14


def test_pressure_is_the_exact_pressure_on_the_kept_modes():
    """For a random resolved divergence-free velocity: the direct formula
    lap p = -(u_x^2 + 2 u_y v_x + v_y^2) on a grid twice as fine (no aliasing there), projected
    onto the modes |m| < n/3, equals pressure() on the n-grid."""
    n, L = 24, (2 * math.pi, 2 * math.pi)
    rng = np.random.default_rng(5)
    coarse = Grid((0.0, 0.0), L, n, periodic=True)
    mask = sns.symbols(coarse).dealias
    w_hat = mask * torch.as_tensor(
        rng.standard_normal((n, n // 2 + 1)) + 1j * rng.standard_normal((n, n // 2 + 1))
    )
    w = torch.fft.irfft2(w_hat, s=(n, n))
    u, v = spectral.velocity_from_vorticity(w, L)
    p = sns.pressure(u, v, coarse)
    # the same velocity on the 2n grid: zero-pad its spectrum (exact interpolation)
    rows = np.r_[0 : n // 2, 2 * n - n // 2 : 2 * n]
    fine = []
    for f in (u, v):
        hat = torch.zeros((2 * n, n + 1), dtype=torch.complex128)
        hat[rows, : n // 2 + 1] = torch.fft.rfft2(f) * 4
        fine.append(torch.fft.irfft2(hat, s=(2 * n, 2 * n)))
    fu, fv = fine
    d = spectral.derivative
    rhs = -(d(fu, [1, 0], L) ** 2 + 2 * d(fu, [0, 1], L) * d(fv, [1, 0], L) + d(fv, [0, 1], L) ** 2)
    p_fine = spectral.inverse_laplacian(rhs, L)
    j = torch.fft.fftfreq(2 * n, 1 / (2 * n)).abs()
    jr = torch.fft.rfftfreq(2 * n, 1 / (2 * n))
    keep = ((3 * j[:, None] < n) & (3 * jr[None, :] < n)).to(torch.float64)
    p_kept = torch.fft.irfft2(torch.fft.rfft2(p_fine) * keep, s=(2 * n, 2 * n))[::2, ::2]
    # measured 9.6e-16 relative
    assert float((p - p_kept).abs().max()) <= 1e-12 * float(p.abs().max())
