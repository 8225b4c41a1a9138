"""The exact porous-medium solutions (pme, stefan, barenblatt): published constants, their own
residuals through the autograd engine, masses against independent quadrature, initial and
boundary data, and parameter validation."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from pdekit.core import AutogradFields
from pdekit.errors import ParameterError
from pdekit.problems import get


def exact_residual(problem, points):
    """Residuals of the problem's exact solution at points, through autograd, float64."""
    pts = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    f = AutogradFields(pts, problem.exact(pts), problem.coordinates, problem.derivatives)
    return {k: v.detach().numpy() for k, v in problem.residual(f).items()}


def grid_points(problem, n=41):
    return problem.evaluation_grid({c: n for c in problem.coordinates}).points()


# -- pme ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m, mass", [(1, 0.125), (3, 0.42927), (6, 0.51469)])
def test_pme_total_mass_matches_probconserv(m, mass):
    """U(0.5) as re-derived in the ProbConserv notes (paper test values m = 1, 3, 6), and the
    closed form against quadrature of the exact solution."""
    p = get("porous_medium/pme", m=m)
    assert p.total_mass(0.5) == pytest.approx(mass, abs=5e-6)
    for t in (0.1, 0.5, 0.9, 1.0):
        u = lambda x, t=t: p.exact(torch.tensor([[x, t]], dtype=torch.float64))["u"].item()  # noqa: E731
        assert quad(u, 0, 1, points=[t])[0] == pytest.approx(p.total_mass(t), rel=1e-8)


@pytest.mark.parametrize("m", [1.0, 2.5, 6.0])
def test_pme_exact_solves_its_equation(m):
    p = get("porous_medium/pme", m=m)
    pts = grid_points(p)
    off_front = np.abs(pts[:, 1] - pts[:, 0]) > 1e-3  # the front x = t is a weak singularity
    r = exact_residual(p, pts)["diffusion"]
    assert np.isfinite(r).all()
    assert np.abs(r[off_front]).max() < 1e-9
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.equal(p.initial_condition(x[:, None])["u"], torch.zeros(11, dtype=torch.float64))
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    left, right = p.boundary_conditions()
    on_left = torch.stack([0 * t, t], 1)
    on_right = torch.stack([1 + 0 * t, t], 1)
    torch.testing.assert_close(left.value(on_left)["u"], p.exact(on_left)["u"])
    torch.testing.assert_close(right.value(on_right)["u"], p.exact(on_right)["u"])
    torch.testing.assert_close(left.value(on_left)["u"], (m * t) ** (1 / m))


def test_pme_flux_is_the_conservation_form():
    """u_t + F_x = 0 with F = -u^m u_x: F_x from autograd equals -u_t where the solution is
    smooth; and the residual gradient is finite where u = 0 (the positive-power guard)."""
    p = get("porous_medium/pme", m=1.5)
    pts = torch.tensor([[0.2, 0.7], [0.5, 0.9], [0.8, 0.3]], dtype=torch.float64)
    pts.requires_grad_(True)
    f = AutogradFields(pts, p.exact(pts), p.coordinates, p.derivatives)
    (flux,) = p.flux(f)
    fx = torch.autograd.grad(flux.sum(), pts, create_graph=True)[0][:, 0]
    ut = f.d("u", "t")
    torch.testing.assert_close((ut + fx)[:2], torch.zeros(2, dtype=torch.float64))
    loss = p.residual(f)["diffusion"].pow(2).sum()
    (g,) = torch.autograd.grad(loss, pts)
    assert torch.isfinite(g).all()


def test_pme_parameter_range():
    for bad in (0.5, 7.0):
        with pytest.raises(ParameterError, match="'m'"):
            get("porous_medium/pme", m=bad)


# -- stefan ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "u_star, z, alpha, c1, front, mass",
    [
        # the ProbConserv notes' reference values (StefanPME), to their printed digits
        (0.6, 0.52567, 1.05134, 0.73697, 0.2351, 0.18595),
        (0.5, None, 1.24013, 0.80716, 0.2773, None),
    ],
)
def test_stefan_constants_match_probconserv(u_star, z, alpha, c1, front, mass):
    p = get("porous_medium/stefan", u_star=u_star)
    if z is not None:
        assert p.z == pytest.approx(z, abs=5e-6)
    assert p.alpha == pytest.approx(alpha, abs=5e-6)
    assert p.c1 == pytest.approx(c1, abs=5e-6)
    assert p.front(0.05) == pytest.approx(front, abs=5e-5)
    if mass is not None:
        assert p.total_mass(0.05) == pytest.approx(mass, abs=5e-6)
    # the transcendental equation itself, to round-off
    lhs = u_star * math.erf(p.z) * p.z * math.exp(p.z**2)
    assert lhs == pytest.approx((1 - u_star) / math.sqrt(math.pi), rel=1e-14)


