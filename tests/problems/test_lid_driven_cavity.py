"""Lid-driven cavity reference against Ghia, Ghia & Shin (1982) and its own convergence."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pdekit.core.stencil import StencilFields
from pdekit.errors import ParameterError
from pdekit.problems import get
from pdekit.problems.references import cavity

DATA = Path(__file__).resolve().parents[1] / "data"


def ghia(name):
    """(coordinate, value) columns of a Ghia et al. (1982) table in tests/data."""
    return np.loadtxt(DATA / name, delimiter=",", comments="#", skiprows=2)


@pytest.fixture(scope="module")
def re100():
    return get("navier_stokes/lid_driven_cavity", re=100.0).reference()


def test_re100_matches_ghia_centrelines(re100):
    """Issue requirement: every Re = 100 centreline value of Ghia et al. within 0.01 absolute.
    (Ghia's 129^2 values carry their own discretisation error: the converged solution differs
    from them by up to ~0.009 in v near x = 0.86; see the printed table.)"""
    u_tab = ghia("ghia1982_u_vertical_centerline_re100.csv")
    v_tab = ghia("ghia1982_v_horizontal_centerline_re100.csv")
    u = re100(np.stack([np.full(len(u_tab), 0.5), u_tab[:, 0]], axis=1))["u"]
    v = re100(np.stack([v_tab[:, 0], np.full(len(v_tab), 0.5)], axis=1))["v"]
    print("\nLid-driven cavity, Re = 100: reference vs Ghia, Ghia & Shin (1982)")
    print(f"{'field':>5} {'position':>9} {'Ghia':>9} {'pdekit':>9} {'deviation':>10}")
    for field, tab, got, where in (("u", u_tab, u, "y"), ("v", v_tab, v, "x")):
        for (pos, want), g in zip(tab, got):
            print(f"{field:>5} {where}={pos:<7.4f} {want:>9.5f} {g:>9.5f} {g - want:>+10.5f}")
    dev = np.concatenate([np.abs(u - u_tab[:, 1]), np.abs(v - v_tab[:, 1])])
    print(f"max |deviation| = {dev.max():.5f}")
    assert dev.max() <= 0.01


def test_second_order_convergence_at_re100():
    """Declared order 2: centreline values on 32, 64, 128 cells (shared nodes), observed order
    of the successive differences in [1.7, 2.3] (asymptotic for this smooth interior)."""
    sols = {n: cavity.solve(100.0, n, coarsest=n) for n in (32, 64, 128)}

    def centre(sol, stride):
        c = sol.u.shape[0] // 2
        return np.concatenate([sol.u[c, ::stride], sol.v[::stride, c]])

    d1 = np.abs(centre(sols[64], 2) - centre(sols[32], 1)).max()
    d2 = np.abs(centre(sols[128], 4) - centre(sols[64], 2)).max()
    order = np.log2(d1 / d2)
    assert cavity.ORDER == 2
    assert 1.7 <= order <= 2.3, (d1, d2, order)
    # the PDE residual of the discrete solution (4th-order stencils of the core), 0.1 from the
    # walls and 0.3 from the lid corners, falls with the grid: observed orders 64 -> 128 -> 256
    # cells are 1.9 (continuity) and 1.6 (momentum: the pressure, singular ~ 1/r at the lid
    # corners, converges more slowly); asserted 64 -> 128: >= 1.7 and >= 1.4
    problem = get("navier_stokes/lid_driven_cavity")
    worst = []
    for n in (64, 128):
        s = sols[n]
        f = StencilFields(
            {k: torch.as_tensor(getattr(s, k)) for k in "uvp"},
            ("x", "y"),
            1 / n,
            order=4,
            boundary="free",
            location="node",
            declared=problem.derivatives,
        )
        X, Y = np.meshgrid(s.x, s.x, indexing="ij")
        far = np.minimum(np.hypot(X, Y - 1), np.hypot(X - 1, Y - 1)) > 0.3
        region = far & (np.minimum(np.minimum(X, 1 - X), np.minimum(Y, 1 - Y)) >= 0.1)
        res = problem.residual(f)
        worst.append({k: float(np.abs(r.numpy()[region]).max()) for k, r in res.items()})
    print(f"\ncavity residual (0.1 from walls, 0.3 from lid corners), 64 / 128 cells: {worst}")
    orders = {k: np.log2(worst[0][k] / worst[1][k]) for k in worst[0]}
    assert orders["continuity"] >= 1.7, orders
    assert min(orders["momentum_x"], orders["momentum_y"]) >= 1.4, orders


def test_discrete_solution_is_divergence_free_and_satisfies_bcs(re100):
    x = re100.axes["x"]
    u, v = re100.values["u"], re100.values["v"]
    # walls: no slip; lid: u = 1 (its end nodes included)
    assert np.all(u[0, :-1] == 0) and np.all(u[-1, :-1] == 0) and np.all(u[:, 0] == 0)
    assert np.all(u[:, -1] == 1) and np.all(v[:, -1] == 0) and np.all(v[:, 0] == 0)
    # u = psi_y, v = -psi_x by central differences: the discrete divergence (central
    # differences again, interior) cancels exactly, up to round-off (measured 7.1e-15 with
    # 1 / h = 128)
    h = x[1] - x[0]
    div = (u[2:, 1:-1] - u[:-2, 1:-1]) / (2 * h) + (v[1:-1, 2:] - v[1:-1, :-2]) / (2 * h)
    assert np.abs(div[1:-1, 1:-1]).max() < 1e-12


def test_stated_accuracy_and_pressure_normalisation(re100):
    assert re100.source == "computed"
    assert "128x128" in re100.description
    err_u = float(re100.accuracy.split("~")[1].split(" ")[0])
    # second order on 128 cells against 64, 0.1 from the corners: ~2.5e-3 measured
    assert 1e-4 < err_u < 5e-3
    assert abs(re100(np.array([[0.5, 0.5]]))["p"][0]) < 1e-14  # gauge p(1/2, 1/2) = 0: 1.1e-17
    bcs = get("navier_stokes/lid_driven_cavity").boundary_conditions()
    assert {b.tag for b in bcs} == {"top", "bottom", "left", "right"}
    top = next(b for b in bcs if b.tag == "top")
    vals = top.value(torch.tensor([[0.3, 1.0]], dtype=torch.float64))
    assert float(vals["u"][0]) == 1.0 and float(vals["v"][0]) == 0.0


@pytest.mark.parametrize("re", [50.0, 5000.0])
def test_reynolds_range(re):
    with pytest.raises(ParameterError, match="re"):
        get("navier_stokes/lid_driven_cavity", re=re)


@pytest.mark.slow  # Re = 1000 on 256 cells takes ~20 s on one core plus ~15 s for 128 cells
def test_re1000_primary_vortex():
    """Primary-vortex streamfunction minimum at Re = 1000: -0.117929 on Ghia's 129^2 grid,
    -0.1189366 spectral (Botella & Peyret 1998); our 2nd-order 256-cell value lies between
    Ghia's and the spectral one within 1%."""
    sol = cavity.solve(1000.0, 256)
    assert -0.1189366 * 1.01 < sol.psi.min() < -0.117929 * 0.99
