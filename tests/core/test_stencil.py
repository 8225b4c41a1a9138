"""Oracles for the finite-difference engine: exactness on polynomials, measured order, MAC grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.core import StencilFields, UndeclaredDerivativeError
from pdekit.core.stencil import Boundary, axis_derivative
from pdekit.errors import ParameterError


@pytest.fixture(autouse=True)
def float64_default():
    """float64 oracles; restored afterwards so other modules keep torch's default."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


POS = {"cell": 0.5, "node": 0.0}


def samples(n: int, loc: str, length: float = 1.0, lo: float = 0.0, periodic: bool = False):
    count = n + 1 if (loc == "node" and not periodic) else n
    h = length / n
    return lo + (torch.arange(count) + POS[loc]) * h, h


def poly(c):
    """p, p', p'' of the polynomial with coefficients c (lowest first)."""
    p = np.polynomial.Polynomial(c)
    return p, p.deriv(1), p.deriv(2)


def ev(p, x):
    return torch.as_tensor(p(x.numpy()))


def bc_for(kind, p, dp, lo, hi):
    if kind == "dirichlet":
        return Boundary.dirichlet(float(p(lo)), float(p(hi)))
    if kind == "neumann":
        return Boundary.neumann(-float(dp(lo)), float(dp(hi)))
    return Boundary.free()


MOVES = [("cell", "cell"), ("node", "node"), ("node", "cell"), ("cell", "node")]


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("kind", ["free", "dirichlet", "neumann"])
@pytest.mark.parametrize(
    "k,source,target", [(k, s, t) for k in (0, 1, 2) for s, t in MOVES if k or s != t]
)
def test_exact_on_polynomials_of_the_stencil_degree(order, kind, k, source, target):
    # The order-p stencil of the k-th derivative is exact on degree p + k - 1 (ghost
    # extrapolation has degree p + 1 >= p + k - 1), at the boundary as in the interior.
    rng = np.random.default_rng(order * 10 + k)
    p, dp, _ = poly(rng.normal(size=order + k))  # degree p + k - 1
    lo, hi, n = -0.3, 0.9, 11
    x, h = samples(n, source, hi - lo, lo)
    y, _ = samples(n, target, hi - lo, lo)
    u = ev(p, x)
    got = axis_derivative(
        u, 0, k, h, order=order, boundary=bc_for(kind, p, dp, lo, hi), source=source, target=target
    )
    want = ev(p.deriv(k), y)
    # round-off of weights solved in float64 and scaled by 1/h^k, h = 0.11: 1e-10 relative
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-10 * want.abs().max())


@pytest.mark.parametrize("order", [2, 4])
def test_not_exact_one_degree_higher(order):
    # the exactness test above can fail: one degree more and the central stencil has an error
    x, h = samples(16, "cell", periodic=True)
    u = x ** (order + 1)
    got = axis_derivative(u, 0, 1, h, order=order, boundary="free")
    assert (got - (order + 1) * x**order).abs().max() > 1e-6


def fit_order(ns, errors):
    slope = np.polyfit(np.log(1.0 / np.asarray(ns)), np.log(errors), 1)[0]
    return slope


# smooth fields: (u, u_x, u_xx) on [0, 1]; the periodic one has period 1
SMOOTH = {
    "periodic": (
        lambda x: torch.sin(2 * math.pi * x) + 0.5 * torch.cos(4 * math.pi * x),
        lambda x: (
            2 * math.pi * torch.cos(2 * math.pi * x) - 2 * math.pi * torch.sin(4 * math.pi * x)
        ),
        lambda x: (
            -((2 * math.pi) ** 2) * torch.sin(2 * math.pi * x)
            - 8 * math.pi**2 * torch.cos(4 * math.pi * x)
        ),
    ),
    "bounded": (
        lambda x: torch.exp(x) * torch.sin(3 * x),
        lambda x: torch.exp(x) * (torch.sin(3 * x) + 3 * torch.cos(3 * x)),
        lambda x: torch.exp(x) * (-8 * torch.sin(3 * x) + 6 * torch.cos(3 * x)),
    ),
}

