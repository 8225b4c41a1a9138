"""The Problem interface: one PDE, one small module of physics.

A problem is a frozen dataclass whose fields are its physical parameters, each declared with
:func:`param` (default, allowed range, one line of documentation). ``__post_init__`` validates
every parameter generically, so a bad value raises :class:`~pdekit.errors.ParameterError` naming
the parameter and its range, and ``pdekit info`` can print the same table.

Conventions shared by problems, references and solutions:

* ``coordinates`` names the columns of a point array: spatial first, time last
  (``("x", "t")``, ``("x", "y")``, ``("x", "y", "t")``);
* ``fields`` names the unknowns (``("u",)``, ``("u", "v", "p")``);
* a reference, or a solution, is called as ``obj(points)`` with points of shape
  (n, len(coordinates)) and returns ``{field: array of shape (n,)}``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from pdekit.core.fields import Fields
from pdekit.errors import MeshError, ParameterError
from pdekit.geometries.grid import TensorGrid, uniform_axis
from pdekit.geometries.mesh import MeshGeometry, cached_mesh, require_dim, require_tags
from pdekit.geometries.spacetime import SpaceTime

ValueFn = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple | None = None,
    doc: str = "",
):
    """Declare a problem parameter: its default, allowed range or choices, and a description.

    ``low``/``high`` bound the value (closed unless ``low_open``/``high_open``); ``choices``
    lists the allowed values. The dataclass field's type annotation sets the type.
    """
    meta = {
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
        "doc": doc,
    }
    return field(default=default, metadata={"pdekit": meta})


def describe_range(meta: Mapping[str, Any]) -> str:
    """Human-readable allowed range of a parameter: ``"(0, 1)"``, ``"[1, 6]"``, ``"one of ..."``."""
    if meta.get("choices") is not None:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return "any finite value"
    left = "(" if meta.get("low_open") or low is None else "["
    right = ")" if meta.get("high_open") or high is None else "]"
    lo = "-inf" if low is None else _bound(low)
    hi = "inf" if high is None else _bound(high)
    return f"{left}{lo}, {hi}{right}"


def _bound(value: float) -> str:
    """An integer bound in full (a seed's 4294967295, not 4.29497e+09), others in %g."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:g}"


BC_KINDS = ("dirichlet", "neumann", "robin", "traction")


@dataclass(frozen=True)
class BC:
    """A boundary condition on the part ``tag`` of the spatial boundary (None: all of it).

    kind:
        ``"dirichlet"`` (field = value), ``"neumann"`` (outward normal derivative = value) or
        ``"robin"`` (``a * field + b * outward normal derivative = value``), or
        ``"traction"``, a condition on a velocity and its pressure: ``b * du_i/dn - p n_i =
        value_i`` for the velocity components ``fields`` (one per spatial coordinate, in
        order) and the pressure field ``pressure`` (with value 0 and b = nu, the "do-nothing"
        outflow of incompressible flow). Periodic directions are a property of the geometry,
        not a BC.
    fields:
        The fields constrained.
    value:
        Function of points (n, len(coordinates)), torch, returning ``{field: tensor (n,)}``.
    a, b:
        The Robin coefficients: numbers, or functions of points (n, len(coordinates)) returning
        a tensor (n,). Used by kind ``"robin"`` (Dirichlet is a = 1, b = 0; Neumann a = 0,
        b = 1); ``"traction"`` uses ``b`` (the viscosity).
    pressure:
        The pressure field of a ``"traction"`` condition (None for the other kinds).
    """

    kind: str
    fields: tuple[str, ...]
    value: ValueFn
    tag: str | None = None
    a: float | Callable[[torch.Tensor], torch.Tensor] = 1.0
    b: float | Callable[[torch.Tensor], torch.Tensor] = 0.0
    pressure: str | None = None

    def __post_init__(self):
        if self.kind not in BC_KINDS:
            raise ParameterError(f"BC kind must be one of {list(BC_KINDS)}; got {self.kind!r}")
        if (self.kind == "traction") != (self.pressure is not None):
            raise ParameterError(
                "a 'traction' BC needs its pressure field (pressure=...), and only it takes one; "
                f"got kind {self.kind!r} with pressure {self.pressure!r}"
            )
        if self.kind in ("robin", "traction"):
            for name in ("a", "b"):
                c = getattr(self, name)
                if not callable(c) and not (isinstance(c, int | float) and math.isfinite(c)):
                    raise ParameterError(
                        f"{self.kind.capitalize()} coefficient {name!r} must be a finite number "
                        f"or a function of points; got {c!r}"
                    )
        if self.kind == "traction" and not callable(self.b) and float(self.b) == 0.0:
            raise ParameterError(
                "a 'traction' BC needs its viscosity b (b du/dn - p n = value); got b = 0"
            )

    def coefficients(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Robin coefficients (a, b) at ``points`` (n, ncoords) as tensors (n,); for the
        other kinds the (a, b) that the kind means: Dirichlet (1, 0), Neumann (0, 1)."""
        a, b = {"dirichlet": (1.0, 0.0), "neumann": (0.0, 1.0), "traction": (0.0, self.b)}.get(
            self.kind, (self.a, self.b)
        )
        out = []
        for c in (a, b):
            v = c(points) if callable(c) else c
            v = torch.as_tensor(v, dtype=points.dtype, device=points.device)
            out.append(v.expand(points.shape[:1]) if v.ndim == 0 else v.reshape(-1))
        return out[0], out[1]


@dataclass(frozen=True)
class ExactDirichlet:
    """A problem's Dirichlet conditions in a form a network satisfies by construction
    (Lagaris, Likas & Fotiadis 1998; Sukumar & Srivastava 2022, "Exact imposition of boundary
    conditions with distance functions in physics-informed deep neural networks"): a field
    ``f`` with a form ``(lift, distance)`` is ``lift + distance * N_f`` for the network's raw
    output ``N_f``, where ``lift`` takes the prescribed values on the boundary parts ``tags``
    and ``distance`` vanishes exactly there and nowhere else in the domain.

    tags:
        The boundary parts (the ``tag`` of :class:`BC`) whose Dirichlet conditions the forms
        impose, for every field they name; a solver using the forms drops those terms from its
        loss.
    forms:
        ``{field: (lift, distance)}``; fields not named are the network's output unchanged.
        Both functions take the coordinate columns ``(x, y, ...)`` as separate arguments, each
        a tensor (n, 1) or a one-feature :class:`~pdekit.core.taylor.Jet`, and return one
        column built from them with ``+ - * /``, whole powers and numbers only (so the same
        function serves both engines of the core). ``distance`` should carry the field's
        scale, so the network's output stays of order one.
    """

    tags: tuple[str, ...]
    forms: Mapping[str, tuple[Callable, Callable]]


class Reference:
    """A reference solution: called on points (n, len(coordinates)), returns ``{field: (n,)}``.

    Attributes
    ----------
    source: ``"exact"``, ``"published"`` or ``"computed"``.
    description: where it comes from (formula, table, solver and resolution).
    accuracy: its stated accuracy (``"exact (round-off)"``, ``"<= 1e-8 absolute"``).
    """

    source: str = "exact"
    description: str = ""
    accuracy: str = ""

    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


class ExactReference(Reference):
    """The problem's closed-form solution, evaluated in float64."""

    source = "exact"

    def __init__(self, problem: Problem, description: str = "closed-form solution"):
        self.problem = problem
        self.description = description
        self.accuracy = "exact (float64 round-off)"

    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        pts = _as_points(points, len(self.problem.coordinates))
        with torch.no_grad():
            out = self.problem.exact(torch.as_tensor(pts, dtype=torch.float64))
        return {k: v.detach().cpu().numpy().reshape(-1) for k, v in out.items()}


class Problem:
    """Base class of every named PDE. Subclasses are frozen dataclasses of their parameters.

    Class attributes to set: ``coordinates``, ``fields``, ``derivatives`` (the derivatives the
    residual uses, per field), ``equation`` (plain text, shown by ``pdekit info``).

    Methods to implement: :meth:`domain`, :meth:`residual`; for time-dependent problems
    :meth:`initial_condition`; where there are boundaries :meth:`boundary_conditions`; and either
    :meth:`exact` (closed form) or :meth:`reference`.
    """

    name: ClassVar[str] = ""
    coordinates: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ()
    derivatives: ClassVar[dict[str, tuple[str, ...]]] = {}
    equation: ClassVar[str] = ""
    #: points per coordinate of the default evaluation grid (errors, VTK output, plots)
    evaluation_resolution: ClassVar[dict[str, int]] = {}
    #: fields the equations and conditions fix only up to an additive constant (at each time),
    #: such as the pressure with periodic or all-velocity boundaries: errors and written error
    #: arrays compare them after shifting the prediction to the reference's mean over the grid
    gauge_fields: ClassVar[tuple[str, ...]] = ()
    #: boundary tags the problem's conditions name: a mesh given by the user (a problem's
    #: ``mesh`` parameter, read by :meth:`user_mesh`) must have each of them
    required_tags: ClassVar[tuple[str, ...]] = ()
    #: when not empty, why the domain alone does not describe the problem: part of its
    #: geometry (e.g. an immersed obstacle) exists only as solid cells of its grid scene
    #: (``mac_scene``); solvers that do not read that scene (``Solver.reads_mac_scene``) are
    #: refused with this reason
    scene_only_geometry: ClassVar[str] = ""

    # -- parameters ----------------------------------------------------------------------------
    def __post_init__(self):
        for f in dataclasses.fields(self):
            meta = f.metadata.get("pdekit")
            if meta is None:
                continue
            value = _coerce(self, f, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
            _check_range(self, f.name, value, meta)

    def params(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON-serialisable)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def param_table(cls) -> list[dict[str, Any]]:
        """One row per parameter: name, type, default, allowed range, description."""
        rows = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("pdekit", {})
            tname = f.type if isinstance(f.type, str) else f.type.__name__
            free_text = tname == "str" and meta.get("choices") is None
            rows.append(
                {
                    "name": f.name,
                    "type": tname,
                    "default": f.default,
                    "range": "any string" if free_text else describe_range(meta),
                    "doc": meta.get("doc", ""),
                }
            )
        return rows

    # -- geometry and physics --------------------------------------------------------------------
    @property
    def time_dependent(self) -> bool:
        return "t" in self.coordinates

    def domain(self):
        """The domain: a spatial Geometry, or a SpaceTime for time-dependent problems."""
        raise NotImplementedError

    def user_mesh(self, path: str, dim: int) -> MeshGeometry:
        """The mesh file ``path`` given as the problem's ``mesh`` parameter, as its domain.

        Read once per version of the file (:func:`~pdekit.geometries.mesh.cached_mesh`:
        ``domain()`` is called often) and checked whole before it is used: any format meshio
        reads, ``dim``-dimensional, with every tag of :attr:`required_tags`. Problems call it
        from ``domain()`` and call ``domain()`` in ``__post_init__``, so a bad mesh is refused
        when the problem is made, never half-way through a solve.

        Raises
        ------
        ParameterError
            naming the parameter, chained from the MeshError that says what is wrong: a file
            that is missing or unreadable, a corrupt mesh (degenerate or inverted cells, ...),
            the other dimension (both named), missing boundary tags (missing and present named).
        """
        what = self.name or type(self).__name__
        try:
            mesh = cached_mesh(path)
            require_dim(mesh, dim, what)
            require_tags(mesh, self.required_tags, what)
        except MeshError as exc:
            raise ParameterError(f"parameter 'mesh' of {what}: {exc}") from exc
        return mesh

    def initial_condition(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fields at t0 at spatial points x (n, spatial dim)."""
        raise NotImplementedError(f"{self.name} has no initial condition")

    def boundary_conditions(self) -> list[BC]:
        """Conditions on the non-periodic parts of the spatial boundary."""
        return []

    def residual(self, f: Fields) -> dict[str, torch.Tensor]:
        """The PDE residuals, one named tensor (n,) per equation."""
        raise NotImplementedError

    def exact_dirichlet(self) -> ExactDirichlet | None:
        """The Dirichlet conditions as a lift and a distance function a network can satisfy
        exactly (:class:`ExactDirichlet`), where the problem offers them; None otherwise."""
        return None

    def flux(self, f: Fields) -> tuple[torch.Tensor, ...] | None:
        """Conservation form ``u_t + div F = s``: the spatial flux components of F (or None)."""
        return None

    def source(self, f: Fields) -> torch.Tensor | None:
        """Conservation form ``u_t + div F = s``: the source s (None means zero)."""
        return None

    # -- optional structure: scalar convection-diffusion ------------------------------------------
    def characteristic_velocity(self, u: torch.Tensor, points: torch.Tensor):
        """Velocity ``c`` of the form ``u_t + c(u, x, t) . grad u = D Lap u``, or None.

        A scalar problem whose residual has this form returns ``c`` at ``points``
        (n, len(coordinates)) for field values ``u`` (n,): a tuple with one entry (tensor (n,)
        or number) per spatial coordinate. Its characteristics move with this velocity,
        ``dX/dt = c(u(X, t), X, t)``, and along them the equation reads ``w_t = D Lap_X w``.
        Solvers that work along characteristics (the Lagrangian PINN) use it together with
        :attr:`diffusivity` and check that both agree with :meth:`residual`.
        The default, None, means the problem is not of this form.
        """
        return None

    @property
    def diffusivity(self):
        """The diffusion coefficient ``D`` of the form of :meth:`characteristic_velocity`: a
        number (0 for pure convection), or a function ``f2(u, points)`` of the state and the
        points returning one value per point (the Lagrangian PINN paper's state-dependent
        diffusion ``f2(x, t, u)``); None (the default) when the problem is not of that form."""
        return None

    def exact(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """Closed-form solution at points (n, len(coordinates)), torch, where one exists."""
        raise NotImplementedError(f"{self.name} has no closed-form solution")

    def has_exact(self) -> bool:
        return type(self).exact is not Problem.exact

    def reference(self) -> Reference:
        """The reference solution the problem is scored against."""
        if self.has_exact():
            return ExactReference(self)
        raise NotImplementedError(f"{self.name} has no reference solution")

    # -- quantities of interest -------------------------------------------------------------------
    def quantities(self, solution) -> dict[str, float]:
        """Named scalar quantities of interest (drag, lift, a pressure difference) of any
        solution (a callable on points like the reference); empty (the default) when the
        problem defines none. :meth:`reference_quantities` gives the reference's."""
        return {}

    def reference_quantities(self) -> dict[str, float]:
        """:meth:`quantities` of the reference (for problems that define quantities)."""
        return self.quantities(self.reference())

    def forces(self, solution, tag: str, **options) -> dict[str, float]:
        """The force of a flow on the boundary part ``tag``, where the problem defines one."""
        raise NotImplementedError(f"{self.name} defines no forces on its boundary")

    # -- grid learners: state, derived fields and the batched reference solver -------------------
    #: the fields a grid learner predicts (its state); :meth:`complete` derives the others.
    #: Empty (the default) means all of :attr:`fields`.
    state_fields: ClassVar[tuple[str, ...]] = ()
    #: where on a :class:`~pdekit.geometries.Grid` the state's values sit for :meth:`simulate`
    #: (``"node"``: grid nodes, the samples of spectral solvers; ``"center"``: cell centres, the
    #: unknowns of finite-volume solvers)
    state_location: ClassVar[str] = "node"

    @property
    def state(self) -> tuple[str, ...]:
        """The state fields (:attr:`state_fields`, or all fields when none are declared)."""
        return tuple(self.state_fields) or tuple(self.fields)

    def initial_state(self, grid) -> dict[str, np.ndarray]:
        """The problem's own initial state on ``grid``: ``{state field: float64 array
        grid.shape_of(state_location)}`` (add a leading batch axis for :meth:`simulate`)."""
        space = torch.as_tensor(grid.points(self.state_location), dtype=torch.float64)
        with torch.no_grad():
            values = self.initial_condition(space)
        shape = grid.shape_of(self.state_location)
        return {k: values[k].detach().cpu().numpy().reshape(shape) for k in self.state}

    def complete(self, state: Mapping[str, torch.Tensor], grid) -> dict[str, torch.Tensor]:
        """All :attr:`fields` from the state fields on ``grid`` (arrays ``(*batch, *grid)``,
        at :attr:`state_location`; torch tensors, or numpy arrays taken as float64). The default
        returns the state as tensors: problems with derived fields (velocity from vorticity)
        override it and call it first."""
        missing = [k for k in self.state if k not in state]
        if missing:
            raise ParameterError(f"state of {self.name} lacks {missing}; it has {sorted(state)}")
        return {k: _tensor(state[k]) for k in self.fields if k in state}

    def simulate(
        self, initial_states: Mapping[str, np.ndarray], grid, times: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Trajectories of the state from a batch of initial states: the one hook to the
        problem's reference solver.

        Parameters
        ----------
        initial_states:
            ``{state field: array (B, *grid.shape_of(state_location))}``.
        grid:
            A spatial :class:`~pdekit.geometries.Grid` over the problem's domain.
        times:
            Increasing output times, the first the problem's initial time t0.

        Returns
        -------
        ``{state field: float64 array (B, len(times), *grid.shape_of(state_location))}``.

        The default, for problems with a closed-form solution, evaluates the formula: the
        solution is a function of the problem's parameters, so each initial state must be the
        problem's own initial condition on the grid (checked to 1e-10 relative). Problems with a
        numerical reference solver override this and accept any initial states.
        """
        if not self.has_exact():
            raise NotImplementedError(f"{self.name} has no reference solver to simulate")
        states, times = check_simulation_input(self, initial_states, grid, times)
        space = grid.points(self.state_location)
        own = self.initial_condition(torch.as_tensor(space, dtype=torch.float64))
        shape = grid.shape_of(self.state_location)
        for k, v in states.items():
            want = own[k].detach().cpu().numpy().reshape(shape)
            scale = max(float(np.abs(want).max()), 1e-300)
            dev = float(np.abs(v - want).max()) / scale
            if dev > 1e-10:
                raise ParameterError(
                    f"{self.name} is simulated by its closed-form solution, which starts from "
                    f"its own initial condition; initial state {k!r} differs from it by {dev:.1e}"
                    " (relative)"
                )
        nt, npts = len(times), len(space)
        pts = np.concatenate([np.tile(space, (nt, 1)), np.repeat(times, npts)[:, None]], axis=1)
        with torch.no_grad():
            out = self.exact(torch.as_tensor(pts, dtype=torch.float64))
        batch = next(iter(states.values())).shape[0]
        return {
            k: np.broadcast_to(
                out[k].detach().cpu().numpy().reshape((nt, *shape)), (batch, nt, *shape)
            ).copy()
            for k in self.state
        }

    # -- evaluation ----------------------------------------------------------------------------
    def evaluation_grid(self, resolution: Mapping[str, int] | None = None) -> TensorGrid:
        """The grid on which errors are measured and output is written.

        On periodic axes the duplicate endpoint is left out. Default resolution:
        ``evaluation_resolution``, else 256 (1D) / 101 (2D) / 33 (3D) points per spatial axis
        and 101 (1D) / 11 (2D, 3D) times.
        """
        dom = self.domain()
        bounds, periodic = dom.bounds, dom.periodic
        nspace = len(self.coordinates) - int(self.time_dependent)
        default_space = {1: 256, 2: 101, 3: 33}.get(nspace, 17)
        default_time = 101 if nspace == 1 else 11
        res = dict(self.evaluation_resolution)
        res.update(resolution or {})
        axes = {}
        for i, c in enumerate(self.coordinates):
            n = res.get(c, default_time if c == "t" else default_space)
            axes[c] = uniform_axis(bounds[0, i], bounds[1, i], n, periodic[i])
        return TensorGrid(axes)

    @property
    def spatial_coordinates(self) -> tuple[str, ...]:
        return tuple(c for c in self.coordinates if c != "t")

    def is_spacetime(self) -> bool:
        return isinstance(self.domain(), SpaceTime)


# -- helpers ---------------------------------------------------------------------------------------
def check_simulation_input(
    problem: Problem, initial_states: Mapping[str, np.ndarray], grid, times
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Validate :meth:`Problem.simulate`'s arguments; float64 states and times."""
    if not problem.time_dependent:
        raise ParameterError(f"{problem.name} is steady: there is nothing to simulate")
    names = tuple(problem.coordinates[:-1])
    if tuple(grid.coordinates) != names:
        raise ParameterError(
            f"the grid's coordinates {tuple(grid.coordinates)} are not {problem.name}'s spatial "
            f"coordinates {names}"
        )
    lo, hi = problem.domain().bounds[:, :-1]
    if not (np.allclose(grid.lo, lo) and np.allclose(grid.hi, hi)):
        raise ParameterError(
            f"the grid covers [{grid.lo.tolist()}, {grid.hi.tolist()}]; {problem.name}'s domain "
            f"is [{lo.tolist()}, {hi.tolist()}]"
        )
    per = tuple(bool(p) for p in problem.domain().periodic[:-1])
    if tuple(grid.periodic) != per:
        raise ParameterError(f"the grid's periodic axes {grid.periodic} must be {per}")
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    t0 = problem.domain().time.t0
    if times.size < 1 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ParameterError("times must be a non-empty, finite, strictly increasing sequence")
    if abs(times[0] - t0) > 1e-12 * max(1.0, abs(t0)):
        raise ParameterError(f"times must start at the initial time t0 = {t0}; got {times[0]}")
    shape = grid.shape_of(problem.state_location)
    missing = [k for k in problem.state if k not in initial_states]
    extra = [k for k in initial_states if k not in problem.state]
    if missing or extra:
        raise ParameterError(
            f"initial states of {problem.name} need exactly the state fields "
            f"{list(problem.state)}; got {sorted(initial_states)}"
        )
    states, batch = {}, None
    for k in problem.state:
        v = np.asarray(initial_states[k], dtype=np.float64)
        if v.ndim != len(shape) + 1 or v.shape[1:] != shape:
            raise ParameterError(
                f"initial state {k!r} must have shape (batch, *{shape}) at the grid's "
                f"{problem.state_location}s; got {v.shape}"
            )
        if batch is not None and v.shape[0] != batch:
            raise ParameterError("all initial state fields need the same batch size")
        if not np.all(np.isfinite(v)):
            raise ParameterError(f"initial state {k!r} has non-finite values")
        batch = v.shape[0]
        states[k] = v
    return states, times


def _tensor(v) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v, dtype=np.float64))


def _as_points(points: np.ndarray, ncols: int) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim == 1 and ncols == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] != ncols:
        raise ValueError(f"points must have shape (n, {ncols}); got {pts.shape}")
    return pts


_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


def _coerce(problem: Problem, f: dataclasses.Field, value: Any) -> Any:
    tname = f.type if isinstance(f.type, str) else f.type.__name__
    want = _TYPES.get(tname)
    label = f"parameter {f.name!r} of {problem.name or type(problem).__name__}"
    if want is float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ParameterError(f"{label} must be a number; got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"{label} must be finite; got {value!r}")
    elif want is int:
        if isinstance(value, bool) or not (
            isinstance(value, int | np.integer) or (isinstance(value, float) and value.is_integer())
        ):
            raise ParameterError(f"{label} must be an integer; got {value!r}")
        value = int(value)
    elif want is bool and not isinstance(value, bool):
        raise ParameterError(f"{label} must be true or false; got {value!r}")
    elif want is str and isinstance(value, os.PathLike):
        value = os.fspath(value)  # a path parameter given as a pathlib.Path
        if not isinstance(value, str):
            raise ParameterError(f"{label} must be a string; got the bytes path {value!r}")
    elif want is str and not isinstance(value, str):
        raise ParameterError(f"{label} must be a string; got {value!r}")
    return value


def _check_range(problem: Problem, name: str, value: Any, meta: Mapping[str, Any]) -> None:
    label = f"parameter {name!r} of {problem.name or type(problem).__name__}"
    choices = meta.get("choices")
    if choices is not None:
        if value not in choices:
            raise ParameterError(f"{label} must be {describe_range(meta)}; got {value!r}")
        return
    low, high = meta.get("low"), meta.get("high")
    bad = (low is not None and (value < low or (meta.get("low_open") and value == low))) or (
        high is not None and (value > high or (meta.get("high_open") and value == high))
    )
    if bad:
        raise ParameterError(f"{label} must be in {describe_range(meta)}; got {value!r}")
