"""The DeepXDE baseline: the same problem, solved as a vanilla PINN through DeepXDE's own API.

The problem's residual (written once against pdekit's fields accessor) is evaluated with
DeepXDE's derivative machinery (``dde.grad.jacobian`` / ``dde.grad.hessian``) inside a DeepXDE
``pde(x, y)`` function; geometry, initial and boundary conditions become ``dde.geometry``,
``dde.icbc.IC``, ``DirichletBC``, ``NeumannBC``, ``RobinBC``, ``PeriodicBC`` and, for a
``"traction"`` condition ``b du_i/dn - p n_i = g_i``, one ``OperatorBC`` per component
(:func:`traction_residual`); the network is ``dde.nn.FNN``; training is
``dde.Model.compile/train`` with the same learning-rate schedule, collocation counts and loss
weights as pdekit's ``pinn``, so the two are directly comparable.
Periodic axes are enforced DeepXDE's way, by ``PeriodicBC`` losses on values and first
derivatives (``network.periodic_harmonics`` is not used). DeepXDE redraws only the residual
points when resampling (its ``PDEPointResampler`` needs a fixed number of boundary points);
initial and boundary points are drawn once. Errors come from the same
``Solution.errors()``.

Mesh domains (:class:`~pdekit.geometries.mesh.MeshGeometry`, 2D or 3D, steady or under a
``SpaceTime``) become a DeepXDE geometry of our own (:func:`mesh_geometry`): interior points
are drawn from the mesh (uniform by volume, ``sampling.method``) at every draw, so DeepXDE's
resampler redraws them as it does on a box; the boundary points are drawn once, as on a box,
``sampling.n_boundary // len(bcs)`` per boundary condition on that condition's tag (pinn's
split; on a box DeepXDE draws ``n_boundary`` over the whole boundary and each condition keeps
those on its side), with the mesh's outward normals, and each condition applies at its own
points only (looked up in a KD-tree). Deviations from pinn: those boundary points are fixed for
the whole run (pinn redraws them every step), and, as on a box, DeepXDE also evaluates the
residual at the boundary points. DeepXDE's own ``PointCloud`` is not used: it would keep the
interior points fixed too, and its ``boundary_normal`` (DeepXDE 1.15) returns the normals in
the order of its own points, not of the points asked about, which its shuffled boundary draw
then mismatches.

``train.lbfgs_steps`` and ``train.time_budget_s`` mean what they mean for pdekit's Trainer:
that many L-BFGS iterations after Adam (see :func:`_lbfgs_options` for the DeepXDE bug this works
around), and with a budget Adam hands over at ``1 - lbfgs_budget_share`` of it and L-BFGS stops
when it is spent.

Resuming a DeepXDE run is not supported: its training loop is DeepXDE's, whose optimiser state
pdekit does not own. Checkpoints still save and load the trained network.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree

from pdekit.core.allocator import retain_freed_memory
from pdekit.core.fields import Fields, parse_spec
from pdekit.errors import ParameterError
from pdekit.geometries.mesh import MeshGeometry
from pdekit.geometries.primitives import Hyperrectangle
from pdekit.geometries.spacetime import SpaceTime
from pdekit.problems.base import Problem
from pdekit.solution import Solution
from pdekit.solvers import distributed
from pdekit.solvers.base import RunOptions, Solver, network_predictor
from pdekit.solvers.networks import NetworkConfig
from pdekit.solvers.physics import SamplingConfig, WeightsConfig, residual_names
from pdekit.solvers.registry import register_solver
from pdekit.solvers.training import TrainConfig, select_device


def _set_default_device(device: torch.device) -> None:
    # None clears torch's default-device mode: CPU without the per-call overhead of the mode
    torch.set_default_device(None if device.type == "cpu" else device)


@contextlib.contextmanager
def _default_device(device: torch.device):
    """torch's default device set to ``device`` inside (DeepXDE creates its tensors there)."""
    before = torch.get_default_device()
    _set_default_device(device)
    try:
        yield
    finally:
        _set_default_device(before)


