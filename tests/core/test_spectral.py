"""Oracles for the Fourier engine: trigonometric fields to round-off, potentials, dealiasing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.core import SpectralFields
from pdekit.core import spectral as sp


@pytest.fixture(autouse=True)
def float64_default():
    """float64 oracles; restored afterwards so other modules keep torch's default."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def grid(ns, lengths):
    axes = [torch.arange(n) * (length / n) for n, length in zip(ns, lengths)]
    return torch.meshgrid(*axes, indexing="ij")


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


L2 = (2 * math.pi, 4 * math.pi)  # non-square box: wavenumbers of y are half-integers


def trig(X, Y):
    """u = sin(3x) cos(2.5y) + cos(5x) and its derivatives."""
    s3, c3, s5, c5 = torch.sin(3 * X), torch.cos(3 * X), torch.sin(5 * X), torch.cos(5 * X)
    sy, cy = torch.sin(2.5 * Y), torch.cos(2.5 * Y)
    return {
        "": s3 * cy + c5,
        "x": 3 * c3 * cy - 5 * s5,
        "y": -2.5 * s3 * sy,
        "xx": -9 * s3 * cy - 25 * c5,
        "yy": -6.25 * s3 * cy,
        "xy": -7.5 * c3 * sy,
    }


@pytest.mark.parametrize("ns", [(32, 40), (33, 27)])  # even and odd lengths
def test_trigonometric_derivatives_to_roundoff(ns):
    X, Y = grid(ns, L2)
    u = trig(X, Y)
    f = SpectralFields({"u": u[""]}, ("x", "y"), [L2[0] / ns[0], L2[1] / ns[1]])
    for k in ("x", "y", "xx", "yy", "xy"):
        assert rel(f.d("u", k), u[k]) <= 1e-12, k  # the bar for trig fields
    lap = sp.laplacian(u[""], L2)
    assert rel(lap, u["xx"] + u["yy"]) <= 1e-12
    gx, gy = sp.gradient(u[""], L2)
    assert rel(gx, u["x"]) <= 1e-12 and rel(gy, u["y"]) <= 1e-12


def test_nyquist_mode_dropped_from_odd_derivatives_only():
    # cos(n/2 x) on n samples is the Nyquist mode: indistinguishable from a sine of opposite
    # sign, its first derivative is not defined on the grid (set to 0), its second is exact.
    n = 16
    x = torch.arange(n) * (2 * math.pi / n)
    u = torch.cos(8 * x)
    assert sp.derivative(u, [1], [2 * math.pi]).abs().max() < 1e-12
    assert rel(sp.derivative(u, [2], [2 * math.pi]), -64 * u) < 1e-12


def test_inverse_laplacian_and_batch():
    X, Y = grid((24, 30), L2)
    u = trig(X, Y)[""]
    batch = torch.stack([u, 2 * u + 3.0])  # constant shifts the mean: discarded by the inverse
    phi = sp.inverse_laplacian(sp.laplacian(batch, L2), L2)
    want = batch - batch.mean(dim=(-2, -1), keepdim=True)
    assert rel(phi, want) <= 1e-12


def test_velocity_from_vorticity_taylor_green_2d():
    X, Y = grid((32, 32), (2 * math.pi, 2 * math.pi))
    u, v = torch.sin(X) * torch.cos(Y), -torch.cos(X) * torch.sin(Y)
    omega = sp.curl([u, v], (2 * math.pi, 2 * math.pi))
    assert rel(omega, 2 * torch.sin(X) * torch.sin(Y)) <= 1e-12
    uu, vv = sp.velocity_from_vorticity(omega, (2 * math.pi, 2 * math.pi))
    assert rel(uu, u) <= 1e-12 and rel(vv, v) <= 1e-12


