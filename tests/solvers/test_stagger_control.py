"""The classical side of neural_stagger's control experiment: the projection solver's objective
at a control and its own derivative-free control search (``examples/flow_control.py`` checks the
network's control against them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdekit.errors import ConvergenceError, ParameterError
from pdekit.problems import mac
from pdekit.problems.references.projection import (
    ProjectionSolver,
    control_objective,
    projection_control,
    scene_speed,
    stable_dt,
)

#: a tiny cavity (13 fluid cells, a 16 x 16 layout), Re 100 at lid speed 1, half a time unit
CELLS, NU, T_END = 13, 0.01, 0.5


def cavity(theta: float) -> mac.MacScene:
    return mac.cavity_scene(CELLS, lid=theta)


def probe_index() -> tuple[int, int]:
    """The u sample nearest (0.5, 0.7): the return flow below the lid on the vertical centreline."""
    grid = cavity(1.0).grid
    i = int(np.argmin(np.abs(grid.axis(0, "face_x") - 0.5)))
    j = int(np.argmin(np.abs(grid.axis(1, "center") - 0.7)))
    return i, j


def by_hand(theta: float, dt: float) -> float:
    """The probe's u at T_END from rest by ProjectionSolver itself."""
    scene = cavity(theta)
    zero = np.zeros(scene.grid.n)
    run = ProjectionSolver(scene, NU, dt).run(zero, zero, T_END, times=[0.0, T_END])
    return float(run.u[-1][probe_index()])


def test_control_objective_is_a_projection_run_at_that_control():
    """The objective of the run on scene_of(theta) at its own stable step (default), and at a
    given step: the values of the solver run by hand, to round-off."""
    i, j = probe_index()

    def probe(u, v, p):
        return u[i, j]

    own = stable_dt(cavity(1.3), NU, speed=1.3)
    assert scene_speed(cavity(1.3)) == pytest.approx(1.3, rel=1e-15)
    got = control_objective(cavity, 1.3, NU, T_END, probe)
    assert got == pytest.approx(by_hand(1.3, own), rel=1e-13, abs=1e-15)
    assert got < -1e-2  # the return flow: a real signal, not a zero
    small = 0.5 * own
    assert control_objective(cavity, 1.3, NU, T_END, probe, dt=small) == pytest.approx(
        by_hand(1.3, small), rel=1e-13, abs=1e-15
    )

    # a functional of all three fields: the kinetic energy of the fluid u samples
    def energy(u, v, p):
        return 0.5 * float((u[1:-2, 1:-2] ** 2).sum())

    scene = cavity(0.8)
    zero = np.zeros(scene.grid.n)
    run = ProjectionSolver(scene, NU, stable_dt(scene, NU, 0.8)).run(zero, zero, T_END)
    want = 0.5 * float((run.u[-1][1:-2, 1:-2] ** 2).sum())
    assert control_objective(cavity, 0.8, NU, T_END, energy) == pytest.approx(want, rel=1e-13)


def test_projection_control_recovers_a_known_lid_speed():
    """Target: the probe value at lid speed 1.3 (same step as the search); a search bracketed
    from 1.0 finds 1.3 (to 1e-8 relative, asked 1e-10 absolute: Brent on a smooth residual) in
    a handful of runs, and its dt is the stable step of the faster end."""
    i, j = probe_index()
    dt = stable_dt(cavity(2.0), NU, speed=2.0)
    target = by_hand(1.3, dt)
    res = projection_control(cavity, 1.0, 2.0, NU, T_END, lambda u, v, p: u[i, j] - target)
    assert res.dt == dt
    assert res.theta == pytest.approx(1.3, rel=1e-8)
    assert abs(res.residual) < 1e-9
    assert res.history["theta"][:2] == [1.0, 2.0] and len(res.history["theta"]) <= 15
    assert res.history["residual"][-1] == res.residual
    # the same bracket in reverse order, and the search's own dt given explicitly
    back = projection_control(cavity, 2.0, 1.0, NU, T_END, lambda u, v, p: u[i, j] - target, dt=dt)
    assert back.theta == pytest.approx(1.3, rel=1e-8)


def test_a_search_that_runs_out_of_runs_says_so():
    i, j = probe_index()
    target = by_hand(1.3, stable_dt(cavity(2.0), NU, speed=2.0))
    with pytest.raises(ConvergenceError, match="max_runs = 3"):
        projection_control(cavity, 1.0, 2.0, NU, T_END, lambda u, v, p: u[i, j] - target,
                           max_runs=3)  # fmt: skip


def _probe(u, v, p):
    return u[7, 10]


#: (function, arguments, keywords, the words the message must hold)
BAD = [
    (control_objective, (cavity, math.nan, NU, T_END, _probe), {}, "theta must be a finite"),
    (control_objective, (cavity, 1.0, 0.0, T_END, _probe), {}, "nu must be a finite number > 0"),
    (control_objective, (cavity, 1.0, NU, -1.0, _probe), {}, "t_end must be a finite number > 0"),
    (control_objective, (cavity, 1.0, NU, T_END, "u"), {}, "objective must be a function"),
    (control_objective, (cavity, 1.0, NU, T_END, _probe, 1.0), {}, "0 < dt <= "),
    (control_objective, (lambda s: s, 1.0, NU, T_END, _probe), {}, "scene_of must return"),
    (control_objective, (cavity, 1.0, NU, T_END, lambda u, v, p: math.nan), {}, "objective must"),
    (projection_control, (cavity, 1.0, 1.0, NU, T_END, _probe), {}, "theta0 and theta1 must"),
    (projection_control, (cavity, 1.0, 2.0, NU, T_END, _probe), {"xtol": 0.0}, "xtol must be"),
    (projection_control, (cavity, 1.0, 2.0, NU, T_END, _probe), {"max_runs": 2}, "max_runs must"),
    (projection_control, (cavity, 1.0, 2.0, NU, T_END, None), {}, "residual must be a function"),
    (projection_control, (cavity, 1.0, 2.0, NU, T_END, lambda u, v, p: u), {}, "residual must "),
    (projection_control, (cavity, 1.0, 2.0, NU, T_END, _probe), {"scheme": "rk4"}, "scheme must"),
    # u[7, 14] is a sample of the lid itself, u = theta > 0: no sign change in the bracket
    (projection_control, (cavity, 1.0, 2.0, NU, T_END, lambda u, v, p: u[7, 14]), {}, "bracket"),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "words"), BAD)
def test_bad_arguments_name_the_parameter(fn, args, kwargs, words):
    with pytest.raises(ParameterError, match=words.replace("(", r"\(")):
        fn(*args, **kwargs)
