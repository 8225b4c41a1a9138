"""The inviscid limit of the Burgers reference (Lax-Oleinik), against independent oracles."""

import math

import numpy as np
from scipy.optimize import brentq

from pdekit.problems.references.cole_hopf import burgers_sine, burgers_sine_inviscid


def _characteristic_solution(x, t):
    """u = u0(a) with a - t sin(pi a) = x, by bracketing (unique before the shock time 1/pi)."""
    out = []
    for xi in x:
        a = brentq(lambda a, xi=xi: a - t * math.sin(math.pi * a) - xi, -1.5, 1.5, xtol=1e-15)
        out.append(-math.sin(math.pi * a))
    return np.array(out)


def test_before_the_shock_it_is_the_characteristic_solution():
    x = np.linspace(-1.0, 1.0, 41)
    for t in (0.0, 0.1, 0.3):  # the shock forms at t = 1/pi = 0.318
        u = burgers_sine_inviscid(x, np.full_like(x, t))
        assert np.abs(u - _characteristic_solution(x, t)).max() < 1e-10


def test_the_shock_stays_at_the_origin_with_the_states_of_its_last_characteristics():
    # by symmetry the shock stays at x = 0; its states are u0(+-a) = -+sin(pi a) = -+a / t of the
    # labels whose characteristics reach it at time t, a = t sin(pi a)
    for t in (0.5, 1.0):
        a = brentq(lambda a, t=t: a - t * math.sin(math.pi * a), 1e-3, 1.0, xtol=1e-15)
        u = burgers_sine_inviscid(np.array([-1e-9, 1e-9]), np.array([t, t]))
        assert np.allclose(u, [a / t, -a / t], atol=1e-7)


def test_the_viscous_solution_converges_to_it():
    # Cole-Hopf (an independent quadrature) at nu -> 0: L1 distance at t = 1 shrinks with nu
    x = np.linspace(-1.0, 1.0, 2001)
    t = np.ones_like(x)
    inviscid = burgers_sine_inviscid(x, t)
    l1 = [
        2.0 * np.mean(np.abs(burgers_sine(x, t, nu) - inviscid))
        for nu in (0.01 / math.pi, 0.001 / math.pi)
    ]
    # measured 1.07e-2 and 1.21e-3: O(nu) up to a logarithm
    assert l1[1] < l1[0] / 5 and l1[1] < 2e-3
