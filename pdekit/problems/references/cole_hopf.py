"""Viscous Burgers with u0 = -sin(pi x): the exact solution by the Cole-Hopf integral.

The Cole-Hopf transform u = -2 nu theta_x / theta turns u_t + u u_x = nu u_xx into the heat
equation theta_t = nu theta_xx, so (Cole 1951; Hopf 1950; Basdevant et al., Computers & Fluids
14 (1986) 23-41, the benchmark's usual reference)

    u(x, t) = - int sin(pi y) f(y) G(x - y, t) dy / int f(y) G(x - y, t) dy,
    f(y) = exp(-cos(pi y) / (2 pi nu)),   G(z, t) = exp(-z^2 / (4 nu t)).

With the Hermite variable y = x - sigma s, sigma = sqrt(4 nu t), both integrals are
int g(x - sigma s) exp(-s^2) ds over the real line. Their integrands are entire and, in s, vary
on a scale of order one for every t and nu (the second s-derivative of the exponent is at most
2 + 2 pi t), so the trapezoidal rule converges geometrically in the step; the window
|s| <= sqrt(1/(pi nu) + tail) keeps every node whose weight is within exp(-tail) of the largest.
Weights are formed as exp(E - max E) (the exponent spans +-1/(2 pi nu), 50 for nu = 0.01/pi),
so nothing overflows.

Derivatives (for verification): u_x, u_xx from the x-moments theta_x, theta_xx, theta_xxx
(derivatives of f under the integral); u_t from the t-moments theta_t, theta_xt, computed by
differentiating sigma(t) under the integral -- a different quadrature, which agrees with
theta_t = nu theta_xx only as far as the quadrature is accurate, so the Burgers residual formed
from them measures the quadrature error.
"""

from __future__ import annotations

import math

import numpy as np

#: default trapezoidal step in the Hermite variable and tail (see module docstring)
STEP = 0.05
TAIL = 40.0


def _nodes(nu: float, step: float, tail: float) -> np.ndarray:
    half = math.sqrt(1.0 / (math.pi * nu) + tail)
    n = int(math.ceil(half / step))
    return step * np.arange(-n, n + 1, dtype=float)


def burgers_sine(
    x,
    t,
    nu: float,
    *,
    step: float = STEP,
    tail: float = TAIL,
    derivatives: bool = False,
    chunk: int = 2048,
):
    """Exact u(x, t) of u_t + u u_x = nu u_xx, u(x, 0) = -sin(pi x) (2-periodic, odd).

    Parameters
    ----------
    x, t:
        Arrays of the same shape (broadcast); t >= 0.
    nu:
        Viscosity > 0.
    step, tail:
        Trapezoidal step in the Hermite variable and the log-weight cut-off of the window.
    derivatives:
        Also return u_x, u_xx and u_t (dict); otherwise the array u.
    chunk:
        Points per vectorised block (memory: chunk x number of nodes).
    """
    if nu <= 0:
        raise ValueError(f"nu must be > 0; got {nu}")
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    shape = x.shape
    x, t = x.ravel(), t.ravel()
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    s = _nodes(nu, step, tail)
    names = ("u", "u_x", "u_xx", "u_t") if derivatives else ("u",)
    out = {k: np.empty(x.size) for k in names}
    for lo in range(0, x.size, chunk):
        sl = slice(lo, min(lo + chunk, x.size))
        for k, v in _block(x[sl], t[sl], nu, s, derivatives).items():
            out[k][sl] = v
    if not derivatives:
        return out["u"].reshape(shape)
    return {k: v.reshape(shape) for k, v in out.items()}


