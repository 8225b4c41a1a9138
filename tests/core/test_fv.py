"""The finite-volume flux divergence: numba kernels against their torch twins, exactness on
polynomials where the scheme is exact, and conservation to round-off."""

import numpy as np
import pytest
import torch

from pdekit.core.fv import (
    flux_divergence_1d,
    flux_divergence_1d_torch,
    flux_divergence_2d,
    flux_divergence_2d_torch,
)

T = torch.as_tensor


def random_1d(rng, n):
    return rng.random(n), rng.random(n), rng.random(n + 1), rng.standard_normal(n + 1)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("upwind", [False, True])
def test_1d_numba_matches_torch(parallel, periodic, upwind):
    rng = np.random.default_rng(1)
    n = 37
    phi, u, d, a = random_1d(rng, n)
    args = dict(periodic=periodic, upwind=upwind)
    got = flux_divergence_1d(phi, u, d, a, 0.13, 0.4, -0.7, parallel=parallel, **args)
    want = flux_divergence_1d_torch(T(phi), T(u), T(d), T(a), 0.13, 0.4, -0.7, **args)
    # same arithmetic in another library: agreement to round-off of O(|F| / h) terms
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("periodic", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("upwind", [False, True])
def test_2d_numba_matches_torch(parallel, periodic, upwind):
    rng = np.random.default_rng(2)
    nx, ny = 9, 13
    phi, u = rng.random((nx, ny)), rng.random((nx, ny))
    d = (rng.random((nx + 1, ny)), rng.random((nx, ny + 1)))
    a = (rng.standard_normal((nx + 1, ny)), rng.standard_normal((nx, ny + 1)))
    fx = (rng.random(ny), rng.random(ny))
    fy = (rng.random(nx), 0.25)  # arrays or scalars
    h = (0.1, 0.07)
    args = dict(periodic=periodic, upwind=upwind)
    got = flux_divergence_2d(phi, u, d, a, h, fx, fy, parallel=parallel, **args)
    want = flux_divergence_2d_torch(
        T(phi),
        T(u),
        tuple(map(T, d)),
        tuple(map(T, a)),
        h,
        tuple(map(T, fx)),
        (T(fy[0]), 0.25),
        **args,
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-12)


def test_parallel_kernel_on_a_large_grid_matches_serial():
    """Above PARALLEL_MIN_CELLS the chunked parallel loops run; they must give the same bits."""
    rng = np.random.default_rng(3)
    n = 70_001  # several chunks and a ragged last one
    phi, u, d, a = random_1d(rng, n)
    serial = flux_divergence_1d(phi, u, d, a, 1e-3, 0.1, 0.2, parallel=False)
    par = flux_divergence_1d(phi, u, d, a, 1e-3, 0.1, 0.2, parallel=True)
    np.testing.assert_array_equal(serial, par)
    p2, u2 = rng.random((300, 250)), rng.random((300, 250))
    d2 = (rng.random((301, 250)), rng.random((300, 251)))
    a2 = (rng.standard_normal((301, 250)), rng.standard_normal((300, 251)))
    s2 = flux_divergence_2d(p2, u2, d2, a2, (0.1, 0.2), parallel=False)
    q2 = flux_divergence_2d(p2, u2, d2, a2, (0.1, 0.2), parallel=True)
    np.testing.assert_array_equal(s2, q2)


def test_torch_twin_batched_and_differentiable():
    rng = np.random.default_rng(4)
    n = 11
    phi = T(rng.random((3, n)), dtype=torch.float64).requires_grad_(True)
    u = T(rng.random((3, n)), dtype=torch.float64).requires_grad_(True)
    d, a = T(rng.random(n + 1)), T(rng.standard_normal(n + 1))
    batched = flux_divergence_1d_torch(phi, u, d, a, 0.1, periodic=True, upwind=False)
    for b in range(3):
        single = flux_divergence_1d_torch(phi[b], u[b], d, a, 0.1, periodic=True, upwind=False)
        torch.testing.assert_close(batched[b], single, rtol=0, atol=0)
    assert torch.autograd.gradcheck(
        lambda p, q: flux_divergence_1d_torch(p, q, d, a, 0.1, 0.3, 0.2, upwind=False), (phi, u)
    )


# -- exactness where the scheme is exact -----------------------------------------------------------
def test_central_diffusion_exact_on_cubics_and_convection_on_quadratics():
    """(phi_{i+1} - phi_i)/h = phi'(x_f) + phi''' h^2/24; (u_i + u_{i+1})/2 = u(x_f) + u'' h^2/8.

    For a cubic phi and a quadratic u both offsets are constants, which cancel in the divergence,
    so -div F = d phi'' - a u' exactly when the boundary faces carry the same discrete fluxes."""
    n, lo, hi = 17, -0.3, 1.4
    h = (hi - lo) / n
    x = lo + (np.arange(n) + 0.5) * h
    d, a = 0.7, -1.9
    phi = lambda x: 2 * x**3 - x**2 + 3 * x - 1  # noqa: E731
    dphi = lambda x: 6 * x**2 - 2 * x + 3  # noqa: E731
    u = lambda x: 1.5 * x**2 - 0.5 * x + 2  # noqa: E731
    flux = lambda xf: a * (u(xf) + 3.0 * h**2 / 8) - d * (dphi(xf) + 12 * h**2 / 24)  # noqa: E731
    got = flux_divergence_1d(phi(x), u(x), d, a, h, flux(lo), flux(hi), upwind=False)
    want = d * (12 * x - 2) - a * (3 * x - 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-11)


def test_upwind_convection_exact_on_linear_fields():
    n, h = 12, 0.25
    x = (np.arange(n) + 0.5) * h
    for a in (2.0, -3.0):
        u = 4.0 * x - 1.0
        face = lambda xf, a=a: a * (4.0 * xf - 1.0 - np.sign(a) * 4.0 * h / 2)  # noqa: E731
        got = flux_divergence_1d(0 * x, u, 0.0, a, h, face(0.0), face(n * h), upwind=True)
        np.testing.assert_allclose(got, -a * 4.0 * np.ones(n), rtol=1e-13)


def test_2d_exact_on_separable_quadratics():
    """phi = x^2 + 3 y^2 on a grid periodic in neither axis: -div(-grad phi) = 8 in every cell
    when the boundary faces carry the exact flux (the quadratic's offsets vanish)."""
    nx, ny, hx, hy = 6, 5, 0.3, 0.2
    xc = (np.arange(nx) + 0.5) * hx
    yc = (np.arange(ny) + 0.5) * hy
    X, Y = np.meshgrid(xc, yc, indexing="ij")
    phi = X**2 + 3 * Y**2
    fx = (-2 * 0.0 * np.ones(ny), -2 * nx * hx * np.ones(ny))
    fy = (-6 * 0.0 * np.ones(nx), -6 * ny * hy * np.ones(nx))
    got = flux_divergence_2d(phi, phi, (1.0, 1.0), (0.0, 0.0), (hx, hy), fx, fy)
    np.testing.assert_allclose(got, 8.0, rtol=1e-12)


# -- conservation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("upwind", [False, True])
def test_conservation_to_round_off(upwind):
    rng = np.random.default_rng(5)
    n, h = 64, 0.05
    phi, u, d, a = random_1d(rng, n)
    per = flux_divergence_1d(phi, u, d, a, h, periodic=True, upwind=upwind)
    assert abs(per.sum() * h) < 1e-13  # |F| ~ 1/h: sum of 64 O(20) terms cancels to ~1e-14
    div = flux_divergence_1d(phi, u, d, a, h, 0.3, -0.8, upwind=upwind)
    assert abs(div.sum() * h - (0.3 - (-0.8))) < 1e-13  # only the boundary fluxes remain
    p2, u2 = rng.random((20, 30)), rng.random((20, 30))
    d2 = (rng.random((21, 30)), rng.random((20, 31)))
    a2 = (rng.standard_normal((21, 30)), rng.standard_normal((20, 31)))
    div2 = flux_divergence_2d(p2, u2, d2, a2, (h, h), periodic=(True, True), upwind=upwind)
    assert abs(div2.sum() * h * h) < 1e-12


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        flux_divergence_1d(np.zeros(5), np.zeros(4), 1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="shape"):
        flux_divergence_1d(np.zeros(5), np.zeros(5), np.ones(5), 0.0, 0.1)
    with pytest.raises(ValueError, match="2D"):
        flux_divergence_2d(np.zeros(5), np.zeros(5), (1.0, 1.0), (0.0, 0.0), (0.1, 0.1))