def _dde():
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    # DeepXDE's PyTorch backend makes CUDA torch's default device for the whole process when a
    # GPU is present; the rest of pdekit places its tensors itself and must not inherit that
    before = torch.get_default_device()
    # DeepXDE announces its backend on import ("Using backend: pytorch ... paddle supports more
    # examples now and is recommended."): not pdekit's to say
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import deepxde as dde

    _set_default_device(before)

    if dde.backend.backend_name != "pytorch":
        raise RuntimeError(
            f"DeepXDE was imported with backend {dde.backend.backend_name!r}; pdekit's baseline "
            "needs DDE_BACKEND=pytorch (import pdekit before deepxde)"
        )
    return dde


@dataclass
class DeepXDEConfig:
    """Configuration of the DeepXDE baseline (same fields and defaults as ``pinn``)."""

    network: NetworkConfig = field(default_factory=lambda: NetworkConfig(periodic_harmonics=0))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        # DeepXDE's FNN is a plain MLP: refuse the options it cannot honour, not ignore them
        n = self.network
        for name, value, plain in (
            ("kind", n.kind, "mlp"),
            ("fourier_features", n.fourier_features, 0),
            ("factorization", n.factorization, False),
        ):
            if value != plain:
                raise ParameterError(
                    f"network.{name} = {value!r}: the deepxde baseline builds DeepXDE's plain "
                    f"FNN; allowed: {plain!r} (pinn and causal_pinn offer the other networks)"
                )
        if self.sampling.density != "uniform":
            raise ParameterError(
                f"sampling.density = {self.sampling.density!r}: the deepxde baseline draws "
                "its points uniformly; allowed: 'uniform' (pinn offers 'mesh')"
            )
        if self.sampling.lbfgs_n_interior:
            raise ParameterError(
                f"sampling.lbfgs_n_interior = {self.sampling.lbfgs_n_interior!r}: DeepXDE's "
                "L-BFGS trains on the points it drew for Adam; allowed: 0 (pinn and "
                "lagrangian_pinn offer it)"
            )
        if self.sampling.adaptive.enabled:
            raise ParameterError(
                f"sampling.adaptive.method = {self.sampling.adaptive.method!r}: the deepxde "
                "baseline samples through DeepXDE, which has no residual-based adaptive "
                "sampling of this kind; allowed: 'none' (pinn and lagrangian_pinn offer it)"
            )


#: L-BFGS iterations per call of the optimiser's ``step`` when a time budget is set: DeepXDE
#: runs its callbacks (the budget's included) only between calls, so this bounds the overrun;
#: each call costs one loss evaluation more than the same iterations run in one call
LBFGS_ITERATIONS_PER_CALL_BUDGETED = 20
#: without a budget, DeepXDE's own split (its default maxiter 15000 gives 1000 per call)
LBFGS_ITERATIONS_PER_CALL = 1000


