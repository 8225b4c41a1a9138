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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from pdekit.core.fields import Fields
from pdekit.errors import ParameterError
from pdekit.geometries.grid import TensorGrid, uniform_axis
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
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class BC:
    """A boundary condition on the part ``tag`` of the spatial boundary (None: all of it).

    kind:
        ``"dirichlet"`` (field = value) or ``"neumann"`` (outward normal derivative = value).
        Periodic directions are a property of the geometry, not a BC.
    fields:
        The fields constrained.
    value:
        Function of points (n, len(coordinates)), torch, returning ``{field: tensor (n,)}``.
    """

    kind: str
    fields: tuple[str, ...]
    value: ValueFn
    tag: str | None = None

    def __post_init__(self):
        if self.kind not in ("dirichlet", "neumann"):
            raise ParameterError(f"BC kind must be 'dirichlet' or 'neumann'; got {self.kind!r}")


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
            rows.append(
                {
                    "name": f.name,
                    "type": f.type if isinstance(f.type, str) else f.type.__name__,
                    "default": f.default,
                    "range": describe_range(meta),
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

    def initial_condition(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fields at t0 at spatial points x (n, spatial dim)."""
        raise NotImplementedError(f"{self.name} has no initial condition")

    def boundary_conditions(self) -> list[BC]:
        """Conditions on the non-periodic parts of the spatial boundary."""
        return []

    def residual(self, f: Fields) -> dict[str, torch.Tensor]:
        """The PDE residuals, one named tensor (n,) per equation."""
        raise NotImplementedError

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
    def diffusivity(self) -> float | None:
        """Constant ``D`` of the form of :meth:`characteristic_velocity` (0 for pure convection);
        None (the default) when the problem is not of that form."""
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