def test_velocity_from_vorticity_abc_flow_3d():
    # Arnold-Beltrami-Childress flow is a curl eigenfield: curl u = u, so omega = u.
    n, two_pi = 16, 2 * math.pi
    axes = [torch.arange(n) * (two_pi / n)] * 3
    X, Y, Z = torch.meshgrid(*axes, indexing="ij")
    a, b, c = 1.0, 0.7, 0.4
    u = [
        a * torch.sin(Z) + c * torch.cos(Y),
        b * torch.sin(X) + a * torch.cos(Z),
        c * torch.sin(Y) + b * torch.cos(X),
    ]
    lengths = (two_pi,) * 3
    omega = sp.curl(u, lengths)
    for w, ui in zip(omega, u):
        assert rel(w, ui) <= 1e-12
    for w, ui in zip(sp.velocity_from_vorticity(u, lengths), u):
        assert rel(w, ui) <= 1e-12


@pytest.mark.parametrize("n", [48, 50])
def test_dealias_zeroes_the_top_third_of_modes(n):
    x = torch.arange(n) * (2 * math.pi / n)
    for j in range(n // 2 + 1):
        out = sp.dealias(torch.cos(j * x), 1)
        if 3 * j < n:
            assert (out - torch.cos(j * x)).abs().max() < 1e-12, j
        else:
            assert out.abs().max() < 1e-12, j
    kept = int(sp.dealias_mask([n, n]).sum().item())
    m = sum(1 for j in np.fft.fftfreq(n, 1 / n) if 3 * abs(j) < n)
    mr = sum(1 for j in np.fft.rfftfreq(n, 1 / n) if 3 * abs(j) < n)
    assert kept == m * mr


def test_dealiased_product_has_no_aliasing_on_kept_modes():
    # Two random fields with modes up to 23 on n = 48 samples.  Oracle: the exact product of
    # their filtered parts (modes < n/3), computed on a 2n grid where nothing aliases, on the
    # kept modes.  The 2/3-rule product agrees to round-off and is zero on the top third; the
    # naive product of the unfiltered fields is aliased on the kept modes.
    n = 48
    rng = np.random.default_rng(3)
    coeffs = rng.normal(size=(2, 24, 2))

    def field(c, m, jmax):
        x = torch.arange(m) * (2 * math.pi / m)
        return sum(c[j, 0] * torch.cos(j * x) + c[j, 1] * torch.sin(j * x) for j in range(jmax))

    a, b = field(coeffs[0], n, 24), field(coeffs[1], n, 24)
    a2, b2 = field(coeffs[0], 2 * n, 16), field(coeffs[1], 2 * n, 16)  # filtered: 3 j < 48
    exact = torch.fft.rfft(a2 * b2)[: n // 2 + 1] / 2  # same normalisation as an n-point rfft
    mask = sp.dealias_mask([n])
    got = torch.fft.rfft(sp.dealiased_product(a, b, 1))
    assert (got - exact * mask).abs().max() < 1e-10
    full = torch.fft.rfft(field(coeffs[0], 2 * n, 24) * field(coeffs[1], 2 * n, 24))
    naive = torch.fft.rfft(a * b) * mask
    assert (naive - full[: n // 2 + 1] / 2 * mask).abs().max() > 1e-1  # aliasing without it


def test_spectral_fields_with_a_stencil_time_axis():
    # u = sin(x - t) on x periodic, t in [0, 1] with ends: u_x spectral, u_t by order-4 stencil
    nx, nt = 32, 41
    x = torch.arange(nx) * (2 * math.pi / nx)
    t = torch.linspace(0, 1, nt)
    X, T = torch.meshgrid(x, t, indexing="ij")
    f = SpectralFields(
        {"u": torch.sin(X - T)},
        ("x", "t"),
        [2 * math.pi / nx, 1 / (nt - 1)],
        periodic=[True, False],
    )
    assert rel(f.d("u", "x"), torch.cos(X - T)) <= 1e-12
    # order-4 one-sided ends on h = 1/40: error ~ C h^4 with C of the 5th derivative (= 1)
    assert (f.d("u", "t") + torch.cos(X - T)).abs().max() < 1e-5
    assert (f.d("u", "xt") - torch.sin(X - T)).abs().max() < 1e-5
    assert torch.allclose(f.coord("t"), T, atol=1e-15)
