"""Cross-engine agreement: one problem residual, four engines, one field (float64).

For a registered problem of each family, the field is a small random tanh network whose
spatial axes pass through the exact periodic embedding (cos x, sin x), so it is smooth and
periodic in space and smooth in time: its derivatives are known to round-off through
:class:`~pdekit.core.AutogradFields` (the reference). On a space-time grid of node samples
(periodic in space, both ends included in time) the same ``problem.residual(f)`` is evaluated
by

* :class:`~pdekit.core.TaylorFields` on the grid points: equal to round-off;
* :class:`~pdekit.core.StencilFields` of order p (2, 4) on the sampled values (periodic in space,
  one-sided "free" closures in time): the difference falls at order p under refinement;
* :class:`~pdekit.core.SpectralFields` (FFT in space, order-4 stencil in time): the difference
  falls at least at order 4 (the time stencil; the spatial error is spectrally small).

A wrong term in any engine (a sign, a factor, a swapped axis) leaves an O(1) difference that
does not fall with h, so these checks cannot pass by accident.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.core import AutogradFields, SpectralFields, StencilFields, TaylorFields
from pdekit.problems import get
from pdekit.solvers.networks import MLP, CoordinateEmbedding

#: one problem per family, with the coarse grid (spatial points per periodic axis, time
#: intervals); the fine grid doubles both. The coarse grids are the smallest at which the
#: order-4 stencil is in its asymptotic range (observed orders, coarse -> fine: Taylor-Green
#: 3.80, heat 3.93, Allen-Cahn 3.99; one level coarser gives 3.51, 3.74, 4.62).
PROBLEMS = {
    "navier_stokes/taylor_green": (32, 16),
    "porous_medium/heat": (64, 32),
    "convection_diffusion/allen_cahn": (64, 32),
}

#: |observed order - declared order| allowed for a stencil (the issue's convergence band)
ORDER_BAND = 0.3
#: Taylor vs autograd, same network, float64: both are exact chain rules, round-off only
ROUNDOFF = 1e-12


def network(problem, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    dom = problem.domain()
    emb = CoordinateEmbedding(dom.bounds, dom.periodic, harmonics=1)
    return MLP(emb, len(problem.fields), width=16, depth=2).double()


def grid(problem, n_space: int, n_time: int):
    """Axes (node samples: periodic without the endpoint, time with both ends) and spacings."""
    dom = problem.domain()
    lo, hi = dom.bounds
    axes, spacing = [], []
    for i, per in enumerate(dom.periodic):
        n = n_space if per else n_time + 1
        h = (hi[i] - lo[i]) / (n if per else n - 1)
        axes.append(lo[i] + h * np.arange(n))
        spacing.append(h)
    return axes, spacing, lo


def evaluate(problem, n_space: int, n_time: int) -> dict[str, dict[str, torch.Tensor]]:
    """The residual through each engine on one grid, flattened in 'ij' point order."""
    model = network(problem)
    axes, spacing, lo = grid(problem, n_space, n_time)
    shape = tuple(a.size for a in axes)
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    coords, fields, decl = problem.coordinates, problem.fields, problem.derivatives
    periodic = problem.domain().periodic

    x = torch.as_tensor(mesh).requires_grad_(True)
    y = model(x)
    out = {}
    auto = AutogradFields(x, {f: y[:, i] for i, f in enumerate(fields)}, coords, decl)
    out["autograd"] = problem.residual(auto)
    out["taylor"] = problem.residual(TaylorFields(model, x.detach(), coords, fields, decl))
    values = {f: y[:, i].detach().reshape(shape) for i, f in enumerate(fields)}
    for order in (2, 4):
        sf = StencilFields(
            values,
            coords,
            spacing,
            origin=lo.tolist(),
            order=order,
            boundary=["periodic" if p else "free" for p in periodic],
            location="node",
            declared=decl,
        )
        out[f"stencil{order}"] = problem.residual(sf)
    sp = SpectralFields(
        values, coords, spacing, origin=lo.tolist(), periodic=periodic, order=4, declared=decl
    )
    out["spectral"] = problem.residual(sp)
    return {e: {k: _flat(v.detach(), shape) for k, v in r.items()} for e, r in out.items()}


def _flat(v: torch.Tensor, shape) -> torch.Tensor:
    """A pointwise (n,) or grid-shaped residual as (n,) in 'ij' order."""
    return v if v.ndim == 1 else torch.broadcast_to(v, shape).reshape(-1)


def difference(res: dict, engine: str) -> float:
    """max over components of max |engine - autograd| / max |autograd|."""
    ref = res["autograd"]
    return max(float((res[engine][k] - ref[k]).abs().max() / ref[k].abs().max()) for k in ref)


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def refined(request):
    problem = get(request.param)
    n_space, n_time = PROBLEMS[request.param]
    return problem, evaluate(problem, n_space, n_time), evaluate(problem, 2 * n_space, 2 * n_time)


def test_taylor_equals_autograd(refined):
    problem, coarse, fine = refined
    for res in (coarse, fine):
        assert difference(res, "taylor") <= ROUNDOFF, problem.name


@pytest.mark.parametrize("order", [2, 4])
def test_stencil_converges_at_its_order(refined, order):
    problem, coarse, fine = refined
    e1, e2 = difference(coarse, f"stencil{order}"), difference(fine, f"stencil{order}")
    observed = math.log2(e1 / e2)
    print(f"\n{problem.name} stencil order {order}: {e1:.2e} -> {e2:.2e}, order {observed:.2f}")
    assert abs(observed - order) <= ORDER_BAND, (problem.name, e1, e2)


def test_spectral_converges_at_least_at_time_order(refined):
    problem, coarse, fine = refined
    e1, e2 = difference(coarse, "spectral"), difference(fine, "spectral")
    observed = math.log2(e1 / e2)
    print(f"\n{problem.name} spectral (time order 4): {e1:.2e} -> {e2:.2e}, order {observed:.2f}")
    # order >= 4 - band: the order-4 time stencil bounds it from below; the spatial part is
    # spectral, so a faster fall (spatial error still visible on the coarse grid) is fine
    assert observed >= 4 - ORDER_BAND, (problem.name, e1, e2)