CONVERGENCE = [
    # (field, boundary kind, source, target), all at n = 64, 128, 256
    ("periodic", "periodic", "cell", "cell"),
    ("periodic", "periodic", "node", "cell"),
    ("periodic", "periodic", "cell", "node"),
    ("bounded", "dirichlet", "cell", "cell"),
    ("bounded", "neumann", "cell", "cell"),
    ("bounded", "free", "node", "node"),
    ("bounded", "dirichlet", "node", "cell"),
    ("bounded", "free", "cell", "node"),
]


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("case", CONVERGENCE, ids=lambda c: "-".join(c))
def test_measured_order_matches_declared(order, case):
    name, kind, source, target = case
    f = SMOOTH[name]
    periodic = kind == "periodic"
    ns = [64, 128, 256]
    for k in (0, 1, 2):
        if k == 0 and source == target:
            continue
        errs = []
        for n in ns:
            x, h = samples(n, source, periodic=periodic)
            y, _ = samples(n, target, periodic=periodic)
            if periodic:
                b = Boundary.make_periodic()
            elif kind == "dirichlet":
                b = Boundary.dirichlet(f[0](torch.tensor(0.0)), f[0](torch.tensor(1.0)))
            elif kind == "neumann":
                b = Boundary.neumann(-f[1](torch.tensor(0.0)), f[1](torch.tensor(1.0)))
            else:
                b = Boundary.free()
            got = axis_derivative(
                f[0](x), 0, k, h, order=order, boundary=b, source=source, target=target
            )
            err = (got - f[k](y)).abs()
            inner = (y > 0.25) & (y < 0.75)
            errs.append((err.max().item(), err[inner].max().item()))
        everywhere, interior = (
            fit_order(ns, [e[0] for e in errs]),
            fit_order(ns, [e[1] for e in errs]),
        )
        # declared order +- 0.3 (the band for a log-log fit over h, h/2, h/4) away from
        # the boundary; the one-sided boundary closures have error O(h^(order+1)) or better
        # (degree order+1 ghosts), which may dominate the maximum in this range of h, so the
        # maximum over all samples must converge at least at the declared order.
        assert abs(interior - order) <= 0.3, (k, errs, interior)
        assert everywhere >= order - 0.3, (k, errs, everywhere)
        if periodic:
            assert abs(everywhere - order) <= 0.3, (k, errs, everywhere)


@pytest.mark.parametrize("order", [2, 4])
def test_stencil_fields_2d_order_with_mixed_derivative(order):
    # u = exp(x) sin(3 y) on [0, 1] x [0, 1) periodic in y, Dirichlet in x (from u)
    def exact(x, y):
        e, s, c = torch.exp(x), torch.sin(2 * math.pi * y), torch.cos(2 * math.pi * y)
        w = 2 * math.pi
        return {"": e * s, "x": e * s, "y": w * e * c, "xx": e * s, "yy": -(w**2) * e * s,
                "xy": w * e * c}  # fmt: skip

    ns = [16, 32, 64]
    errs = {k: [] for k in ("x", "y", "xx", "yy", "xy")}
    for n in ns:
        x, h = samples(n, "cell")
        y, _ = samples(n, "cell", periodic=True)
        X, Y = torch.meshgrid(x, y, indexing="ij")
        lo = exact(torch.zeros_like(y), y)[""]
        hi = exact(torch.ones_like(y), y)[""]
        f = StencilFields(
            {"u": exact(X, Y)[""]},
            ("x", "y"),
            h,
            order=order,
            boundary=[Boundary.dirichlet(lo, hi), "periodic"],
        )
        assert torch.equal(f.coord("x"), X) and torch.allclose(f.coord("y"), Y, atol=1e-15)
        want = exact(f.coord("x"), f.coord("y"))
        for k in errs:
            errs[k].append((f.d("u", k) - want[k]).abs().max().item())
    for k, e in errs.items():
        slope = fit_order(ns, e)
        assert abs(slope - order) <= 0.3, (k, e, slope)  # declared order +- 0.3


