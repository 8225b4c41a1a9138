"""Oracles for ``sobolev_norm``: known Fourier coefficients, quadrature, the Laplacian identity."""

from __future__ import annotations

import math

import pytest
import torch

from pdekit.core import spectral as sp
from pdekit.errors import ParameterError


def grid(ns, lengths, dtype=torch.float64):
    axes = [torch.arange(n, dtype=dtype) * (length / n) for n, length in zip(ns, lengths)]
    return torch.meshgrid(*axes, indexing="ij")


def trig_field(ns, lengths, const, modes):
    """const + sum_m a_m cos(xi_m . x) + b_m sin(xi_m . x), modes = [(j, a, b)], j integer."""
    X = grid(ns, lengths)
    u = torch.full(X[0].shape, float(const), dtype=torch.float64)
    for j, a, b in modes:
        phase = sum(2 * math.pi * jj / length * x for jj, length, x in zip(j, lengths, X))
        u = u + a * torch.cos(phase) + b * torch.sin(phase)
    return u


def direct_norm(lengths, const, modes, s, alpha):
    """sqrt(V sum_k w_k |c_k|^2): c_0 = const; a cos + b sin has |c_(+-k)|^2 = (a^2+b^2)/4."""
    volume = math.prod(lengths)
    total = alpha**s * const**2
    for j, a, b in modes:
        xi2 = sum((2 * math.pi * jj / length) ** 2 for jj, length in zip(j, lengths))
        total += (alpha + xi2) ** s * 2 * (a * a + b * b) / 4
    return math.sqrt(volume * total)


# Distinct modes, none the conjugate of another, all strictly below the Nyquist frequency of the
# smallest grid used with them (n = 7 in 1D, (6, 7) in 2D).
MODES_1D = [((1,), 0.7, -0.3), ((2,), 0.0, 1.1), ((3,), -0.4, 0.25)]
MODES_2D = [((1, 0), 0.5, 0.2), ((0, 2), -0.3, 0.0), ((1, -2), 0.0, 0.8), ((2, 3), 0.6, -0.1)]
CASES = [  # (grid, box): even and odd n, non-square boxes
    ((8,), (2.5,)),
    ((7,), (1.0,)),
    ((8, 10), (2.0, 3.0)),
    ((7, 9), (1.0, 4.5)),
    ((6, 7), (math.pi, 1.0)),
]


@pytest.mark.parametrize("s", [-1.0, 0.0, 1.0, 0.5])
@pytest.mark.parametrize("ns,lengths", CASES)
def test_equals_direct_sum_over_known_coefficients(ns, lengths, s):
    modes = MODES_1D if len(ns) == 1 else MODES_2D
    u = trig_field(ns, lengths, 0.9, modes)
    alpha = 0.7
    got = sp.sobolev_norm(u, s, lengths, alpha=alpha).item()
    want = direct_norm(lengths, 0.9, modes, s, alpha)
    assert got == pytest.approx(want, rel=1e-12)  # float64 trig field: round-off