@pytest.mark.parametrize("u_star", [0.05, 0.3, 0.6, 0.95])
def test_stefan_exact_solution(u_star):
    """Heat equation on the melted side, nothing on the other, u = u* at the front, u(0) = 1,
    the Stefan condition u* x'(t) = -u_x(front-) and the mass formula against quadrature."""
    p = get("porous_medium/stefan", u_star=u_star)
    pts = grid_points(p)
    pts = pts[pts[:, 1] > 0]
    near_front = np.abs(pts[:, 0] - p.front(pts[:, 1])) < 1e-3
    r = exact_residual(p, pts)["diffusion"]
    assert np.abs(r[~near_front]).max() < 1e-9
    t = 0.05
    xf = p.front(t)
    just_inside = torch.tensor([[xf * (1 - 1e-12), t]], dtype=torch.float64, requires_grad=True)
    u = p.exact(just_inside)["u"]
    assert u.item() == pytest.approx(u_star, abs=1e-9)
    (grad,) = torch.autograd.grad(u.sum(), just_inside)
    speed = p.alpha / (2 * math.sqrt(t))
    assert u_star * speed == pytest.approx(-grad[0, 0].item(), rel=1e-8)  # Stefan condition
    u_fn = lambda x: p.exact(torch.tensor([[x, t]], dtype=torch.float64))["u"].item()  # noqa: E731
    assert quad(u_fn, 0, 1, points=[xf])[0] == pytest.approx(p.total_mass(t), rel=1e-9)
    assert p.total_mass(t) == pytest.approx(2 * p.c1 * math.sqrt(t / math.pi), rel=1e-12)
    left, right = p.boundary_conditions()
    ts = torch.linspace(0.001, 0.1, 7, dtype=torch.float64)
    torch.testing.assert_close(
        left.value(torch.stack([0 * ts, ts], 1))["u"], torch.ones(7).double()
    )
    torch.testing.assert_close(
        right.value(torch.stack([1 + 0 * ts, ts], 1))["u"], torch.zeros(7).double()
    )


def test_stefan_parameter_range():
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ParameterError, match="u_star"):
            get("porous_medium/stefan", u_star=bad)


# -- barenblatt -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dim, m", [(1, 2.0), (1, 1.5), (1, 4.0), (2, 2.0), (2, 3.0)])
def test_barenblatt_exact_solution(dim, m):
    p = get("porous_medium/barenblatt", dim=dim, m=m)
    assert p.coordinates == (("x", "t") if dim == 1 else ("x", "y", "t"))
    pts = grid_points(p, 41 if dim == 1 else 17)
    r = exact_residual(p, pts)["diffusion"]
    radius = np.sqrt((pts[:, :dim] ** 2).sum(axis=1))
    off_edge = np.abs(radius - p.radius(pts[:, -1])) > 1e-3
    assert np.isfinite(r).all()
    assert np.abs(r[off_edge]).max() < 1e-9
    # the support stays inside the box [-2, 2]^d: the zero Dirichlet data are exact
    assert p.radius(1.0) < 2.0
    # constant mass, against quadrature at two times
    for t in (0.0, 1.0):
        if dim == 1:
            mass = quad(
                lambda x, t=t: p.profile(x * x, t), -2, 2, points=[-p.radius(t), p.radius(t)]
            )
        else:
            mass = quad(
                lambda r, t=t: 2 * math.pi * r * p.profile(r * r, t), 0, 2, points=[p.radius(t)]
            )
        assert mass[0] == pytest.approx(float(p.total_mass(t)), rel=1e-8)


def test_barenblatt_parameter_range():
    with pytest.raises(ParameterError, match="'m'"):
        get("porous_medium/barenblatt", m=1.0)
    with pytest.raises(ParameterError, match="dim"):
        get("porous_medium/barenblatt", dim=3)
