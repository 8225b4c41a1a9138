"""AutogradFields against closed-form derivatives; the declared-derivative contract."""

import math

import pytest
import torch

from pdekit.core import AutogradFields, UndeclaredDerivativeError, parse_spec


def _fields(declared=None):
    pts = torch.tensor([[0.3, 0.7], [1.1, -0.4], [2.0, 0.25]], dtype=torch.float64)
    pts.requires_grad_(True)
    x, t = pts[:, 0], pts[:, 1]
    u = torch.sin(2 * x) * t**3  # u_x = 2 cos 2x t^3, u_xx = -4 sin 2x t^3, u_xt = 6 cos 2x t^2
    return AutogradFields(pts, {"u": u}, ("x", "t"), declared), x.detach(), t.detach()


def test_derivatives_match_closed_form():
    f, x, t = _fields()
    exact = {
        "x": 2 * torch.cos(2 * x) * t**3,
        "t": 3 * torch.sin(2 * x) * t**2,
        "xx": -4 * torch.sin(2 * x) * t**3,
        "xt": 6 * torch.cos(2 * x) * t**2,
        "tt": 6 * torch.sin(2 * x) * t,
    }
    for spec, want in exact.items():
        assert torch.allclose(f.d("u", spec), want, rtol=1e-13, atol=1e-13), spec


def test_mixed_spec_is_canonical_and_cached():
    f, _, _ = _fields()
    assert parse_spec("tx", ("x", "t")) == parse_spec("xt", ("x", "t")) == (0, 1)
    assert f.d("u", "xt") is f.d("u", "tx")
    assert f.d("u", ("t", "x")) is f.d("u", "xt")


def test_undeclared_derivative_names_it():
    f, _, _ = _fields({"u": ("x", "xx")})
    f.d("u", "xx")
    with pytest.raises(UndeclaredDerivativeError, match=r"du/dt.*declared derivatives of 'u'"):
        f.d("u", "t")


def test_bad_specs_and_fields():
    f, _, _ = _fields()
    with pytest.raises(ValueError, match="coordinate 'z'"):
        f.d("u", "z")
    with pytest.raises(KeyError, match="unknown field 'v'"):
        f["v"]
    with pytest.raises(ValueError, match="requires_grad"):
        AutogradFields(torch.zeros(3, 2), {"u": torch.zeros(3)}, ("x", "t"))


def test_gradient_flows_to_parameters():
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    pts = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None].requires_grad_(True)
    f = AutogradFields(pts, {"u": torch.sin(w * pts[:, 0])}, ("x",))
    loss = f.d("u", "xx").sum()  # d2/dx2 sin(wx) = -w^2 sin(wx)
    (g,) = torch.autograd.grad(loss, w)
    x = pts.detach()[:, 0]
    want = (-2 * w * torch.sin(w * x) - w**2 * x * torch.cos(w * x)).sum()
    assert math.isclose(float(g), float(want), rel_tol=1e-12)


def test_laplacian_is_the_spatial_sum_of_pure_second_derivatives():
    # in (x, y, t): the Laplacian leaves t out; u = sin x cos 2y e^t, lap u = -5 u
    pts = torch.tensor([[0.3, 0.7, 0.1], [1.1, -0.4, 0.9]], dtype=torch.float64)
    pts.requires_grad_(True)
    x, y, t = pts.unbind(1)
    u = torch.sin(x) * torch.cos(2 * y) * torch.exp(t)
    f = AutogradFields(pts, {"u": u}, ("x", "y", "t"), {"u": ("t", "laplacian")})
    assert torch.allclose(f.laplacian("u"), -5 * u, rtol=1e-13, atol=1e-13)
    assert f.laplacian("u") is f.d("u", "laplacian")  # one request, cached
    with pytest.raises(UndeclaredDerivativeError, match="du/dxx"):
        f.d("u", "xx")  # declared only inside the sum
    with pytest.raises(ValueError, match="spatial coordinate"):
        parse_spec("laplacian", ("t",))