def test_mac_grid_divergence_and_gradient():
    # MAC grid: u on x-faces, v on y-faces, p at centres.  The discrete divergence of the
    # face values of a divergence-free field is O(h^2) at the centres; with u = sin x cos y,
    # v = -cos x sin y it converges at order 2.
    errs, ns = [], [16, 32, 64]
    for n in ns:
        xn, h = samples(n, "node", 2 * math.pi, periodic=True)
        xc, _ = samples(n, "cell", 2 * math.pi, periodic=True)
        U = torch.sin(xn)[:, None] * torch.cos(xc)[None, :]
        V = -torch.cos(xc)[:, None] * torch.sin(xn)[None, :]
        P = torch.cos(xc)[:, None] * torch.cos(xc)[None, :]
        f = StencilFields(
            {"u": U, "v": V, "p": P},
            ("x", "y"),
            h,
            location={"u": ("node", "cell"), "v": ("cell", "node"), "p": "cell"},
        )
        assert f.target == ["cell", "cell"] and f.shape == (n, n)
        div = f.d("u", "x") + f.d("v", "y")
        # the compact MAC divergence of face samples: exactly (u[i+1]-u[i])/h + (v[j+1]-v[j])/h
        compact = (torch.roll(U, -1, 0) - U) / h + (torch.roll(V, -1, 1) - V) / h
        assert torch.allclose(div, compact, atol=1e-12)
        X, Y = f.coord("x"), f.coord("y")
        errs.append((f.d("p", "x") + torch.sin(X) * torch.cos(Y)).abs().max().item())
        assert div.abs().max() < 1e-12  # this field's compact divergence vanishes identically
    assert abs(fit_order(ns, errs) - 2) <= 0.3


def test_lid_driven_cavity_boundaries_per_field():
    # u = y^2 (x-faces, Dirichlet lid u = 1 at y = 1), p = x^3 with Neumann in x: an order-4
    # stencil is exact on both (degree <= 4 for first, <= 5 for second derivatives)
    n = 8
    xn, h = samples(n, "node")
    xc, _ = samples(n, "cell")
    U = (xn[:, None] * 0 + xc[None, :] ** 2).clone()
    P = xc[:, None] ** 3 + 0 * xc[None, :]
    f = StencilFields(
        {"u": U, "p": P},
        ("x", "y"),
        h,
        location={"u": ("node", "cell"), "p": "cell"},
        boundary={
            "u": ["free", Boundary.dirichlet(0.0, 1.0)],
            "p": [Boundary.neumann(0.0, 3.0), "free"],
        },
        target="cell",
        order=4,
    )
    Y, X = f.coord("y"), f.coord("x")
    assert torch.allclose(f.d("u", "yy"), torch.full_like(Y, 2.0), atol=1e-10)
    assert torch.allclose(f.d("u", "y"), 2 * Y, atol=1e-10)
    assert torch.allclose(f.d("p", "x"), 3 * X**2, atol=1e-10)
    assert torch.allclose(f["u"], Y**2, atol=1e-12)


def test_batched_equals_one_at_a_time_and_is_differentiable():
    rng = torch.Generator().manual_seed(0)
    U = torch.randn(3, 10, 12, generator=rng, requires_grad=True)
    kw = {"order": 4, "boundary": [Boundary.dirichlet(0.3, -0.2), "periodic"]}
    batched = StencilFields({"u": U}, ("x", "y"), [0.1, 0.2], **kw)
    for i in range(3):
        single = StencilFields({"u": U[i]}, ("x", "y"), [0.1, 0.2], **kw)
        for k in ("x", "yy", "xy"):
            assert torch.allclose(batched.d("u", k)[i], single.d("u", k), atol=1e-12)
    small = torch.randn(6, 7, generator=rng, requires_grad=True)

    def op(v):
        return StencilFields({"u": v}, ("x", "y"), 0.5, boundary="neumann", order=4).d("u", "xy")

    assert torch.autograd.gradcheck(op, (small,))


def test_declared_derivatives_and_bad_input():
    u = torch.zeros(8, 8)
    f = StencilFields({"u": u}, ("x", "y"), 0.1, declared={"u": ("x", "yy")})
    f.d("u", "yy")
    with pytest.raises(UndeclaredDerivativeError, match="xy"):
        f.d("u", "xy")
    with pytest.raises(ParameterError, match="order"):
        StencilFields({"u": u}, ("x", "y"), 0.1, order=3)
    with pytest.raises(ParameterError, match="boundary"):
        StencilFields({"u": u}, ("x", "y"), 0.1, boundary="wall")
    with pytest.raises(ParameterError, match="does not fit"):
        StencilFields({"u": u, "v": torch.zeros(8, 9)}, ("x", "y"), 0.1)
    with pytest.raises(ParameterError, match="too short"):
        axis_derivative(torch.zeros(3), 0, 2, 0.1, order=4, boundary="free")
