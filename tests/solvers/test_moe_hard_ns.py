"""``moe_hard`` and ``fno_soft`` on 2D Navier-Stokes in vorticity form (decaying turbulence on the
torus, the paper's NS case): the velocity of u = b . omega is sum_i omega_i u(b_i) through the
problem's own ``complete``; a basis containing an exact solution (a single-shell Taylor-Green
mode, whose advection vanishes, with a source making its time factor quadratic so that the
second-order time stencil is exact) is reproduced to round-off by a 2 x 2 spatial mixture of
experts; on a random basis the quadratic rows' minimiser is SciPy's MINPACK LM's, reached to the
NS tolerance 1e-7; the problem's own grid residual vanishes on the exact mode; and a tiny
decaying-turbulence family trains by both solvers without solution data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.optimize
import torch
from family_support import registered_tiny_family

import pdekit
from pdekit.problems import registry
from pdekit.problems.family import Family
from pdekit.problems.navier_stokes.decaying_turbulence import DecayingTurbulence
from pdekit.solvers.hard_constraint import (
    ConstrainedSolve,
    ConstraintSystem,
    Partition,
    build_tensors,
    levenberg_marquardt,
    state_fields,
)
from pdekit.solvers.moe_hard import (
    BasisNetworkConfig,
    ConstraintConfig,
    PhysicsConfig,
    PhysicsFNO,
    physics_loss,
)

K = 2 * math.pi  # the mode cos(K x) cos(K y): one shell, |k|^2 = 2 K^2
TIMES = np.linspace(0.0, 1.0, 5)


def quadratic(t):
    return 1.0 + 0.3 * t - 0.2 * t**2


def quadratic_rate(t):
    return 0.3 - 0.4 * t


@dataclass(frozen=True)
class ForcedMode(DecayingTurbulence):
    """Decaying turbulence plus the source that makes w = q(t) cos(K x) cos(K y) exact, q
    quadratic: its advection vanishes (psi is proportional to w on one shell), so the source is
    (q' + 2 K^2 nu q) cos(K x) cos(K y)."""

    def residual(self, f):
        res = super().residual(f)
        x, y, t = f.coord("x"), f.coord("y"), f.coord("t")
        shape = torch.cos(K * x) * torch.cos(K * y)
        source = (quadratic_rate(t) + 2 * K**2 * self.nu * quadratic(t)) * shape
        return {**res, "vorticity": res["vorticity"] - source}


def _exact(n: int) -> torch.Tensor:
    """``(nt, n, n)``: the exact mode at the nodes."""
    x = torch.arange(n, dtype=torch.float64) / n
    t = torch.as_tensor(TIMES)
    shape = torch.cos(K * x)[:, None] * torch.cos(K * x)[None, :]
    return quadratic(t)[:, None, None] * shape


def _random_basis(n: int, count: int, seed: int) -> torch.Tensor:
    """``(nt, n, n, count)`` smooth random fields: a few low Fourier modes times quadratics."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.arange(n, dtype=torch.float64) / n
    t = torch.as_tensor(TIMES)
    out = []
    for _ in range(count):
        c = torch.randn(4, generator=gen, dtype=torch.float64)
        a = torch.randn(3, generator=gen, dtype=torch.float64)
        space = (
            c[0] * torch.sin(K * x)[:, None]
            + c[1] * torch.cos(2 * K * x)[None, :]
            + c[2] * torch.sin(K * (x[:, None] + x[None, :]))
            + c[3] * torch.cos(K * x)[None, :]
        )
        out.append((a[0] + a[1] * t + a[2] * t**2)[:, None, None] * space)
    return torch.stack(out, -1)


def test_the_grid_residual_vanishes_on_the_exact_mode_and_velocity_is_linear():
    problem = ForcedMode(nu=1e-3)
    grid = problem.grid(16)
    w = _exact(16)[None]
    res = problem.residual(state_fields(problem, w, grid, TIMES))
    for name, r in res.items():  # spectral in space, quadratic in time: round-off
        assert float(r.abs().max()) < 1e-12, name
    # the velocity of a combination is the combination of the velocities
    basis = _random_basis(16, 3, seed=0).movedim(-1, 0)  # (3, nt, n, n)
    omega = torch.tensor([0.7, -1.3, 2.0], dtype=torch.float64)
    whole = problem.complete({"w": torch.einsum("i...,i->...", basis, omega)}, grid)
    parts = problem.complete({"w": basis}, grid)
    for name in ("u", "v"):
        combined = torch.einsum("i...,i->...", parts[name], omega)
        torch.testing.assert_close(whole[name], combined, rtol=0, atol=1e-14)


def test_a_basis_containing_the_exact_mode_reproduces_it_with_four_experts():
    problem = ForcedMode(nu=1e-3)
    n = 16
    grid = problem.grid(n)
    exact = _exact(n)
    basis = torch.cat([_random_basis(n, 3, seed=1), exact[..., None]], -1)[None]
    part = Partition((len(TIMES), n, n), (1, 2, 2), ("t", "x", "y"))
    index = part.sample(40, torch.Generator().manual_seed(0))
    terms, coords, tensors = build_tensors(problem, basis, exact[:1], grid, TIMES, part, index,
                                           ic_relative=False)  # fmt: skip
    system = ConstraintSystem(problem, terms, coords, 0.0)
    w0 = torch.ones(1, 4, 4, dtype=torch.float64)
    omega = ConstrainedSolve.apply(system, {"tol": 1e-12, "max_iter": 200}, w0, *tensors)
    assert bool(system.result.converged.all())
    assert float(system.result.residual.max()) < 1e-10
    u = part.stitch(torch.einsum("btxyn,bkn->bktxy", basis, omega))[0]
    torch.testing.assert_close(u, exact, rtol=0, atol=1e-11)
    # every expert picks the exact mode alone
    want = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(4, 4)
    torch.testing.assert_close(omega[0], want, rtol=0, atol=1e-10)


def test_the_built_in_initial_condition_reproduces_the_exact_mode(monkeypatch):
    """The paper's NS ansatz u = w0 + (t / T) (b - <b>) . omega through the model: with the
    basis function T (0.3 - 0.2 t) cos cos (so that (t / T) b = w* - w0) among random ones, a
    2 x 2 spatial mixture reproduces w* to round-off, and u(t0) = w0 exactly."""
    problem = ForcedMode(nu=1e-3)
    n = 16
    grid = problem.grid(n)
    exact = _exact(n)
    t = torch.as_tensor(TIMES)
    wanted = (TIMES[-1] * (0.3 - 0.2 * t))[:, None, None] * (exact[0] / quadratic(0.0))
    basis = torch.cat([_random_basis(n, 3, seed=3) + 0.5, wanted[..., None]], -1)[None]
    cons = ConstraintConfig(experts=(1, 2, 2), points=40, tol=1e-13, max_iter=300, ridge=1e-12)
    net = BasisNetworkConfig(basis=4, width=4, modes=2, layers=1, projection=4, padding=2)
    physics = PhysicsConfig(initial="built_in")
    model = PhysicsFNO(problem, grid, TIMES, net, cons, physics).eval()
    monkeypatch.setattr(model, "outputs", lambda x: basis)
    x = exact[0][None, None, ..., None]
    with torch.no_grad():
        u = model(x, full=True)[0]
    assert bool(model.last_solve["converged"].all())
    assert torch.equal(u[0], exact[0])
    torch.testing.assert_close(u, exact, rtol=0, atol=1e-11)
    # the training loss vanishes on it (no initial-condition or boundary term left)
    terms = physics_loss(model, u[None], exact[:1])
    assert all(float(v) < 1e-10 for v in terms.values()), terms


def test_lm_on_the_quadratic_vorticity_rows_agrees_with_scipy_minpack():
    """A random basis, one expert: the advection makes the rows quadratic in omega. Our batched
    LM at the paper's NS tolerance (1e-7) and SciPy's MINPACK LM reach the same minimiser."""
    problem = registry.get("navier_stokes/decaying_turbulence", nu=1e-3)
    n = 8
    grid = problem.grid(n)
    basis = _random_basis(n, 5, seed=2)[None]
    part = Partition((len(TIMES), n, n), (1, 1, 1))
    index = part.sample(60, torch.Generator().manual_seed(1))
    initial = _exact(n)[:1] * 0.5
    terms, coords, tensors = build_tensors(problem, basis, initial, grid, TIMES, part, index,
                                           ic_relative=False)  # fmt: skip
    system = ConstraintSystem(problem, terms, coords, 1e-4)
    ours = levenberg_marquardt(
        lambda w: system.rows_and_jacobian(w, tensors),
        torch.ones(1, 1, 5, dtype=torch.float64),
        tol=1e-7,
        max_iter=50,
    )

    def fun(w):
        return system.rows(torch.as_tensor(w)[None, None], tensors)[0, 0].numpy()

    rows = fun(np.ones(5))
    vort = rows[:60]  # the advection term is not negligible in the rows
    assert np.abs(vort).max() > 0.1
    ref = scipy.optimize.least_squares(fun, np.ones(5), method="lm", xtol=1e-15, ftol=1e-15)
    assert bool(ours.converged.all()) and int(ours.iterations.max()) < 50
    np.testing.assert_allclose(ours.omega[0, 0].numpy(), ref.x, rtol=1e-5, atol=1e-7)
    assert float(ours.residual[0, 0]) == pytest.approx(np.linalg.norm(ref.fun), rel=1e-8)


# -- the solvers on a tiny family ----------------------------------------------------------------
TINY = "test_moe_tiny_decaying_turbulence"
#: 16^2 nodes (simulated on 32^2), 5 snapshots on [0, 1]
TINY_FAMILY = Family(
    name=TINY,
    problem="navier_stokes/decaying_turbulence",
    fixed={"nu": 1e-3, "t_end": 1.0},
    seed_param="seed",
    sizes={"train": 4, "valid": 2, "test": 2},
    grid=16,
    times=tuple(TIMES),
    min_solver_cells=32,
    description="a tiny family for tests",
)
TINY_CONFIG = {
    "dataset": {"family": TINY, "n_train": 4, "n_valid": 2, "grid": 16, "batch_size": 2,
                "eval_every": 10},
    "network": {"basis": 6, "width": 6, "modes": 3, "layers": 1, "projection": 8, "padding": 2},
    "train": {"steps": 10, "log_every": 5, "lr": 1e-2, "decay_every": 10},
    "physics": {"initial": "built_in"},
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    yield from registered_tiny_family(tmp_path_factory, TINY_FAMILY)


@pytest.mark.parametrize("solver", ["fno_soft", "moe_hard"])
def test_a_tiny_decaying_turbulence_family_trains_and_answers(tiny, solver):
    config = dict(TINY_CONFIG)
    if solver == "moe_hard":
        config["constraint"] = {"experts": [1, 2, 2], "points": 20, "tol": 1e-7,
                                "ic_relative": False, "unconverged": "warn"}  # fmt: skip
    sol = pdekit.solve("navier_stokes/decaying_turbulence", solver=solver,
                       params={"seed": 12345, "nu": 1e-3, "t_end": 1.0}, config=config,
                       verbose=False)  # fmt: skip
    assert sol.step == 10
    loss = sol.history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    assert sol.trajectory.shape == (5, 16, 16, 1)
    if solver == "moe_hard":
        assert len(sol.extras["lm"]["iterations"]) == 4
    # the initial condition is built in: the prediction starts at the input exactly
    w0 = torch.as_tensor(sol.problem.initial_state(sol.problem.grid(16))["w"])
    x = w0[None, None, ..., None].float()
    model = sol.model.eval()
    model.lenient = True
    with torch.no_grad():
        full = model(x, full=True)
    assert torch.equal(full[0, 0], x[0, 0, ..., 0].to(full.dtype))