def _block(x, t, nu, s, derivatives):
    started = t > 0
    ts = np.where(started, t, 1.0)
    sigma = np.sqrt(4.0 * nu * ts)
    y = x[:, None] - sigma[:, None] * s[None, :]
    py = math.pi * y
    cos, sin = np.cos(py), np.sin(py)
    expo = -(s[None, :] ** 2) - cos / (2.0 * math.pi * nu)
    w = np.exp(expo - expo.max(axis=1, keepdims=True))
    theta = w.sum(axis=1)
    # derivatives of phi = log f = -cos(pi y) / (2 pi nu)
    p1 = sin / (2.0 * nu)
    if not derivatives:
        u = -2.0 * nu * (p1 * w).sum(axis=1) / theta
        return {"u": np.where(started, u, -np.sin(math.pi * x))}
    p2 = math.pi * cos / (2.0 * nu)
    p3 = -(math.pi**2) * sin / (2.0 * nu)
    f1 = p1  # f'/f
    f2 = p2 + p1**2  # f''/f
    f3 = p3 + 3.0 * p1 * p2 + p1**3  # f'''/f
    th_x = (f1 * w).sum(axis=1) / theta  # theta_x / theta, etc.
    th_xx = (f2 * w).sum(axis=1) / theta
    th_xxx = (f3 * w).sum(axis=1) / theta
    dsigma = (2.0 * nu / sigma)[:, None]  # d sigma / dt; y_t = -sigma' s
    th_t = (f1 * (-dsigma * s[None, :]) * w).sum(axis=1) / theta
    th_xt = (f2 * (-dsigma * s[None, :]) * w).sum(axis=1) / theta
    u = -2.0 * nu * th_x
    u_x = -2.0 * nu * (th_xx - th_x**2)
    u_xx = -2.0 * nu * (th_xxx - 3.0 * th_xx * th_x + 2.0 * th_x**3)
    u_t = -2.0 * nu * (th_xt - th_x * th_t)
    # t = 0: the initial condition and its derivatives (u_t from the equation)
    u0 = -np.sin(math.pi * x)
    u0x = -math.pi * np.cos(math.pi * x)
    u0xx = math.pi**2 * np.sin(math.pi * x)
    return {
        "u": np.where(started, u, u0),
        "u_x": np.where(started, u_x, u0x),
        "u_xx": np.where(started, u_xx, u0xx),
        "u_t": np.where(started, u_t, nu * u0xx - u0 * u0x),
    }


def burgers_sine_inviscid(x, t, *, labels: int = 4001, chunk: int = 1024):
    """The entropy solution of the inviscid limit, u_t + u u_x = 0, u(x, 0) = -sin(pi x).

    The nu -> 0 limit of :func:`burgers_sine` (Hopf 1950): by the Lax-Oleinik formula for the
    convex flux u^2/2,

        u(x, t) = (x - a*) / t,   a* = argmin_a  U0(a) + (x - a)^2 / (2 t),
        U0(a) = int_0^a u0 = (cos(pi a) - 1) / pi,

    a* being the label of the characteristic through (x, t) that the entropy condition keeps
    (one shock forms at x = 0 at t = 1/pi). The minimum is found on ``labels`` equally spaced
    labels within a distance t of x (characteristics move at |u0| <= 1), then refined by
    Newton's method on the characteristic equation a - t sin(pi a) = x, which it satisfies;
    the minimiser's F'' = 1/t - pi cos(pi a) >= 0 keeps the iteration on its branch.

    Used to show which part of an error is the viscous shock layer: a solver that has learned
    only the characteristics of the inviscid problem scores this function's error.
    """
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    shape = x.shape
    x, t = x.ravel(), t.ravel()
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    u = -np.sin(math.pi * x)  # t = 0
    moving = np.nonzero(t > 0)[0]
    offsets = np.linspace(-1.0, 1.0, labels)
    for lo in range(0, moving.size, chunk):
        i = moving[lo : lo + chunk]
        xi, ti = x[i], t[i]
        a = xi[:, None] + ti[:, None] * offsets[None, :]
        cost = (np.cos(math.pi * a) - 1.0) / math.pi + (xi[:, None] - a) ** 2 / (2 * ti[:, None])
        best = a[np.arange(i.size), np.argmin(cost, axis=1)]
        h = ti * (offsets[1] - offsets[0])  # label spacing: the Newton steps stay within it
        for _ in range(30):
            g = best - ti * np.sin(math.pi * best) - xi
            dg = 1.0 - math.pi * ti * np.cos(math.pi * best)
            step = np.where(dg > 0, g / np.where(dg > 0, dg, 1.0), 0.0)
            best = best - np.clip(step, -h, h)
        u[i] = (xi - best) / ti
    return u.reshape(shape)
