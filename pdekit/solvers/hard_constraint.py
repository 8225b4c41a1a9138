"""Hard physics constraints on a learned basis: Levenberg-Marquardt per sample and expert, with
implicit gradients, on a fixed partition of the space-time grid (PI-HC and PI-HC-MoE).

Chalapathi, Du & Krishnapriyan, "Scaling physics-informed hard constraints with
mixture-of-experts", ICLR 2024 (public code ASK-Berkeley/physics-NNs-hard-constraints, JAX, read
for its defaults only). A network outputs N basis functions b(t, x) on the grid; the prediction
is u = b . omega with omega in R^N chosen per sample -- and, with a mixture of experts, per piece
Omega_k of a fixed partition of the grid -- by nonlinear least squares::

    omega_k* = argmin_omega  1/2 || r_k(omega) ||^2,
    r_k(omega) = [ PDE residual of b . omega at m points sampled in Omega_k ;
                   initial- and boundary-condition rows (every expert gets all of them) ;
                   ridge * omega ],

solved by Levenberg-Marquardt in float64 (:func:`levenberg_marquardt`). The PDE rows are the
problem's own ``residual(f)``: the derivatives of u at the points are those of the basis (finite
differences on the grid, :func:`pdekit.problems.grid.grid_fields`) times omega, handed to the
residual through a :class:`PointFields` accessor, so no equation is written twice. The prediction
is stitched, u = sum_k (b . omega_k) 1_{Omega_k} (:class:`Partition`).

With the initial condition built in (the paper's NS ansatz, u = u0 + s(t) b . omega), the
terms of the fixed part u0 ride along as one more column of every tensor
(:class:`ConstraintSystem` ``offset``), and there are no initial-condition rows.

Backward (:class:`ConstrainedSolve`), by the implicit function theorem, no unrolling: at the
solution the gradient g(omega, b) = d/domega 1/2||r||^2 vanishes, so

    d omega*/d b = -H^{-1} dg/db,    H = dg/domega (the exact Hessian of 1/2||r||^2),

one dense N x N solve per sample and expert (paper, eq. 5).

Deviations from the reference code, each labelled where it is implemented:

- Least-squares rows are the residuals r, never r^2 (the reference code squares its
  Navier-Stokes residuals, so its LM minimises sum r^4).
- The relative initial-condition rows (b(0, x) omega - u0) / u0 divide by ``max(|u0|, ic_floor)``
  (the paper divides by u0, which is unbounded where u0 -> 0).
- Boundary rows are the problem's own boundary conditions (Dirichlet, Neumann, Robin) at the
  boundary faces, by one-sided second-order extrapolation of the basis from the cells. For
  diffusion-sorption that is the outflow condition u + D du/dn = 0 at x = 1, as PDEBench's
  generator imposes it; the paper's row u - D u_x has the growing sign (see
  :class:`~pdekit.problems.porous_medium.diffusion_sorption.DiffusionSorption`).
- State on cell centres (``state_location = "center"``) where the grid has boundaries: the face
  extrapolation assumes them. A grid periodic on every spatial axis has no boundary rows, and
  takes the state where the problem puts it (Navier-Stokes: at the nodes).

Fields derived from the state (Navier-Stokes in vorticity form: the velocity from the stream
function) enter through the problem's own ``complete``, which must be linear in the state (the
problem declares ``complete_is_linear``): the velocity of u = b . omega is sum_i omega_i
u(b_i), so each basis function is completed once and every derived term is again T omega. On a
periodic grid the spatial derivatives are spectral (:func:`grid_engine`), as in the reference
solver; in time, and on bounded grids, the grid path's second-order stencils.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pdekit.core.fields import LAPLACIAN, Fields, Key, declared_keys
from pdekit.core.stencil import fd_weights
from pdekit.errors import ConvergenceError, ParameterError
from pdekit.geometries.grid import Grid
from pdekit.problems.grid import bcs_by_side, grid_fields, side_data


# -- the accessor over values given at points --------------------------------------------------
class PointFields(Fields):
    """Fields whose values and derivatives at a set of points are given as tensors, the
    accessor through which a problem's residual runs on u = b . omega.

    ``terms``: ``{(field, key): tensor}`` (key as :func:`~pdekit.core.fields.parse_spec`
    returns it; ``()`` the value); ``coords``: one tensor per coordinate, broadcastable
    against the terms."""

    def __init__(
        self,
        coordinates: Sequence[str],
        fields: Sequence[str],
        terms: Mapping[tuple[str, Key], torch.Tensor],
        coords: Sequence[torch.Tensor],
        declared=None,
    ):
        super().__init__(coordinates, fields, declared)
        self._terms = dict(terms)
        self._coords = list(coords)

    def _term(self, field: str, key: Key) -> torch.Tensor:
        try:
            return self._terms[(field, key)]
        except KeyError:
            raise ParameterError(
                f"no values of the derivative {key} of {field!r} were computed at the points"
            ) from None

    def _value(self, field: str) -> torch.Tensor:
        return self._term(field, ())

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        return self._term(field, key)

    def _laplacian(self, field: str) -> torch.Tensor:
        return self._term(field, LAPLACIAN)

    def _coord(self, index: int) -> torch.Tensor:
        return self._coords[index]


def declared_terms(problem) -> list[tuple[str, Key]]:
    """Every (field, key) the problem's residual may read: each field's value and the
    derivatives its problem declares (the grid engines refuse any other), in a fixed order."""
    declared = declared_keys(problem.derivatives or {}, problem.coordinates)
    return [
        (name, key)
        for name in problem.fields
        for key in [(), *sorted(declared.get(name, ()), key=lambda k: (len(k), k))]
    ]


# -- the partition -----------------------------------------------------------------------------
class Partition:
    """A fixed, uniform, non-overlapping partition of a grid of ``shape`` (time first, then
    space) into ``splits[a]`` equal pieces along each axis a: the paper's router (a reshape, not
    learned). Experts are numbered in C order over the per-axis piece indices."""

    def __init__(self, shape: Sequence[int], splits: Sequence[int], names: Sequence[str] = ()):
        shape, splits = tuple(int(n) for n in shape), tuple(int(s) for s in splits)
        names = tuple(names) or tuple(f"axis {a}" for a in range(len(shape)))
        if len(splits) != len(shape):
            raise ParameterError(
                f"experts need one split per grid axis {names}; got {list(splits)}"
            )
        for n, s, name in zip(shape, splits, names, strict=True):
            if s < 1 or n % s:
                raise ParameterError(
                    f"the partition does not divide the grid: {s} pieces along {name} of "
                    f"{n} points (each axis's points must be a multiple of its pieces)"
                )
        self.shape, self.splits = shape, splits
        self.piece = tuple(n // s for n, s in zip(shape, splits, strict=True))
        self.experts = math.prod(splits)
        idx = [np.arange(n) // p for n, p in zip(shape, self.piece, strict=True)]
        owner = np.zeros(shape, dtype=np.int64)
        for a, i in enumerate(idx):
            expand = [1] * len(shape)
            expand[a] = -1
            owner = owner * splits[a] + i.reshape(expand)
        #: the expert owning each grid point, shape ``shape``
        self.owner = torch.from_numpy(owner)
        order = np.argsort(owner.reshape(-1), kind="stable")
        #: flat grid indices of each expert's points, ``(experts, points per piece)``
        self.members = torch.from_numpy(order.reshape(self.experts, -1))

    def sample(
        self, points: int, generator: torch.Generator | None = None, first_level: int = 0
    ) -> torch.Tensor:
        """``(experts, m)`` flat grid indices: m distinct points of each expert's piece drawn
        uniformly at random among those at time level (first axis) >= ``first_level``; m =
        ``points``, or the smallest number of such points an expert has, when that is fewer (so
        every expert has as many rows)."""
        per = self.members.shape[1]
        level = self.members // math.prod(self.shape[1:])
        eligible = level >= first_level
        have = int(eligible.sum(1).min())
        if have == 0:
            raise ParameterError(
                f"an expert has no grid points at time level >= {first_level}: split time into "
                "fewer pieces or start the PDE rows earlier"
            )
        m = min(int(points), have)
        if m == per:
            return self.members.clone()
        keys = torch.rand(self.experts, per, generator=generator)
        keys = torch.where(eligible, keys, torch.full_like(keys, 2.0))
        pick = keys.argsort(dim=1)[:, :m]
        return torch.gather(self.members, 1, pick)

    def stitch(self, per_expert: torch.Tensor) -> torch.Tensor:
        """``(B, experts, *shape)`` -> ``(B, *shape)``: each point from its own expert."""
        owner = self.owner.to(per_expert.device)
        index = owner.expand(per_expert.shape[0], 1, *self.shape)
        return torch.gather(per_expert, 1, index).squeeze(1)


# -- Levenberg-Marquardt -----------------------------------------------------------------------
@dataclass
class LMResult:
    """Per item (leading dims): the solution, the iterations taken, the final residual norm
    ||r|| and whether the tolerance was met."""

    omega: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor


def levenberg_marquardt(
    fun,
    omega0: torch.Tensor,
    *,
    max_iter: int = 50,
    tol: float = 1e-4,
    damping: float = 1e-3,
) -> LMResult:
    """Minimise 1/2 ||r(omega)||^2 for a batch of independent small problems.

    ``fun(omega) -> (r, J)`` with omega ``(*lead, N)``, r ``(*lead, M)``, J ``(*lead, M, N)``.
    Steps solve ``(J^T J + lam diag(J^T J)) delta = -J^T r`` (Marquardt's scaling), with
    lam divided by 3 after a step that does not raise the cost (beyond its round-off) and
    doubled after one that does (the step is then rejected). An item has converged when an
    accepted step is small and changes the cost little, ``max|delta| <= tol (1 + max|omega|)``
    and ``|cost change| <= tol (1 + cost)`` (rtol = atol = ``tol``, a Cauchy test in the
    spirit of optimistix's, which the paper's DS code uses); or when its gradient ``J^T r`` is
    zero to round-off (an exact fit included). Converged items stop changing.

    Deviation (ours): optimistix's Levenberg-Marquardt is a trust-region method with damping
    lam I and tests the change of every entry of omega and of r; ours is the classical
    Marquardt iteration above with a test on the max-norm of the step and on the cost. Both
    stop at a stationary point of the same objective, and the implicit gradient is taken there.
    """
    omega = omega0.clone()
    lead = omega.shape[:-1]
    r, jac = fun(omega)
    cost = 0.5 * (r * r).sum(-1)
    lam = torch.full(lead, float(damping), dtype=omega.dtype, device=omega.device)
    done = torch.zeros(lead, dtype=torch.bool, device=omega.device)
    iters = torch.zeros(lead, dtype=torch.long, device=omega.device)
    eye = torch.eye(omega.shape[-1], dtype=omega.dtype, device=omega.device)
    for _ in range(max_iter):
        a = jac.transpose(-1, -2) @ jac
        g = (jac.transpose(-1, -2) @ r.unsqueeze(-1)).squeeze(-1)
        # stationary to round-off (an exact fit included): no step can lower the cost
        eps = torch.finfo(omega.dtype).eps
        stationary = torch.linalg.vector_norm(g, dim=-1) <= 64 * eps * torch.linalg.matrix_norm(
            jac
        ) * torch.linalg.vector_norm(r, dim=-1)
        done = done | stationary
        if bool(done.all()):
            break
        diag = torch.diagonal(a, dim1=-2, dim2=-1).clamp(min=1e-12)
        lhs = a + lam[..., None, None] * torch.diag_embed(diag) + 1e-14 * eye
        delta = -torch.linalg.solve(lhs, g)
        new = omega + delta
        r_new, jac_new = fun(new)
        cost_new = 0.5 * (r_new * r_new).sum(-1)
        # accept a step that does not raise the cost beyond its round-off: near the minimum
        # the cost cannot resolve a Gauss-Newton step that still shrinks the gradient
        slack = 4 * torch.finfo(cost.dtype).eps * cost
        ok = torch.isfinite(cost_new) & (cost_new <= cost + slack) & ~done
        step_small = delta.abs().amax(-1) <= tol * (1.0 + omega.abs().amax(-1))
        cost_small = (cost - cost_new).abs() <= tol * (1.0 + cost)
        iters = iters + (~done).long()
        sel = ok[..., None]
        omega = torch.where(sel, new, omega)
        r = torch.where(sel, r_new, r)
        jac = torch.where(ok[..., None, None], jac_new, jac)
        cost = torch.where(ok, cost_new, cost)
        lam = torch.where(ok, lam / 3.0, lam * 2.0).clamp(1e-12, 1e12)
        done = done | (ok & step_small & cost_small)
        if bool(done.all()):
            break
    return LMResult(omega, iters, torch.linalg.vector_norm(r, dim=-1), done)


# -- the least-squares system of one batch -----------------------------------------------------
class ConstraintSystem:
    """The rows r(omega) of every (sample, expert) problem, from tensors the network made.

    Tensors (all float64, leading ``(B, K)``): for each PDE term j (:func:`declared_terms`)
    ``T_j`` ``(B, K, m, N)``, the basis term at the expert's m sampled points, so that the
    term of u is ``T_j omega``; the linear rows ``L`` ``(B, K, M, N)`` with targets ``c``
    ``(B, K, M)`` (initial and boundary conditions, already weighted). Rows:
    ``[residual(T omega) ; L omega - c ; ridge omega]``.

    With ``offset`` the tensors carry one more column than omega has entries, the terms of a
    fixed field added to every prediction (the built-in initial condition, u = u0 + b . omega):
    the term of u is ``T[..., :N] omega + T[..., N]``, and likewise for L.
    """

    def __init__(
        self,
        problem,
        terms: Sequence[tuple[str, Key]],
        coords,
        ridge: float,
        offset: bool = False,
    ):
        self.problem = problem
        self.terms = list(terms)
        self.coords = coords  # per coordinate, (K, m) (broadcast over the batch)
        self.ridge = float(ridge)
        self.offset = bool(offset)

    def combine(self, t: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """``t omega`` (plus the offset column, with ``offset``)."""
        n = omega.shape[-1]
        out = (t[..., :n] @ omega.unsqueeze(-1)).squeeze(-1)
        return out + t[..., n] if self.offset else out

    def pde(self, values: Sequence[torch.Tensor]) -> torch.Tensor:
        """The residual rows ``(B, K, E m)`` from the term values ``(B, K, m)``: every
        equation of ``problem.residual``, in its order."""
        p = self.problem
        f = PointFields(p.coordinates, p.fields, dict(zip(self.terms, values)), self.coords)
        res = p.residual(f)
        return torch.cat([torch.broadcast_to(v, values[0].shape) for v in res.values()], dim=-1)

    def rows(self, omega: torch.Tensor, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        *basis, lin, target = tensors
        values = [self.combine(t, omega) for t in basis]
        lin_rows = self.combine(lin, omega) - target
        return torch.cat([self.pde(values), lin_rows, self.ridge * omega], dim=-1)

    def rows_and_jacobian(self, omega: torch.Tensor, tensors: Sequence[torch.Tensor]):
        """r(omega) and dr/domega. The residual is pointwise in the term values, so its
        Jacobian is sum_j diag(dr/dq_j) T_j, with dr/dq_j from one backward pass per equation."""
        *basis, lin, target = tensors
        n = omega.shape[-1]
        with torch.enable_grad():  # dr/dq by autograd, also when answering under no_grad
            values = [self.combine(t, omega).detach().requires_grad_() for t in basis]
            basis = [t[..., :n] for t in basis]
            p = self.problem
            f = PointFields(p.coordinates, p.fields, dict(zip(self.terms, values)), self.coords)
            res = [torch.broadcast_to(v, values[0].shape) for v in p.residual(f).values()]
            pde_rows, pde_jac = [], []
            for eq in res:
                grads = torch.autograd.grad(eq.sum(), values, retain_graph=True, allow_unused=True)
                jac = sum(
                    g.unsqueeze(-1) * t for g, t in zip(grads, basis, strict=True) if g is not None
                )
                pde_rows.append(eq.detach())
                pde_jac.append(jac if torch.is_tensor(jac) else torch.zeros_like(basis[0]))
        n = omega.shape[-1]
        ridge = self.ridge * torch.eye(n, dtype=omega.dtype, device=omega.device)
        ridge = ridge.expand(*omega.shape[:-1], n, n)
        r = torch.cat([*pde_rows, self.combine(lin, omega) - target, self.ridge * omega], -1)
        jac = torch.cat([*pde_jac, lin[..., :n], ridge], dim=-2)
        return r, jac


class ConstrainedSolve(torch.autograd.Function):
    """omega* of every (sample, expert) problem; backward by the implicit function theorem.

    ``apply(system, options, omega0, *tensors)`` with ``options`` the keyword arguments of
    :func:`levenberg_marquardt`; the :class:`LMResult` of the last call is left in
    ``system.result``. Backward: with g = d/domega 1/2||r||^2 and H = dg/domega (exact, by
    N backward passes), v = H^{-1} (upstream gradient), and the gradient of every tensor is
    -(dg/dtensor)^T v.
    """

    @staticmethod
    def forward(ctx, system: ConstraintSystem, options: dict, omega0, *tensors):
        """omega* by :func:`levenberg_marquardt`, without autograd (see the class docstring)."""
        with torch.no_grad():
            result = levenberg_marquardt(
                lambda w: system.rows_and_jacobian(w, tensors), omega0, **options
            )
        system.result = result
        ctx.system = system
        ctx.save_for_backward(result.omega, *tensors)
        return result.omega

    @staticmethod
    def backward(ctx, grad_omega):
        omega, *tensors = ctx.saved_tensors
        system = ctx.system
        need = [i for i, t in enumerate(tensors) if ctx.needs_input_grad[3 + i]]
        if not need:
            return (None, None, None, *([None] * len(tensors)))
        with torch.enable_grad():
            w = omega.detach().requires_grad_()
            ts = [t.detach().requires_grad_(i in need) for i, t in enumerate(tensors)]
            r = system.rows(w, ts)
            (g,) = torch.autograd.grad(0.5 * (r * r).sum(), w, create_graph=True)
            hess = torch.stack(
                [
                    torch.autograd.grad(g[..., j].sum(), w, retain_graph=True)[0]
                    for j in range(w.shape[-1])
                ],
                dim=-2,
            )
            try:
                v = torch.linalg.solve(hess, grad_omega.unsqueeze(-1)).squeeze(-1)
            except torch.linalg.LinAlgError:
                raise ConvergenceError(
                    "the implicit gradient needs the Hessian of the least-squares problem at "
                    "its solution, and it is singular (a basis function that vanishes on every "
                    "row, with no ridge): use a ridge > 0"
                ) from None
            grads = torch.autograd.grad(
                g, [ts[i] for i in need], grad_outputs=-v, allow_unused=True
            )
        out: list[Any] = [None] * len(tensors)
        for i, gi in zip(need, grads, strict=True):
            out[i] = gi
        return (None, None, None, *out)


# -- the rows of a problem on a grid -----------------------------------------------------------
def face_weights(location: str, h: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order one-sided weights (value, d/dx) at a lower boundary face from the three
    samples nearest to it (cell centres at h/2, 3h/2, 5h/2, or nodes at 0, h, 2h)."""
    off = (0.5, 1.5, 2.5) if location == "center" else (0.0, 1.0, 2.0)
    value = torch.tensor(fd_weights(off, 0), dtype=torch.float64)
    slope = torch.tensor(fd_weights(off, 1), dtype=torch.float64) / h
    return value, slope


def boundary_rows(problem, field: str, grid: Grid, times: np.ndarray, location: str):
    """The problem's boundary conditions on ``field`` as linear rows on gridded arrays.

    Returns a list of ``(k, side, coef_value, coef_slope, target)``: at the end ``side`` (-1, +1)
    of axis ``k``, for every time of ``times`` and face position, the condition
    ``a u + b du/dn = g`` with ``coef_value`` = a, ``coef_slope`` = b times the sign of the
    outward normal, as tensors ``(len(times), *tangential)``.
    """
    out = []
    for (k, s), bc in sorted(bcs_by_side(problem, grid, field).items()):
        side = side_data(bc, field, grid, k, s, location, times, torch.float64, None)
        a, b = {"dirichlet": (1.0, 0.0), "neumann": (0.0, 1.0)}.get(side.kind, (side.a, side.b))
        shape = side.value.shape
        a = torch.broadcast_to(torch.as_tensor(a, dtype=torch.float64), shape)
        b = torch.broadcast_to(torch.as_tensor(b, dtype=torch.float64), shape)
        out.append((k, s, a, b * s, side.value))
    return out


def grid_face(values: torch.Tensor, axis: int, side: int, location: str, h: float):
    """(value, d/dx) at the ``side`` end of ``axis`` of gridded ``values`` (axis counted in
    ``values``), by :func:`face_weights`; the axis is removed."""
    wv, ws = face_weights(location, h)
    n = values.shape[axis]
    idx = torch.arange(3, device=values.device) if side < 0 else n - 1 - torch.arange(3)
    near = values.index_select(axis, idx.to(values.device))
    shape = [1] * values.ndim
    shape[axis] = 3
    wv = wv.to(values).reshape(shape)
    ws = (ws if side < 0 else -ws).to(values).reshape(shape)  # offsets mirrored at the upper end
    return (near * wv).sum(axis), (near * ws).sum(axis)


def grid_engine(grid: Grid) -> str:
    """The spatial engine of the grid path: ``"spectral"`` (FFT derivatives) when every spatial
    axis is periodic, else ``"stencil"`` (second-order finite differences)."""
    return "spectral" if all(grid.periodic) else "stencil"


def state_fields(problem, state: torch.Tensor, grid: Grid, times) -> Fields:
    """The grid path's accessor (:func:`~pdekit.problems.grid.grid_fields`, second order,
    :func:`grid_engine`, no boundary conditions) over the problem's one state field
    ``state`` ``(*batch, nt, *space)`` and the fields derived from it by ``problem.complete``
    (Navier-Stokes in vorticity form: the velocity). Derived fields must be linear in the state
    (the problem declares ``complete_is_linear``), so that each basis function's derived
    fields, times omega, are those of u = b . omega."""
    name, loc = problem.state[0], problem.state_location
    values = {name: state}
    if tuple(problem.fields) != (name,):
        values = problem.complete({name: state}, grid)
    return grid_fields(problem, values, grid, times=times, boundary=False, locations=loc,
                       engine=grid_engine(grid))  # fmt: skip


def build_tensors(
    problem,
    basis: torch.Tensor,
    initial: torch.Tensor,
    grid: Grid,
    times: np.ndarray,
    partition: Partition,
    index: torch.Tensor,
    *,
    ic_relative: bool = True,
    ic_floor: float = 1e-3,
    bc_rows: list | None = None,
    ic_rows: bool = True,
):
    """The tensors of :class:`ConstraintSystem` for a batch.

    basis: ``(B, nt, *space, N)`` float64 on the grid (state location); initial: ``(B,
    *space)`` the initial state; index: ``(K, m)`` flat space-time indices of each expert's
    points (:meth:`Partition.sample`); bc_rows: :func:`boundary_rows` at ``times[1:]`` when
    already computed (they depend on the problem and grid only); ic_rows: False leaves the
    initial-condition rows out (a prediction with the initial condition built in: ``basis``
    then ends with the offset column, see :class:`ConstraintSystem`). Returns ``(terms,
    coords, tensors)``.
    """
    field = problem.state[0]
    loc = problem.state_location
    b, n = basis.shape[0], basis.shape[-1]
    k_exp, m = index.shape
    moved = basis.movedim(-1, 1)  # (B, N, nt, *space)
    f = state_fields(problem, moved, grid, times)
    terms = declared_terms(problem)
    flat_index = index.reshape(-1).to(basis.device)
    tensors = []
    for name, key in terms:
        if key == ():
            full = f[name]
        elif key == LAPLACIAN:
            full = f.laplacian(name)
        else:
            full = f.d(name, tuple(problem.coordinates[i] for i in key))
        full = torch.broadcast_to(full, moved.shape).reshape(b, n, -1)
        picked = full.index_select(2, flat_index).reshape(b, n, k_exp, m)
        tensors.append(picked.permute(0, 2, 3, 1))
    # coordinates of the points
    axes = grid.axes(loc)
    coord_arrays = [np.asarray(times) if c == "t" else np.asarray(axes[c])
                    for c in problem.coordinates]  # fmt: skip
    order = ["t", *[c for c in problem.coordinates if c != "t"]]  # the grid's axis order
    mesh = np.meshgrid(*[coord_arrays[problem.coordinates.index(c)] for c in order], indexing="ij")
    coords = []
    for c in problem.coordinates:
        flat = torch.as_tensor(mesh[order.index(c)].reshape(-1), dtype=torch.float64)
        coords.append(flat[index.reshape(-1)].reshape(k_exp, m).to(basis.device))
    # linear rows: initial condition (relative), then the boundary conditions at t > t0
    rows, targets = [basis.new_zeros(b, 0, n)], [basis.new_zeros(b, 0)]
    if ic_rows:  # (none when the initial condition is built into the prediction)
        b0 = basis[:, 0].reshape(b, -1, n)
        u0 = initial.reshape(b, -1).to(basis)
        w = 1.0 / u0.abs().clamp(min=ic_floor) if ic_relative else torch.ones_like(u0)
        rows.append(b0 * w[..., None])
        targets.append(u0 * w)
    h = grid.spacing
    if bc_rows is None:
        bc_rows = boundary_rows(problem, field, grid, np.asarray(times[1:]), loc)
    for k, s, a, bn, g in bc_rows:
        val, slope = grid_face(basis[:, 1:], 2 + k, s, loc, h[k])  # (B, nt-1, *tang, N)
        a_, bn_ = a.to(basis)[None, ..., None], bn.to(basis)[None, ..., None]
        rows.append((a_ * val + bn_ * slope).reshape(b, -1, n))
        targets.append(torch.broadcast_to(g.to(basis)[None], val.shape[:-1]).reshape(b, -1))
    lin = torch.cat(rows, 1)[:, None].expand(b, k_exp, -1, n)
    target = torch.cat(targets, 1)[:, None].expand(b, k_exp, -1)
    return terms, coords, [*tensors, lin, target]


# -- experts across ranks ----------------------------------------------------------------------
class ExpertPlacement:
    """The experts of a partition placed across the ranks of a process group (``dist``, a
    :class:`~pdekit.solvers.distributed.Distributed`) in contiguous blocks, rank r holding
    experts r E / W to (r + 1) E / W - 1 of E on W ranks and running their Levenberg-Marquardt
    solves, and their implicit backward, for the samples of every rank.

    Every rank must hold the same number of experts (so the gathers are of equal size and no
    rank idles): E must be a multiple of W. A partition of fewer experts than ranks, or one
    the ranks cannot share out evenly, is refused with a :class:`ParameterError`.

    Data flow (:class:`ToOwners`, :class:`FromOwners`): every rank builds the rows of its own
    samples for every expert; the rows of expert k travel to k's rank (an all-gather, each rank
    keeping its block), which solves them for all W B samples; the solutions travel back to the
    samples' ranks. The two moves are each other's adjoints, so each one's backward is the
    other's forward and a rank's gradient is that of its own samples' loss, as in one process.
    The per-rank batches must be of equal size B (the dataset task's batches are).
    """

    def __init__(self, experts: int, dist, what: str = "constraint.experts"):
        world = int(dist.world_size)
        if experts % world:
            multiples = ", ".join(str(world * i) for i in (1, 2, 3))
            raise ParameterError(
                f"{what} make {experts} expert(s), which {world} ranks cannot share out evenly: "
                "under torchrun the experts are placed across the ranks in equal contiguous "
                f"blocks, so the number of experts must be a multiple of the {world} ranks "
                f"({multiples}, ...); change {what} or the number of processes, or solve every "
                "expert on every rank (constraint.placement = 'local')"
            )
        self.dist = dist
        self.experts, self.world, self.rank = int(experts), world, int(dist.rank)
        self.per = self.experts // world
        self.lo, self.hi = self.rank * self.per, (self.rank + 1) * self.per

    def owner(self, expert: int) -> int:
        """The rank that holds ``expert``."""
        return int(expert) // self.per

    def _all_gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        import torch.distributed as tdist

        dev = t.device
        send = t.detach().contiguous().to(self.dist.comm_device)
        parts = [torch.empty_like(send) for _ in range(self.world)]
        tdist.all_gather(parts, send)
        return [p.to(dev) for p in parts]

    def broadcast(self, t: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``t`` (same shape and dtype on every rank) on every rank."""
        import torch.distributed as tdist

        buf = t.detach().contiguous().to(self.dist.comm_device).clone()
        tdist.broadcast(buf, src=0)
        return buf.to(t.device)

    def to_owners(self, t: torch.Tensor) -> torch.Tensor:
        """``(B, E, ...)`` of this rank's samples -> ``(W B, E / W, ...)``: every rank's samples
        (in rank order) for this rank's experts."""
        return torch.cat([g[:, self.lo : self.hi] for g in self._all_gather(t)], 0)

    def from_owners(self, t: torch.Tensor) -> torch.Tensor:
        """``(W B, E / W, ...)`` held by each owner -> ``(B, E, ...)``: this rank's samples for
        every expert."""
        b = t.shape[0] // self.world
        rows = slice(self.rank * b, (self.rank + 1) * b)
        return torch.cat([g[rows] for g in self._all_gather(t)], 1)


class ToOwners(torch.autograd.Function):
    """``apply(placement, *tensors)``: :meth:`ExpertPlacement.to_owners` of each tensor;
    backward: :meth:`ExpertPlacement.from_owners` of the gradients (its adjoint)."""

    @staticmethod
    def forward(ctx, placement: ExpertPlacement, *tensors):
        """Each tensor's rows moved to the ranks of their experts."""
        ctx.placement = placement
        return tuple(placement.to_owners(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads):
        """The gradients moved back to the ranks of their samples."""
        place = ctx.placement
        return (None, *(place.from_owners(g) for g in grads))


class FromOwners(torch.autograd.Function):
    """``apply(placement, t)``: :meth:`ExpertPlacement.from_owners`; backward:
    :meth:`ExpertPlacement.to_owners` of the gradient (its adjoint)."""

    @staticmethod
    def forward(ctx, placement: ExpertPlacement, t):
        """The experts' solutions moved to the ranks of their samples."""
        ctx.placement = placement
        return placement.from_owners(t)

    @staticmethod
    def backward(ctx, grad):
        """The gradient moved to the ranks of the experts."""
        return None, ctx.placement.to_owners(grad)
