"""Dirichlet conditions built into the network (``pinn``'s ``exact_dirichlet``): the forms meet
the prescribed values, both engines of the core agree through them, the imposed conditions
leave the loss, and problems without forms are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pdekit
from pdekit.core import AutogradFields, TaylorFields
from pdekit.errors import ParameterError, UnknownNameError
from pdekit.problems.base import ExactDirichlet
from pdekit.problems.navier_stokes.cylinder_steady import CENTRE, HEIGHT, RADIUS
from pdekit.problems.registry import get
from pdekit.solvers.networks import ExactDirichletNetwork, NetworkConfig, build_mlp
from pdekit.solvers.physics import PhysicsLoss, SamplingConfig
from pdekit.solvers.pinn import PINNConfig

COORDS = ("x", "y", "t")
FIELDS = ("u", "v", "p")
BOUNDS = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 1.0]])
DECLARED = {"u": ("x", "y", "t", "xx", "yy", "xy"), "v": ("x", "y", "xx", "yy"), "p": ("x", "y")}


def toy_forms() -> ExactDirichlet:
    """Forms using every operation a form may use: numbers on either side, quotients, powers."""

    def lift_u(x, y, t):
        return (1.0 + x * y) / (2.0 + y**2) - 0.5 * t

    def distance_u(x, y, t):
        return 3.0 * x * (1.0 - x) / (1.0 + (y - 0.5) ** 2) * (2.0 - y)

    def lift_v(x, y, t):
        return 1.0 / (1.0 + x**3) + t * y

    return ExactDirichlet(
        tags=("left",), forms={"u": (lift_u, distance_u), "v": (lift_v, distance_u)}
    )


def wrapped(kind="mlp", seed=0):
    torch.manual_seed(seed)
    net = build_mlp(NetworkConfig(width=16, depth=3, kind=kind), BOUNDS, (False,) * 3, 3)
    return ExactDirichletNetwork(net.double(), toy_forms(), FIELDS)


@pytest.mark.parametrize("kind", ["mlp", "modified_mlp"])
def test_taylor_equals_autograd_through_the_forms(kind):
    model = wrapped(kind)
    rng = np.random.default_rng(1)
    pts = torch.tensor(BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * rng.random((64, 3)))
    taylor = TaylorFields(model, pts, COORDS, FIELDS, DECLARED)
    p = pts.clone().requires_grad_(True)
    out = model(p)
    auto = AutogradFields(p, {f: out[:, i] for i, f in enumerate(FIELDS)}, COORDS, DECLARED)
    for f, specs in DECLARED.items():
        assert torch.allclose(taylor[f], auto[f], rtol=1e-12, atol=1e-12)
        for s in specs:
            a, b = taylor.d(f, s).detach(), auto.d(f, s).detach()
            assert float((a - b).abs().max()) <= 1e-11 * max(1.0, float(b.abs().max())), (f, s)


def test_the_forms_give_the_value_where_the_distance_vanishes():
    model = wrapped()
    y = torch.linspace(0.0, 2.0, 9, dtype=torch.float64)[:, None]
    t = torch.full_like(y, 0.3)
    for x in (0.0, 1.0):  # distance_u = 0 on x = 0 and x = 1
        pts = torch.cat([torch.full_like(y, x), y, t], 1)
        out = model(pts)
        lift_u, _ = toy_forms().forms["u"]
        lift_v, _ = toy_forms().forms["v"]
        cols = pts[:, 0:1], pts[:, 1:2], pts[:, 2:3]
        assert torch.allclose(out[:, 0:1], lift_u(*cols), rtol=0, atol=1e-15)
        assert torch.allclose(out[:, 1:2], lift_v(*cols), rtol=0, atol=1e-15)
    # the pressure has no form: the network's output itself
    pts = torch.tensor([[0.3, 0.7, 0.1]], dtype=torch.float64)
    assert model(pts)[0, 2] == model.net(pts)[0, 2]


def test_a_jet_takes_numbers_not_tensors():
    """A tensor in a form would enter a jet as a constant, its derivatives lost: refused."""
    from pdekit.core.taylor import Jet

    jet = Jet.input(torch.rand(4, 2, dtype=torch.float64), (0, 1), ((0, 0),))
    x = jet.select([0])
    for bad in (lambda: x * torch.ones(4, 1), lambda: x + torch.ones(4, 1), lambda: x**0):
        with pytest.raises(ParameterError):
            bad()
    # numbers on either side: the value, first and second derivatives of 2 / (1 + x) - 3 x
    y = 2.0 / (1.0 + x) - 3 * x
    v = jet.data[0, :, 0]
    assert torch.allclose(y.parts()[0][:, 0], 2 / (1 + v) - 3 * v)
    assert torch.allclose(y.parts()[1][0, :, 0], -2 / (1 + v) ** 2 - 3)
    assert torch.allclose(y.parts()[2][0, :, 0], 4 / (1 + v) ** 3)


def test_a_form_of_an_unknown_field_is_refused():
    forms = ExactDirichlet(tags=("left",), forms={"w": toy_forms().forms["u"]})
    with pytest.raises(UnknownNameError, match="Dirichlet forms 'w'; valid: p, u, v"):
        ExactDirichletNetwork(torch.nn.Linear(3, 3), forms, FIELDS)


# -- the DFG channel ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cylinder():
    return get("navier_stokes/cylinder_steady")


def cylinder_model(problem, seed=0):
    torch.manual_seed(seed)
    dom = problem.domain()
    net = build_mlp(NetworkConfig(width=16, depth=2), dom.bounds, dom.periodic, 3).double()
    return ExactDirichletNetwork(net, problem.exact_dirichlet(), problem.fields)


@pytest.mark.parametrize("name", ["navier_stokes/cylinder_steady", "navier_stokes/cylinder"])
def test_the_channel_forms_meet_every_dirichlet_condition(name):
    """On the inlet and the walls (straight parts of the mesh) and on the true circle of the
    cylinder (the mesh's facets are chords of it), whatever the network: the values of the
    problem's own boundary conditions, to round-off (at random times for the unsteady flow)."""
    problem = get(name)
    model = cylinder_model(problem)
    rng = np.random.default_rng(0)
    space = getattr(problem.domain(), "space", problem.domain())
    bcs = {bc.tag: bc for bc in problem.boundary_conditions()}
    theta = rng.random(64) * 2 * np.pi
    circle = np.stack([CENTRE[0] + RADIUS * np.cos(theta), CENTRE[1] + RADIUS * np.sin(theta)], 1)
    parts = {
        "inlet": space.sample_boundary(64, "inlet", rng)[0],
        "walls": space.sample_boundary(64, "walls", rng)[0],
        "cylinder": circle,
    }

    def points(xy):
        if len(problem.coordinates) == 2:
            return torch.tensor(xy)
        return torch.tensor(np.hstack([xy, rng.random((len(xy), 1)) * 8.0]))

    for tag, xy in parts.items():
        pts = points(xy)
        out = model(pts)
        want = bcs[tag].value(pts)
        for i, f in enumerate(("u", "v")):
            assert torch.allclose(out[:, i], want[f].to(out.dtype), rtol=0, atol=1e-13), tag
    # and nowhere else: the distance is positive inside (the forms leave the flow free), and
    # of the flow's scale (at most the peak inflow)
    xy = space.sample_interior(2000, rng)
    x, y = (torch.tensor(c[:, None]) for c in xy.T)
    off_circle = (x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 > (1.01 * RADIUS) ** 2
    far = (x > 1e-6) & (y > 1e-6) & (y < HEIGHT - 1e-6) & off_circle
    _, distance = problem.exact_dirichlet().forms["u"]
    d = distance(*points(xy).T[:, :, None])
    peak = float(bcs["inlet"].value(points(parts["inlet"]))["u"].max())
    assert bool((d[far] > 0).all()) and float(d.max()) <= peak * 1.001


@pytest.mark.parametrize("name", ["navier_stokes/cylinder_steady", "navier_stokes/cylinder"])
def test_both_engines_agree_on_the_channel_forms(name):
    """The problem's own declared derivatives (a Laplacian slot among them) through the
    channel's forms: Taylor mode against nested autograd, at points of the domain."""
    problem = get(name)
    model = cylinder_model(problem)
    pts = torch.tensor(problem.domain().sample_interior(256, np.random.default_rng(3)))
    taylor = TaylorFields(model, pts, problem.coordinates, problem.fields, problem.derivatives)
    p = pts.clone().requires_grad_(True)
    out = model(p)
    values = {f: out[:, i] for i, f in enumerate(problem.fields)}
    auto = AutogradFields(p, values, problem.coordinates, problem.derivatives)
    residual_t, residual_a = problem.residual(taylor), problem.residual(auto)
    assert set(residual_t) == set(residual_a)
    for k in residual_t:
        a, b = residual_t[k].detach(), residual_a[k].detach()
        assert float((a - b).abs().max()) <= 1e-10 * max(1.0, float(b.abs().max())), k


def test_the_imposed_conditions_leave_the_loss(cylinder):
    rng = np.random.default_rng(0)
    sampling = SamplingConfig(n_interior=16, n_boundary=12)
    kwargs = {"device": torch.device("cpu"), "dtype": torch.float64}
    soft = PhysicsLoss(cylinder, sampling, rng, **kwargs)
    hard = PhysicsLoss(cylinder, sampling, rng, exact=cylinder.exact_dirichlet(), **kwargs)
    assert [bc.tag for bc in soft.bcs] == ["inlet", "walls", "cylinder", "outlet"]
    assert [(bc.tag, bc.kind) for bc in hard.bcs] == [("outlet", "traction")]
    batch = hard.sample()
    assert len(batch.boundary) == 1 and batch.boundary[0][0].shape[0] == 12
    terms = hard.boundary_misfit(cylinder_model(cylinder), batch)
    assert sorted(terms) == ["outlet3/u", "outlet3/v"]  # named by the problem's list, as without
    soft_terms = soft.boundary_misfit(cylinder_model(cylinder), soft.sample())
    assert {"outlet3/u", "outlet3/v", "cylinder2/u"} <= set(soft_terms)


def test_pinn_refuses_exact_dirichlet_where_the_problem_has_no_forms():
    with pytest.raises(ParameterError, match="kovasznay offers no exact form.*cylinder_steady"):
        pdekit.solve(
            "navier_stokes/kovasznay",
            solver="pinn",
            config={"exact_dirichlet": True, "train": {"steps": 1}},
            verbose=False,
        )
    with pytest.raises(ParameterError, match="exact_dirichlet must be true or false"):
        PINNConfig(exact_dirichlet="yes")


def test_an_exact_pinn_trains_saves_and_loads(tmp_path, cylinder):
    """End to end: a few steps with the conditions built in, the saved solution loads (the
    wrapped network's weights) and answers the same, and still meets the inflow exactly."""
    sol = pdekit.solve(
        cylinder.name,
        solver="pinn",
        config={
            "exact_dirichlet": True,
            "network": {"width": 16, "depth": 2},
            "sampling": {"n_interior": 64, "n_boundary": 16},
            "train": {"steps": 3},
        },
        device="cpu",
        verbose=False,
    )
    again = pdekit.load(sol.save(tmp_path / "exact.h5"))
    y = np.linspace(0.0, HEIGHT, 7)
    pts = np.stack([np.zeros_like(y), y], 1)
    a, b = sol(pts), again(pts)
    for f in ("u", "v", "p"):
        np.testing.assert_array_equal(a[f], b[f])
    np.testing.assert_allclose(a["u"], cylinder.inflow(y), rtol=0, atol=1e-6)
    np.testing.assert_allclose(a["v"], 0.0, atol=1e-6)


@pytest.mark.slow
def test_a_short_pinn_run_moves_the_drag_and_dp_toward_the_reference():
    """The issue's check on DFG 2D-1 (reference: the problem's Taylor-Hood flow, c_D 5.5795,
    dp 0.11752): pinn with the channel's exact Dirichlet forms, 64 x 4, 3000 Adam steps and 300
    L-BFGS iterations, against the same network after one Adam step (the lift plus the distance
    times a freshly initialised network). About 70 s on 2 cores, hence slow. Measured for seeds
    0, 1, 2 (session 37): c_D 0.70 -> 1.52, 1.11 -> 1.19, 1.04 -> 1.87; dp -0.006 -> 0.030,
    0.003 -> 0.019, 0.004 -> 0.045. At the default suite's sizes (32 x 3, 512 points, 1000 +
    100 steps) the drag moved away from the reference for two seeds of three, so this check
    cannot be made faster."""

    def quantities(steps: int, lbfgs: int) -> dict:
        config = {
            "network": {"width": 64, "depth": 4},
            "sampling": {"n_interior": 2048, "n_boundary": 128},
            "exact_dirichlet": True,
            "train": {"steps": steps, "lbfgs_steps": lbfgs},
        }
        sol = pdekit.solve(
            "navier_stokes/cylinder_steady", solver="pinn", config=config, seed=0, verbose=False
        )
        return sol.quantities()

    before, after = quantities(1, 0), quantities(3000, 300)
    for name in ("c_d", "dp"):
        assert after[name]["rel_error"] < before[name]["rel_error"], (name, before, after)
