"""numba residual kernels against their torch twins (StencilFields), and against exact flows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.core import StencilFields
from pdekit.core.kernels import heat_residual, navier_stokes_residual, stencil_rows
from pdekit.core.stencil import fd_weights, stencil_offsets
from pdekit.errors import ParameterError

COORDS = ("x", "y", "z")


def twin(values, spacing, periodic, order):
    d = len(periodic)
    return StencilFields(
        {k: torch.as_tensor(v) for k, v in values.items()},
        COORDS[:d],
        list(spacing),
        order=order,
        location="node",
        boundary=["periodic" if p else "free" for p in periodic],
    )


def close(a, b, scale):
    # both sides sum the same products in a different order: round-off relative to the
    # magnitude of the terms (scale), 1e-12
    return np.abs(np.asarray(a) - np.asarray(b)).max() <= 1e-12 * scale


@pytest.mark.parametrize("order", [2, 4])
def test_stencil_rows_are_the_torch_operator(order):
    for k in (1, 2):
        center, left, right = stencil_rows(k, order)
        assert np.allclose(center, fd_weights(stencil_offsets(k, order, False), k), atol=1e-13)
        assert left.shape[0] == right.shape[0] == order // 2
        # one-sided rows mirror each other (sign (-1)^k)
        assert np.allclose(right[::-1, ::-1], (-1) ** k * left, atol=1e-12)


GRIDS = [
    # shape, periodic per axis
    ((24, 19), (True, False)),
    ((17, 22), (False, False)),
    ((9, 11, 10), (True, True, False)),
]


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("shape,periodic", GRIDS)
def test_heat_kernel_matches_torch_twin(order, shape, periodic):
    rng = np.random.default_rng(0)
    u, u_t = rng.normal(size=shape), rng.normal(size=shape)
    h = [0.1 + 0.05 * a for a in range(len(shape))]
    got = heat_residual(u, u_t, 0.7, h, periodic, order=order)
    f = twin({"u": u}, h, periodic, order)
    lap = sum(f.d("u", c + c) for c in COORDS[: len(shape)])
    want = torch.as_tensor(u_t) - 0.7 * lap
    assert close(got, want.numpy(), scale=10 * sum(1 / hh**2 for hh in h))


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("shape,periodic", GRIDS)
def test_navier_stokes_kernel_matches_torch_twin(order, shape, periodic):
    rng = np.random.default_rng(1)
    d = len(shape)
    names = ["u", "v", "w"][:d]
    vel = {n: rng.normal(size=shape) for n in names}
    vel_t = [rng.normal(size=shape) for _ in names]
    p = rng.normal(size=shape)
    h = [0.2 - 0.03 * a for a in range(d)]
    got = navier_stokes_residual(list(vel.values()), p, 0.05, h, periodic, vel_t, order=order)
    f = twin({**vel, "p": p}, h, periodic, order)
    coords = COORDS[:d]
    for c, name in enumerate(names):
        conv = sum(f[m] * f.d(name, coords[a]) for a, m in enumerate(names))
        lap = sum(f.d(name, x + x) for x in coords)
        want = torch.as_tensor(vel_t[c]) + conv + f.d("p", coords[c]) - 0.05 * lap
        assert close(got[c], want.numpy(), scale=100 * sum(1 / hh**2 for hh in h)), name
    div = sum(f.d(name, coords[a]) for a, name in enumerate(names))
    assert close(got[d], div.numpy(), scale=100 * sum(1 / hh for hh in h))


@pytest.mark.parametrize("order", [2, 4])
def test_taylor_green_residual_converges_at_declared_order(order):
    # The Taylor-Green vortex solves 2D Navier-Stokes exactly on the periodic box:
    # u = sin x cos y F, v = -cos x sin y F, p = (cos 2x + cos 2y) F^2 / 4, F = exp(-2 nu t).
    nu, t = 0.1, 0.3
    F = math.exp(-2 * nu * t)
    errs, ns = [], [16, 32, 64]
    for n in ns:
        x = np.arange(n) * 2 * math.pi / n
        X, Y = np.meshgrid(x, x, indexing="ij")
        u, v = np.sin(X) * np.cos(Y) * F, -np.cos(X) * np.sin(Y) * F
        p = (np.cos(2 * X) + np.cos(2 * Y)) * F**2 / 4
        res = navier_stokes_residual(
            [u, v], p, nu, 2 * math.pi / n, True, [-2 * nu * u, -2 * nu * v], order
        )
        errs.append(max(np.abs(r).max() for r in res))
    slope = np.polyfit(np.log(1 / np.array(ns)), np.log(errs), 1)[0]
    assert abs(slope - order) <= 0.3, (errs, slope)  # declared order +- 0.3


def test_heat_residual_of_exact_solution_on_bounded_3d_grid():
    # u = exp(-3 k t) sin x sin y sin z at t = 0, on [0, 1]^3 with one-sided closures: order 2
    k, errs, ns = 0.5, [], [8, 16, 32]
    for n in ns:
        x = np.linspace(0, 1, n + 1)
        X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
        u = np.sin(X) * np.sin(Y) * np.sin(Z)
        errs.append(np.abs(heat_residual(u, -3 * k * u, k, 1 / n, False)).max())
    slope = np.polyfit(np.log(1 / np.array(ns)), np.log(errs), 1)[0]
    assert slope >= 2 - 0.3, (errs, slope)  # at least the declared order up to the boundary


def test_kernel_input_errors():
    with pytest.raises(ParameterError, match="2D or 3D"):
        heat_residual(np.zeros(10), np.zeros(10), 1.0, 0.1)
    with pytest.raises(ParameterError, match="grid shape"):
        heat_residual(np.zeros((6, 6)), np.zeros((6, 5)), 1.0, 0.1)
    with pytest.raises(ParameterError, match="too short"):
        heat_residual(np.zeros((3, 8)), np.zeros((3, 8)), 1.0, 0.1, False, order=4)
    with pytest.raises(ParameterError, match="components"):
        navier_stokes_residual([np.zeros((6, 6))], np.zeros((6, 6)), 0.1, 0.1)


def test_out_and_stacked_velocity_give_the_same_numbers():
    """Writing into a caller's array and passing velocity as one (d, n, n) array change only
    where the numbers go, not the numbers."""
    rng = np.random.default_rng(5)
    a = [rng.standard_normal((24, 20)) for _ in range(5)]
    h = (0.1, 0.2)
    heat = heat_residual(a[0], a[1], 0.3, h, periodic=False, order=4)
    buf = np.full((24, 20), np.nan)
    assert heat_residual(a[0], a[1], 0.3, h, periodic=False, order=4, out=buf) is buf
    np.testing.assert_array_equal(buf, heat)
    ns = navier_stokes_residual(a[:2], a[2], 0.01, h, velocity_t=a[3:5])
    out = np.full((3, 24, 20), np.nan)
    got = navier_stokes_residual(
        np.stack(a[:2]), a[2], 0.01, h, velocity_t=np.stack(a[3:5]), out=out
    )
    for x, y in zip(ns, got):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(out, np.stack(ns))
    with pytest.raises(ParameterError, match="out must be"):
        heat_residual(a[0], a[1], 0.3, h, out=np.empty((24, 20), dtype=np.float32))
