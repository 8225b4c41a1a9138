"""Operators of the Lagrangian frame in one space dimension: chain rule and inverse map.

A Lagrangian description labels each characteristic by its starting point ``a`` (the label
x0) and follows its position ``X(a, t)``; a field is carried as ``w(a, t) = u(X(a, t), t)``.
While ``X(., t)`` is strictly increasing (characteristics do not cross) the Eulerian field is
recovered by inverting the map: ``u(x, t) = w(X^{-1}(x, t), t)``.

Both functions here are pure: they take tensors (or callables) and return tensors, and know
nothing of networks or problems (Mojgani, Balajewicz & Hassanzadeh, CMAME 404:115810, 2023,
for the Lagrangian PINN built on them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: ``char(a, t) -> (X, dX/da)``: characteristic positions and their label derivative
CharacteristicFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def physical_derivatives(
    w_a: torch.Tensor, w_aa: torch.Tensor | None, X_a: torch.Tensor, X_aa: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """First and second derivatives in the physical coordinate, from label derivatives.

    With ``w(a, t) = u(X(a, t), t)`` the chain rule gives

        u_x  = w_a / X_a,
        u_xx = d/da (w_a / X_a) / X_a = (w_aa X_a - w_a X_aa) / X_a^3.

    Parameters
    ----------
    w_a, w_aa: first and second label derivatives of the carried field (``w_aa`` may be None
        when only ``u_x`` is wanted).
    X_a, X_aa: first and second label derivatives of the characteristic position.

    Returns
    -------
    (u_x, u_xx): ``u_xx`` is None when ``w_aa`` or ``X_aa`` is None.
    """
    u_x = w_a / X_a
    if w_aa is None or X_aa is None:
        return u_x, None
    return u_x, (w_aa * X_a - w_a * X_aa) / X_a**3


def state_residual(
    w_t: torch.Tensor,
    w_a: torch.Tensor,
    w_aa: torch.Tensor,
    X_a: torch.Tensor,
    X_aa: torch.Tensor,
    diffusivity: float | torch.Tensor,
    form: str = "cleared",
) -> torch.Tensor:
    """Residual of ``u_t + f1 u_x = f2 u_xx`` carried along characteristics: ``w_t - f2 u_xx``.

    ``form="divided"``: ``w_t - f2 (w_aa X_a - w_a X_aa) / X_a^3`` (the physical ``u_xx`` of
    :func:`physical_derivatives`). ``form="cleared"``: the same multiplied by ``X_a^3``,

        X_a^3 w_t - f2 (w_aa X_a - w_a X_aa),

    which vanishes exactly where the divided form does (``X_a > 0`` on a valid map) but is a
    polynomial in the label derivatives: bounded where characteristics converge (``X_a -> 0``
    at a shock), where the divided form, and its gradient, are amplified by ``X_a^-3``.

    ``diffusivity`` is the diffusion coefficient ``f2``: a number (constant ``D``) or a tensor
    of its values at the points, ``f2(X, t, w)`` (Mojgani et al. 2023, eq. 2b, state-dependent
    diffusion); it multiplies pointwise either way.
    """
    if form == "divided":
        return w_t - diffusivity * physical_derivatives(w_a, w_aa, X_a, X_aa)[1]
    if form == "cleared":
        return X_a**3 * w_t - diffusivity * (w_aa * X_a - w_a * X_aa)
    raise ValueError(f"form must be 'cleared' or 'divided'; got {form!r}")


def invert_characteristics(
    char: CharacteristicFn,
    x: torch.Tensor,
    t: torch.Tensor,
    lo: float,
    hi: float,
    *,
    periodic: bool,
    tol: float = 1e-13,
    max_iter: int = 200,
) -> torch.Tensor:
    """Labels ``a`` with ``X(a, t) = x``: the inverse of a monotone characteristic map.

    Safeguarded Newton iteration on a bracket (Newton steps that leave the bracket are replaced
    by bisection, as in Numerical Recipes' ``rtsafe``), vectorised over all points, each with
    its own time.

    * Periodic labels on ``[lo, hi)`` of period ``P = hi - lo``: ``X(a, t) - a`` is periodic,
      so ``X(a + mP, t) = X(a, t) + mP`` and one evaluation brackets the root exactly
      (``a_lo = a0 + mP`` with ``m = floor((x - X(a0)) / P)``, ``a_hi = a_lo + P``); the
      returned label is wrapped into ``[lo, hi)``.
    * Bounded labels on ``[lo, hi]``: the bracket is ``[lo, hi]``; points outside
      ``[X(lo, t), X(hi, t)]`` (not reached by any characteristic) get the nearest end label.

    Parameters
    ----------
    char: ``char(a, t) -> (X, X_a)`` for label and time tensors of equal shape.
    x, t: query positions and times, 1-D tensors of equal length (float64 recommended).
    lo, hi: label interval.
    periodic: whether the label axis is periodic with period ``hi - lo``.
    tol: convergence when ``|X(a) - x| <= tol (1 + |x|)`` or the bracket is narrower than
        ``tol (1 + |a|)``.
    max_iter: iteration cap (bisection alone halves the bracket each step, so about 50
        iterations reach float64 resolution even where ``X_a`` vanishes).

    Returns
    -------
    Labels ``a`` (same shape as ``x``). Where ``X(., t)`` is not monotone (characteristics have
    crossed) the result is one of the preimages of ``x``.
    """
    if x.shape != t.shape or x.ndim != 1:
        raise ValueError(f"x and t must be 1-D of equal length; got {x.shape} and {t.shape}")
    if x.numel() == 0:
        return x.clone()
    period = hi - lo
    if periodic:
        a0 = torch.remainder(x - lo, period) + lo
        X0, _ = char(a0, t)
        m = torch.floor((x - X0) / period)
        a_lo = a0 + m * period
        X_lo = X0 + m * period
        a_hi, X_hi = a_lo + period, X_lo + period
    else:
        a_lo, a_hi = torch.full_like(x, lo), torch.full_like(x, hi)
        X_lo, _ = char(a_lo, t)
        X_hi, _ = char(a_hi, t)
    # the secant through the bracket ends is the first guess
    span = torch.where(X_hi > X_lo, X_hi - X_lo, torch.ones_like(X_hi))
    frac = torch.clamp((x - X_lo) / span, 0.0, 1.0)
    a = a_lo + frac * (a_hi - a_lo)
    if not periodic:  # outside the reached interval: the nearest end label
        below, above = x <= X_lo, x >= X_hi
        a = torch.where(below, a_lo, torch.where(above, a_hi, a))
        active = ~(below | above)
    else:
        active = torch.ones_like(x, dtype=torch.bool)
    for _ in range(max_iter):
        idx = torch.nonzero(active).reshape(-1)
        if idx.numel() == 0:
            break
        ai, ti, xi = a[idx], t[idx], x[idx]
        Xi, Xai = char(ai, ti)
        f = Xi - xi
        lo_i = torch.where(f < 0, ai, a_lo[idx])
        hi_i = torch.where(f > 0, ai, a_hi[idx])
        a_lo[idx], a_hi[idx] = lo_i, hi_i
        newton = ai - f / Xai
        ok = torch.isfinite(newton) & (Xai > 0) & (newton > lo_i) & (newton < hi_i)
        a_new = torch.where(ok, newton, 0.5 * (lo_i + hi_i))
        converged = (f.abs() <= tol * (1 + xi.abs())) | (hi_i - lo_i <= tol * (1 + ai.abs()))
        a[idx] = torch.where(converged, ai, a_new)
        active[idx] = ~converged
    if periodic:
        a = torch.remainder(a - lo, period) + lo
    return a