def _lbfgs_options(dde, iterations: int, per_call: int) -> None:
    """DeepXDE's L-BFGS set to ``iterations`` iterations in calls of at most ``per_call``.

    DeepXDE's PyTorch loop calls ``torch.optim.LBFGS.step`` until ``maxiter`` iterations are
    done, each call running up to ``iter_per_step`` iterations and ``fun_per_step`` loss
    evaluations. DeepXDE 1.15 computes those two once, at import, from its default maxiter
    (15000), and ``set_LBFGS_options`` leaves them alone, so every call ran up to 1000
    iterations whatever maxiter said (``train.lbfgs_steps=1`` ran a thousand; reported
    upstream, lululxvi/deepxde PR #2080, open). They are set here from ``iterations``, in
    DeepXDE's proportions (``maxfun`` = 1.25 ``maxiter``).
    """
    dde.optimizers.config.set_LBFGS_options(maxiter=iterations)
    options = dde.optimizers.config.LBFGS_options
    options["iter_per_step"] = min(per_call, iterations)
    options["fun_per_step"] = max(1, options["maxfun"] * options["iter_per_step"] // iterations)


def _time_budget_callback(dde, seconds: float):
    """A DeepXDE callback that stops training after the first step (Adam) or optimiser call
    (L-BFGS, :data:`LBFGS_ITERATIONS_PER_CALL_BUDGETED` iterations) ending ``seconds`` after
    training began (``train.time_budget_s``, as pdekit's Trainer does)."""

    class TimeBudget(dde.callbacks.Callback):
        def on_train_begin(self):
            self.start = time.perf_counter()

        def on_batch_end(self):
            if time.perf_counter() - self.start >= seconds:
                self.model.stop_training = True

    return TimeBudget()


def _log_callback(dde, total: int, every: int, names: list[str]):
    """A DeepXDE callback printing pdekit's log line (``pdekit: step N/total  loss=... <term>=...
    lr=...  x steps/s``, the Trainer's format) every ``every`` steps, from the loss terms DeepXDE
    evaluates there; DeepXDE's own table (unnamed columns) is switched off."""

    class Log(dde.callbacks.Callback):
        def on_train_begin(self):
            self.last = (self.model.train_state.step, time.perf_counter())

        def on_epoch_end(self):
            state = self.model.train_state
            if state.step % every and state.step != total:
                return
            terms = np.asarray(state.loss_train, dtype=float).reshape(-1)
            now = time.perf_counter()
            rate = (state.step - self.last[0]) / max(now - self.last[1], 1e-12)
            self.last = (state.step, now)
            parts = [f"loss={terms.sum():.3e}"]
            parts += [f"{n}={v:.2e}" for n, v in zip(names, terms)]
            lr = self.model.opt.param_groups[0]["lr"] if hasattr(self.model, "opt") else None
            lr_text = f"  lr={lr:.3g}" if lr is not None else ""
            print(
                f"pdekit: step {state.step}/{total}  {' '.join(parts)}{lr_text}  "
                f"{rate:.3g} steps/s",
                file=sys.stderr,
                flush=True,
            )

    return Log()


class DeepXDEFields(Fields):
    """pdekit's fields accessor over DeepXDE's gradient API (first and second derivatives)."""

    def __init__(self, x, y, coordinates, fields, declared):
        super().__init__(coordinates, fields, declared)
        self.x, self.y = x, y

    def _value(self, f):
        i = self.fields.index(f)
        return self.y[:, i]

    def _coord(self, index):
        return self.x[:, index]

    def _derivative(self, f, key):
        dde = _dde()
        c = self.fields.index(f)
        if len(key) == 1:
            return dde.grad.jacobian(self.y, self.x, i=c, j=key[0])[:, 0]
        if len(key) == 2:
            return dde.grad.hessian(self.y, self.x, component=c, i=key[0], j=key[1])[:, 0]
        raise ValueError("DeepXDE's gradient API gives first and second derivatives only")


def _condition(dde, geom, bc, key: str, component: int, on_boundary, as_np):
    """One field's boundary condition as DeepXDE's: ``DirichletBC``, ``NeumannBC``, or for a
    Robin condition a u + b du/dn = g ``RobinBC`` (du/dn = (g - a u) / b, DeepXDE's form) --
    or ``DirichletBC`` with u = g / a where b is the number 0. A b given as a function must not
    vanish on the boundary points (checked where the condition is evaluated)."""
    if bc.kind == "dirichlet":
        return dde.icbc.DirichletBC(geom, as_np(bc.value, key), on_boundary, component=component)
    if bc.kind == "neumann":
        return dde.icbc.NeumannBC(geom, as_np(bc.value, key), on_boundary, component=component)
    if not callable(bc.b) and float(bc.b) == 0.0:
        if not callable(bc.a) and float(bc.a) == 0.0:
            raise ParameterError(f"Robin condition on {bc.tag or 'the boundary'}: a = b = 0")

        def scaled(p):
            a, _ = bc.coefficients(p)
            return {key: bc.value(p)[key] / a}

        return dde.icbc.DirichletBC(geom, as_np(scaled, key), on_boundary, component=component)

    def du_dn(x, y):
        p = torch.as_tensor(np.asarray(x), dtype=torch.float64, device="cpu")
        with torch.no_grad():
            a, b = bc.coefficients(p)
            g = bc.value(p)[key]
        if bool((b == 0).any()):
            raise ParameterError(
                f"Robin condition on {bc.tag or 'the boundary'}: b vanishes at a boundary point "
                "(DeepXDE's RobinBC divides by it)"
            )
        u = y[:, component : component + 1]
        a, b, g = (v.reshape(-1, 1).to(dtype=u.dtype, device=u.device) for v in (a, b, g))
        return (g - a * u) / b

    return dde.icbc.RobinBC(geom, du_dn, on_boundary, component=component)


def traction_residual(dde, geom, bc, component: int, fields, n_space: int):
    """The function of a DeepXDE ``OperatorBC`` for component ``component`` of a traction
    condition ``bc``: ``func(inputs, outputs, X)`` returns, at every row,

        b du_i/dn - p n_i - g_i,    du_i/dn = sum_m du_i/dx_m n_m,

    u_i the field ``bc.fields[component]``, p the field ``bc.pressure``, b and g_i the
    condition's coefficient and value at the points, n the outward normal ``geom.boundary_normal``
    gives at them (its first ``n_space`` components: a ``GeometryXTime`` appends a zero for time;
    rows off the boundary get whatever the geometry answers there, and DeepXDE keeps only the
    condition's rows). ``fields``: the problem's fields, in the network's output order. The
    normals, b and g are computed once per array ``X`` (DeepXDE passes the same training array
    at every step until it resamples).
    """
    key = bc.fields[component]
    c_u, c_p = fields.index(key), fields.index(bc.pressure)
    cache: dict = {}

    def at(X, like: torch.Tensor):
        if cache.get("X") is not X or cache.get("like") != (like.dtype, like.device):
            x = np.asarray(X)
            pts = torch.as_tensor(x, dtype=torch.float64, device="cpu")
            normal = np.asarray(geom.boundary_normal(x), dtype=np.float64)[:, :n_space]
            with torch.no_grad():
                _, b = bc.coefficients(pts)
                g = bc.value(pts)[key]
            values = tuple(torch.as_tensor(v).reshape(len(x), -1).to(like) for v in (normal, b, g))
            cache.update(X=X, like=(like.dtype, like.device), values=values)
        return cache["values"]

    def residual(inputs, outputs, X):
        n, b, g = at(X, outputs)
        du = dde.grad.jacobian(outputs, inputs, i=c_u, j=None)[:, :n_space]
        du_dn = (du * n).sum(dim=1, keepdim=True)
        return b * du_dn - outputs[:, c_p : c_p + 1] * n[:, component : component + 1] - g

    return residual


#: a point DeepXDE asks about is one of a mesh geometry's boundary points when it lies within
#: this fraction of the mesh's size of it (the points DeepXDE hands back are the geometry's own,
#: already rounded to DeepXDE's float type: the distance is 0; a fresh interior point falls
#: this close to one of a few hundred boundary points with probability ~1e-11)
MATCH_TOLERANCE = 1e-7


class BoundaryPoints:
    """A fixed set of boundary points with their outward normals, found again by position.

    DeepXDE asks geometries and conditions about points by their coordinates only (its
    ``on_boundary(x)``, ``boundary_normal(x)``), in any order; :meth:`index` finds each point's
    row in the set with a KD-tree.
    """

    def __init__(self, points: np.ndarray, normals: np.ndarray, tol: float):
        self.points = np.asarray(points, dtype=np.float64)
        self.normals = np.asarray(normals, dtype=np.float64)
        self.tol = float(tol)
        self._tree = cKDTree(self.points) if len(self.points) else None

    def index(self, x) -> np.ndarray:
        """Row of each point of ``x`` (n, dim) in the set; -1 where none is within ``tol``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.points.shape[1])
        if self._tree is None:
            return np.full(len(x), -1)
        dist, row = self._tree.query(x, distance_upper_bound=self.tol)
        return np.where(np.isfinite(dist), row, -1)

    def contains(self, x) -> np.ndarray:
        return self.index(x) >= 0

    def normal(self, x) -> np.ndarray:
        """The outward normal at each point of ``x`` in the set (zero at the others)."""
        row = self.index(x)
        out = np.zeros((len(row), self.points.shape[1]))
        out[row >= 0] = self.normals[row[row >= 0]]
        return out


@functools.cache
def _mesh_geometry_class(dde):
    """The DeepXDE geometry class of :func:`mesh_geometry` (DeepXDE is imported lazily)."""

    class PdekitDomain(dde.geometry.Geometry):
        """A pdekit domain as a DeepXDE geometry: fresh interior points from
        ``domain.sample_interior`` at every draw, a fixed set of boundary points with normals
        (``boundary``, the union of ``condition_points``, one set per boundary condition)."""

        def __init__(self, domain, condition_points: list[BoundaryPoints], tol, method, rng):
            self.real = dde.config.real(np)
            lo, hi = np.asarray(domain.bounds, dtype=self.real)
            super().__init__(domain.dim, (lo, hi), float(np.linalg.norm(hi - lo)))
            self.domain, self.method, self.rng = domain, method, rng
            self.condition_points = condition_points
            none = np.zeros((0, domain.dim))
            parts = condition_points or [BoundaryPoints(none, none, tol)]
            self.boundary = BoundaryPoints(
                np.concatenate([p.points for p in parts]),
                np.concatenate([p.normals for p in parts]),
                tol,
            )

        def inside(self, x):
            return self.domain.contains(np.asarray(x, dtype=np.float64))

        def on_boundary(self, x):
            return self.boundary.contains(x)

        def boundary_normal(self, x):
            return self.boundary.normal(x).astype(self.real)

        def random_points(self, n, random="pseudo"):
            # pdekit's sampler (sampling.method), not DeepXDE's ``random``: as pinn draws
            return self.domain.sample_interior(n, self.rng, self.method).astype(self.real)

        def random_boundary_points(self, n, random="pseudo"):
            if n != len(self.boundary.points):
                raise ValueError(
                    f"this geometry holds {len(self.boundary.points)} fixed boundary points; "
                    f"DeepXDE asked for {n}"
                )
            return self.boundary.points.astype(self.real)

    return PdekitDomain


def mesh_geometry(dde, domain, bcs, n_boundary: int, method: str, rng: np.random.Generator):
    """``domain`` (a :class:`~pdekit.geometries.mesh.MeshGeometry`) as a DeepXDE geometry,
    and each boundary condition's points.

    ``n_boundary // len(bcs)`` points (at least one) are drawn on each condition's tag
    (``domain.sample_boundary``, uniform by area, with outward normals; all of the boundary for
    tag None), as pinn splits them, none if ``n_boundary`` is 0; they are rounded to DeepXDE's
    float type, so the points DeepXDE hands back are found again exactly. Interior points come
    from ``domain.sample_interior(n, rng, method)`` whenever DeepXDE draws.

    Returns
    -------
    The DeepXDE geometry; its boundary is the union of the conditions' points, and its
    ``condition_points`` holds one :class:`BoundaryPoints` per condition of ``bcs``, in order.
    """
    real = dde.config.real(np)
    per_bc = max(1, n_boundary // len(bcs)) if bcs and n_boundary > 0 else 0
    bounds = np.asarray(domain.bounds, dtype=np.float64)
    tol = MATCH_TOLERANCE * max(float(np.linalg.norm(bounds[1] - bounds[0])), np.abs(bounds).max())
    parts = []
    for bc in bcs:
        pts, normals = domain.sample_boundary(per_bc, bc.tag, rng, method)
        parts.append(BoundaryPoints(pts.astype(real), normals, tol))
    return _mesh_geometry_class(dde)(domain, parts, tol, method, rng)


def _spatial(problem: Problem) -> tuple[Hyperrectangle | MeshGeometry, SpaceTime | None]:
    dom = problem.domain()
    if isinstance(dom, SpaceTime):
        return dom.space, dom
    return dom, None


@register_solver("deepxde")
class DeepXDEBaseline(Solver):
    """Vanilla PINN through DeepXDE (PyTorch backend): the comparison baseline."""

    Config = DeepXDEConfig
    description = "vanilla PINN through DeepXDE's Model/TimePDE API (baseline)"
    paper = "Lu, Meng, Mao & Karniadakis, SIAM Review 63 (2021)"

    def supports(self, problem: Problem) -> str | None:
        space, _ = _spatial(problem)
        box = isinstance(space, Hyperrectangle) and space.dim <= 3
        if not (box or isinstance(space, MeshGeometry)):
            return (
                "the DeepXDE baseline handles intervals, rectangles, boxes and meshes "
                f"(MeshGeometry) only; got {type(space).__name__}"
            )
        for bc in problem.boundary_conditions():
            if bc.kind == "traction" and (
                len(bc.fields) != space.dim or bc.pressure not in problem.fields
            ):
                return (
                    f"a traction condition (on {bc.tag or 'the boundary'}) needs one velocity "
                    f"field per spatial coordinate ({space.dim}) and a pressure among the "
                    f"fields; got {bc.fields} and {bc.pressure!r}"
                )
        orders = [
            len(parse_spec(s, problem.coordinates)) for v in problem.derivatives.values() for s in v
        ]
        if orders and max(orders) > 2:
            return "DeepXDE's gradient API gives first and second derivatives only"
        return None

    # -- building ------------------------------------------------------------------------------
    def _geometry(self, dde, problem, sampling: SamplingConfig | None = None, seed: int = 0):
        """The DeepXDE geometry (a ``GeometryXTime`` for time-dependent problems); on a mesh
        the boundary points are drawn here (:func:`mesh_geometry`), ``sampling`` saying how
        many and how, ``seed`` seeding them and every interior draw."""
        space, st = _spatial(problem)
        if isinstance(space, MeshGeometry):
            s = sampling or SamplingConfig()
            bcs, rng = problem.boundary_conditions(), np.random.default_rng(seed)
            g = mesh_geometry(dde, space, bcs, s.n_boundary, s.method, rng)
        else:
            g = self._box(dde, space)
        if st is None:
            return g
        return dde.geometry.GeometryXTime(g, dde.geometry.TimeDomain(st.time.t0, st.time.t1))

    @staticmethod
    def _box(dde, space):
        lo, hi = space.lo, space.hi
        if space.dim == 1:
            return dde.geometry.Interval(lo[0], hi[0])
        if space.dim == 2:
            return dde.geometry.Rectangle(lo, hi)
        return dde.geometry.Cuboid(lo, hi)

    def _conditions(self, dde, problem, geom, *, initial: bool, boundary: bool):
        """DeepXDE's initial conditions and boundary conditions (periodic ones included), as
        two lists. ``initial`` / ``boundary`` False: none of that kind, as pdekit's own solvers
        add no term for a kind given no points (``sampling.n_initial`` / ``n_boundary`` = 0),
        where DeepXDE would evaluate the condition on no points (a NaN mean)."""
        space, st = _spatial(problem)
        fields = problem.fields
        ics, bcs = [], []

        def as_np(fn, key):
            def value(x):
                with torch.no_grad():
                    out = fn(torch.as_tensor(np.asarray(x), dtype=torch.float64, device="cpu"))
                return out[key].cpu().numpy().reshape(-1, 1)

            return value

        if st is not None and initial:
            # the fields the initial condition gives (a flow may give its velocity only, the
            # pressure following from it), as pdekit's own PhysicsLoss takes them
            probe = st.space.sample_interior(1, rng=np.random.default_rng(0))
            with torch.no_grad():
                given = problem.initial_condition(torch.as_tensor(probe, dtype=torch.float64))
            for k in (k for k in fields if k in given):
                ic = problem.initial_condition
                ics.append(
                    dde.icbc.IC(
                        geom,
                        as_np(lambda x, ic=ic: ic(x[:, :-1]), k),
                        lambda _, on_initial: on_initial,
                        component=fields.index(k),
                    )
                )
        if not boundary:
            return ics, bcs
        spatial_geom = geom.geometry if st is not None else geom
        for i, bc in enumerate(problem.boundary_conditions()):
            if isinstance(space, MeshGeometry):  # the condition's own points, by position
                own = spatial_geom.condition_points[i]

                def on_b(x, on_boundary, own=own, dim=space.dim):
                    return on_boundary and bool(own.contains(x[:dim])[0])
            elif bc.tag is None:

                def on_b(x, on_boundary):
                    return on_boundary
            else:
                axis, side = space.facet(bc.tag)
                bound = space.hi[axis] if side > 0 else space.lo[axis]

                def on_b(x, on_boundary, axis=axis, bound=bound):
                    return on_boundary and np.isclose(x[axis], bound)

            if bc.kind == "traction":
                for j in range(len(bc.fields)):
                    func = traction_residual(dde, geom, bc, j, fields, space.dim)
                    bcs.append(dde.icbc.OperatorBC(geom, func, on_b))
                continue
            for k in bc.fields:
                bcs.append(_condition(dde, geom, bc, k, fields.index(k), on_b, as_np))
        for axis, per in enumerate(space.periodic):
            if per:
                for k in fields:
                    for order in (0, 1):
                        bcs.append(
                            dde.icbc.PeriodicBC(
                                geom,
                                axis,
                                lambda _, on_boundary: on_boundary,
                                derivative_order=order,
                                component=fields.index(k),
                            )
                        )
        return ics, bcs

    def _net(self, dde, problem, config):
        n = config.network
        sizes = [len(problem.coordinates)] + [n.width] * n.depth + [len(problem.fields)]
        return dde.nn.FNN(sizes, n.activation, "Glorot normal")

    # -- fit / restore -------------------------------------------------------------------------
    def fit(self, problem: Problem, config: DeepXDEConfig, run: RunOptions) -> Solution:
        if distributed.current().enabled:
            raise ParameterError(
                "the deepxde baseline trains in DeepXDE's own loop, without DistributedData"
                "Parallel: run it in one process (not under torchrun with more than one)"
            )
        if run.resume is not None:
            raise ParameterError(
                "the deepxde baseline cannot resume training (see its docstring); resume runs "
                "of the pinn, causal_pinn, lagrangian_pinn or probconserv solvers"
            )
        device = select_device(run.device)
        if device.type == "cpu":
            retain_freed_memory()  # as pdekit's own solvers do: a like-for-like comparison
        dde = _dde()
        with _default_device(device):  # DeepXDE trains on the default device
            return self._fit(dde, problem, config, run)

    def _fit(self, dde, problem: Problem, config: DeepXDEConfig, run: RunOptions) -> Solution:
        dde.config.set_random_seed(run.seed)
        with contextlib.redirect_stdout(io.StringIO()):  # "Set the default float type to ..."
            dde.config.set_default_float(config.train.dtype)
        s, w, t = config.sampling, config.weights, config.train
        geom = self._geometry(dde, problem, s, run.seed)
        spatial_geom = getattr(geom, "geometry", geom)
        # on a mesh, the fixed boundary points the geometry drew (pinn's split over the BCs)
        mesh = isinstance(spatial_geom, _mesh_geometry_class(dde))
        n_boundary = len(spatial_geom.boundary.points) if mesh else s.n_boundary
        ics, bcs = self._conditions(
            dde, problem, geom, initial=s.n_initial > 0, boundary=s.n_boundary > 0
        )
        conds = ics + bcs

        def pde(x, y):
            f = DeepXDEFields(x, y, problem.coordinates, problem.fields, problem.derivatives)
            return [r.reshape(-1, 1) for r in problem.residual(f).values()]

        # DeepXDE's quasi-random samplers go through scikit-optimize and are slow to redraw
        # every step; when resampling, draw i.i.d. uniform points (DeepXDE's "pseudo").
        dist = "Sobol" if s.method == "sobol" and s.resample_every == 0 else "pseudo"
        if problem.time_dependent:
            data = dde.data.TimePDE(
                geom,
                pde,
                conds,
                num_domain=s.n_interior,
                num_boundary=n_boundary if bcs else 0,
                num_initial=s.n_initial if ics else 0,
                train_distribution=dist,
            )
        else:
            data = dde.data.PDE(
                geom,
                pde,
                conds,
                num_domain=s.n_interior,
                num_boundary=n_boundary if bcs else 0,
                train_distribution=dist,
            )
        net = self._net(dde, problem, config)
        model = dde.Model(data, net)
        n_res = len(residual_names(problem))
        weights = [w.residual] * n_res + [w.initial] * len(ics) + [w.boundary] * len(bcs)
        callbacks = []
        if s.resample_every > 0:
            callbacks.append(dde.callbacks.PDEPointResampler(period=s.resample_every))
        budget = t.time_budget_s
        if budget > 0:  # with L-BFGS to follow, Adam hands over at 1 - lbfgs_budget_share
            callbacks.append(_time_budget_callback(dde, t.adam_budget_s))
        model.compile(
            "adam",
            lr=t.lr,
            decay=("step", t.decay_every, t.lr_decay),
            loss_weights=weights,
            verbose=0,
        )
        names = [*residual_names(problem), *(f"ic{i}" for i in range(len(ics))),
                 *(f"bc{i}" for i in range(len(bcs)))]  # fmt: skip
        if run.verbose:
            callbacks.append(_log_callback(dde, t.steps, t.log_every, names))
        t0 = time.perf_counter()
        try:
            model.train(
                iterations=t.steps, display_every=t.log_every, callbacks=callbacks, verbose=0
            )
            left = budget - (time.perf_counter() - t0) if budget > 0 else math.inf
            if t.lbfgs_steps and left > 0:
                if budget > 0:
                    _lbfgs_options(dde, t.lbfgs_steps, LBFGS_ITERATIONS_PER_CALL_BUDGETED)
                    lbfgs_callbacks = [_time_budget_callback(dde, left)]
                else:
                    _lbfgs_options(dde, t.lbfgs_steps, LBFGS_ITERATIONS_PER_CALL)
                    lbfgs_callbacks = []
                model.compile("L-BFGS", loss_weights=weights, verbose=0)
                model.train(verbose=0, callbacks=lbfgs_callbacks)
        except KeyboardInterrupt:
            # the baseline trains in DeepXDE's own loop, which pdekit does not checkpoint
            step = getattr(getattr(model, "train_state", None), "step", None)
            print(
                f"pdekit: deepxde: interrupted{f' at step {step}' if step is not None else ''}; "
                "the deepxde baseline trains in DeepXDE's own loop and keeps no checkpoint: "
                "nothing was saved",
                file=sys.stderr,
                flush=True,
            )
            raise
        run.stats["wall_s"] = time.perf_counter() - t0
        lh = model.losshistory
        history = {
            "step": [int(v) for v in lh.steps],
            "loss": [float(np.sum(v)) for v in lh.loss_train],
        }
        return Solution(
            problem,
            self.name,
            config,
            network_predictor(net, problem.fields),
            model=net,
            history=history,
            step=int(model.train_state.step),
        )

    def restore(self, problem, config, ckpt) -> Solution:
        dde = _dde()
        net = self._net(dde, problem, config)
        net.load_state_dict(ckpt.model)
        net.to(dtype=config.train.torch_dtype)
        extras = dict(ckpt.extras)
        history = extras.pop("history", {})
        return Solution(
            problem,
            self.name,
            config,
            network_predictor(net, problem.fields),
            model=net,
            history=history,
            extras=extras,
            step=ckpt.step,
        )
