"""``simulate`` of the porous-medium family through the finite-volume GPME solver.

Oracles: a batch of B = 3 initial states gives exactly the trajectories of 3 separate runs (each
trajectory is integrated on its own); from the problem's own initial condition the trajectories
agree with the exact solutions (pme, stefan, barenblatt) to the measured discretisation error;
the boundary conditions reach the solver from ``boundary_conditions()`` (tag None: every side);
bad input raises ParameterError; a progress bar appears only on long runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import pdekit.progress
from pdekit.errors import ParameterError
from pdekit.geometries import Grid, Interval, SpaceTime, TimeDomain
from pdekit.problems import BC, Problem, get
from pdekit.problems.references import fv_gpme
from pdekit.problems.references.fv_gpme import problem_boundary

# name: (parameters, cells per axis, output times, bump amplitude of the extra initial states)
BATCH = {
    "pme": ("porous_medium/pme", {}, 16, [0.0, 0.05, 0.1], 0.3),
    "stefan": ("porous_medium/stefan", {}, 16, [0.0, 0.01, 0.02], 0.8),
    "diffusion_sorption": ("porous_medium/diffusion_sorption", {}, 32, [0.0, 1.0, 10.0], 0.1),
    "barenblatt_1d": ("porous_medium/barenblatt", {}, 32, [0.0, 0.25, 0.5], 0.05),
    "barenblatt_2d": ("porous_medium/barenblatt", {"dim": 2}, 12, [0.0, 0.1, 0.2], 0.05),
}


def grid_for(problem, n: int) -> Grid:
    return Grid.on(problem.domain().space, n)


def bump(grid: Grid) -> np.ndarray:
    """prod_k sin^2(pi (x_k - lo_k) / L_k): positive inside, vanishing at the boundary."""
    out = np.ones(grid.shape)
    for k in range(grid.dim):
        s = np.sin(np.pi * (grid.axis(k) - grid.lo[k]) / (grid.hi[k] - grid.lo[k])) ** 2
        out = out * s.reshape([-1 if i == k else 1 for i in range(grid.dim)])
    return out


@pytest.mark.parametrize("case", sorted(BATCH))
def test_batch_equals_separate_runs(case):
    """Measured: the batch and the separate runs are bit-identical (max difference 0.0)."""
    name, params, n, times, amplitude = BATCH[case]
    p = get(name, **params)
    grid = grid_for(p, n)
    u0 = p.initial_state(grid)["u"]
    states = np.stack([u0, u0 + amplitude * bump(grid), u0 + 0.5 * amplitude * bump(grid)])
    batch = p.simulate({"u": states}, grid, times, rtol=1e-4)["u"]
    assert batch.dtype == np.float64 and batch.shape == (3, len(times), *grid.shape)
    np.testing.assert_array_equal(batch[:, 0], states)
    for i in range(3):
        single = p.simulate({"u": states[i : i + 1]}, grid, times, rtol=1e-4)["u"]
        np.testing.assert_array_equal(batch[i], single[0])
    assert np.ptp(batch[:, -1].reshape(3, -1), axis=0).max() > 1e-3  # the runs differ


EXACT = [
    # (name, parameters, cells, tolerance on the mean |u - exact| over cells and the 5 output
    #  times after t0, reason)
    (
        "porous_medium/pme",
        {},
        50,
        1.5e-3,
        "measured 1.0e-3: the front u ~ (t - x)^(1/3) is Hoelder-1/3, and cell values are compared "
        "with point values at the centres (test_fv_gpme: order 1.33 against cell averages)",
    ),
    (
        "porous_medium/stefan",
        {},
        50,
        6e-3,
        "measured 3.9e-3: u jumps from u* = 0.6 to 0 at the front, inside one cell whose value is "
        "the melted fraction, not the point value at its centre (O(u*/n) per output time)",
    ),
    (
        "porous_medium/barenblatt",
        {},
        50,
        1.4e-4,
        "measured 9.0e-5: the kink of the m = 2 edge limits the order (1.6-2.2 in test_fv_gpme)",
    ),
    (
        "porous_medium/barenblatt",
        {"dim": 2},
        40,
        6e-5,
        "measured 3.9e-5: as in 1D, on 40 x 40 cells",
    ),
]


@pytest.mark.parametrize("name, params, n, tol, reason", EXACT)
def test_simulate_agrees_with_the_exact_solution(name, params, n, tol, reason):
    """From the problem's own initial condition at the default tolerance (rtol 1e-5, whose time
    error measured below 2% of these errors)."""
    p = get(name, **params)
    grid = grid_for(p, n)
    dom = p.domain()
    times = np.linspace(dom.time.t0, dom.time.t1, 6)
    u = p.simulate({"u": p.initial_state(grid)["u"][None]}, grid, times)["u"][0]
    space = grid.points("center")
    pts = np.concatenate([np.tile(space, (6, 1)), np.repeat(times, len(space))[:, None]], axis=1)
    exact = p.exact(torch.as_tensor(pts))["u"].numpy().reshape(u.shape)
    err = float(np.abs(u - exact)[1:].mean())
    print(f"\n[gpme simulate] {name} {params} on {n} cells: mean |u - exact| = {err:.3e}")
    assert err < tol, reason


def test_heat_keeps_its_exact_simulate():
    heat = get("porous_medium/heat")
    assert type(heat).simulate is Problem.simulate and heat.state_location == "node"
    for name in ("pme", "stefan", "barenblatt", "diffusion_sorption"):
        assert get(f"porous_medium/{name}").state_location == "center"


@pytest.mark.parametrize("case", ["pme", "diffusion_sorption", "barenblatt_2d"])
def test_bad_input_raises(case):
    name, params, n, times, _ = BATCH[case]
    p = get(name, **params)
    grid = grid_for(p, n)
    good = p.initial_state(grid)["u"][None]
    p.simulate({"u": good}, grid, times[:2], rtol=1e-3)  # the good input runs
    dim = grid.dim
    bad = [
        ({"u": good[0]}, grid, times, "shape"),  # no batch axis
        ({"u": good[..., :-1]}, grid, times, "shape"),
        ({"v": good}, grid, times, "state fields"),
        ({"u": good}, Grid(grid.lo, grid.hi + 1.0, n), times, "covers"),
        ({"u": good}, Grid(grid.lo, grid.hi, n, periodic=True), times, "periodic"),
        ({"u": good}, Grid([0.0] * (dim + 1), [1.0] * (dim + 1), n), times, "coordinates"),
        ({"u": good}, grid, [t + 0.01 for t in times], "t0"),
        ({"u": good}, grid, times[::-1], "increasing"),
        ({"u": np.full_like(good, np.nan)}, grid, times, "non-finite"),
    ]
    for states, g, t, match in bad:
        with pytest.raises(ParameterError, match=match):
            p.simulate(states, g, t)


def test_boundary_from_tag_none_covers_every_side():
    p = get("porous_medium/barenblatt", dim=2)
    bx, by = problem_boundary(p, Grid([-2.0, -2.0], [2.0, 2.0], 6))
    for side in (bx.lo, bx.hi, by.lo, by.hi):
        assert side.kind == "dirichlet"
        assert side.value(0.3, np.linspace(-2, 2, 6)).tolist() == [0.0] * 6


@dataclass(frozen=True)
class _Diffusion(Problem):
    """u_t = u_xx on [0, 1], with the BCs given by ``which``."""

    which: str = "one"
    coordinates = ("x", "t")
    fields = ("u",)

    def domain(self):
        return SpaceTime(Interval(0.0, 1.0), TimeDomain(0.0, 1.0))

    def boundary_conditions(self):
        def zero(p):
            return {"u": torch.zeros_like(p[:, 0])}

        one = [BC("dirichlet", ("u",), zero, "xmin")]
        return one if self.which == "one" else one + [BC("neumann", ("u",), zero)]


def test_boundary_needs_exactly_one_bc_per_side():
    grid = Grid([0.0], [1.0], 8)
    with pytest.raises(ParameterError, match="no boundary condition on 'xmax'"):
        problem_boundary(_Diffusion("one"), grid)
    with pytest.raises(
        ParameterError, match="two boundary conditions on field 'u' at the lower end of axis 'x'"
    ):
        problem_boundary(_Diffusion("two"), grid)
    with pytest.raises(ParameterError, match="cell-centre"):  # state_location is "node"
        fv_gpme.simulate_gpme(_Diffusion("one"), {"u": np.zeros((1, 8))}, grid, [0.0], k=np.abs)


def test_progress_bar_only_on_long_runs(capsys, monkeypatch):
    """The bar (pdekit.progress's rule) appears on a terminal once a run has lasted DELAY_S
    (2 s); short runs print nothing."""
    p = get("porous_medium/barenblatt")
    grid = grid_for(p, 16)
    states = {"u": np.stack([p.initial_state(grid)["u"]] * 2)}
    p.simulate(states, grid, [0.0, 0.1], rtol=1e-3)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(pdekit.progress, "DELAY_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    p.simulate(states, grid, [0.0, 0.1], rtol=1e-3)
    assert "porous_medium/barenblatt (16 cells)" in capsys.readouterr().err


def test_batched_boundary_data_change_no_number(monkeypatch):
    """The solver evaluates a problem's BCs at all the times of a step in one call
    (``_GPMEOperator.prepare``); without it (one call per stage) the trajectory is the same.
    pme: a time-dependent Dirichlet value (m t)^(1/m) at x = 0; measured difference 0.0."""
    p = get("porous_medium/pme")
    grid = grid_for(p, 16)
    args = ({"u": p.initial_state(grid)["u"][None]}, grid, [0.0, 0.05, 0.1])
    batched = p.simulate(*args, rtol=1e-4)["u"]
    monkeypatch.setattr(fv_gpme._GPMEOperator, "prepare", lambda self, times: None)
    np.testing.assert_array_equal(p.simulate(*args, rtol=1e-4)["u"], batched)