@pytest.mark.parametrize("ns,lengths", CASES)
def test_l2_norm_by_quadrature_at_s_zero(ns, lengths):
    """Discrete Parseval: at s = 0 the norm is the rectangle rule (V/N sum r_i^2)^(1/2) exactly,
    for any grid values (random ones here, Nyquist content included)."""
    u = torch.randn(*ns, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    quad = math.sqrt(math.prod(lengths) / u.numel() * (u**2).sum().item())
    for alpha in (0.0, 1.0, 3.0):  # the weight is 1 whatever alpha
        assert sp.sobolev_norm(u, 0, lengths, alpha=alpha).item() == pytest.approx(quad, rel=1e-13)


def test_nyquist_mode_counted_once():
    """The alternating grid field (-1)^i is the single Nyquist mode, coefficient 1."""
    n, length = 8, 2.0
    u = torch.tensor([(-1.0) ** i for i in range(n)], dtype=torch.float64)
    xi2 = (math.pi * n / length) ** 2
    got = sp.sobolev_norm(u, -1, [length], alpha=0.5).item()
    assert got == pytest.approx(math.sqrt(length / (0.5 + xi2)), rel=1e-13)


@pytest.mark.parametrize("ns,lengths", [((16,), (2.0,)), ((12, 15), (1.0, 2.5)), ((9, 8), (3, 1))])
def test_h_minus_one_of_laplacian_equals_h1_seminorm(ns, lengths):
    """Identity tested: with weight (alpha + |xi|^2)^s and alpha = 0,
    ||lap u||_{H^-1} = (sum |xi|^-2 |xi|^4 |u_hat|^2)^(1/2) = ||u||_{H^1} (= ||grad u||_{L2}).

    lap u has zero mean; with alpha = 0, s = -1 its mean mode is left out, so the identity holds
    to round-off for any grid field. The last member is checked on a field below the Nyquist
    frequency, where the spectral gradient is exact."""
    g = torch.Generator().manual_seed(1)
    u = torch.randn(3, *ns, dtype=torch.float64, generator=g)
    lap = sp.laplacian(u, lengths)
    lhs = sp.sobolev_norm(lap, -1, lengths, alpha=0.0)
    rhs = sp.sobolev_norm(u, 1, lengths, alpha=0.0)
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=0)
    smooth = sp.dealias(u, len(ns))  # no Nyquist content: gradient() is exact
    grads = sp.gradient(smooth, lengths)
    axes = tuple(range(1, 1 + len(ns)))
    cell = math.prod(lengths) / math.prod(ns)
    quad = torch.sqrt(cell * sum((gr**2).sum(dim=axes) for gr in grads))
    got = sp.sobolev_norm(smooth, 1, lengths, alpha=0.0)
    torch.testing.assert_close(got, quad, rtol=1e-12, atol=0)


def test_alpha_zero_negative_s_is_norm_of_fluctuation():
    g = torch.Generator().manual_seed(2)
    u = torch.randn(10, 12, dtype=torch.float64, generator=g) + 5.0
    lengths = (1.0, 2.0)
    got = sp.sobolev_norm(u, -1.5, lengths, alpha=0.0)
    want = sp.sobolev_norm(u - u.mean(), -1.5, lengths, alpha=0.0)
    assert torch.isfinite(got)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


def test_batch_dims():
    g = torch.Generator().manual_seed(3)
    u = torch.randn(2, 3, 8, 6, dtype=torch.float64, generator=g)
    lengths = (2.0, 1.5)
    got = sp.sobolev_norm(u, -1, lengths)
    assert got.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(got[i, j], sp.sobolev_norm(u[i, j], -1, lengths))
    assert sp.sobolev_norm(u[0, 0], -1, lengths).shape == ()
    # one grid axis: the last one; the leading three are batch
    assert sp.sobolev_norm(u, 1, (1.5,)).shape == (2, 3, 8)


@pytest.mark.parametrize("s", [-1.0, 0.0, 1.0])
def test_float32_matches_float64(s):
    u = trig_field((16, 12), (1.0, 2.0), 0.3, MODES_2D)
    n64 = sp.sobolev_norm(u, s, (1.0, 2.0))
    n32 = sp.sobolev_norm(u.float(), s, (1.0, 2.0))
    assert n32.dtype == torch.float32
    assert n32.item() == pytest.approx(n64.item(), rel=1e-5)  # float32 FFT round-off


@pytest.mark.parametrize("s", [-1.0, 1.0])
def test_gradcheck(s):
    u = torch.randn(2, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    u.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: sp.sobolev_norm(v, s, (1.0, 2.0), alpha=0.5), (u,))


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda u: sp.sobolev_norm(u, float("nan"), (1.0,)), "s"),
        (lambda u: sp.sobolev_norm(u, float("inf"), (1.0,)), "s"),
        (lambda u: sp.sobolev_norm(u, "1", (1.0,)), "s"),
        (lambda u: sp.sobolev_norm(u, 1, (1.0,), alpha=-1.0), "alpha"),
        (lambda u: sp.sobolev_norm(u, 1, (1.0,), alpha=float("nan")), "alpha"),
        (lambda u: sp.sobolev_norm(u, 1, (1.0, 1.0, 1.0)), "lengths"),
        (lambda u: sp.sobolev_norm(u, 1, ()), "lengths"),
        (lambda u: sp.sobolev_norm(u, 1, (1.0, -2.0)), "lengths"),
        (lambda u: sp.sobolev_norm(u.to(torch.int64), 1, (1.0,)), "r"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    u = torch.zeros(4, 6, dtype=torch.float64)
    with pytest.raises(ParameterError, match=rf"^{name} "):
        call(u)
