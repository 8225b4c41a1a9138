"""Residuals on grids: a problem's own ``residual(f)`` evaluated on gridded arrays.

Grid learners (operator networks, neural time steppers, hard-constraint bases) predict fields on a
:class:`~pdekit.geometries.Grid` rather than at points. This module turns such arrays into a
:class:`~pdekit.core.fields.Fields` accessor, so the residual every problem writes once runs on
them unchanged, with the problem's own boundary conditions::

    grid = Grid.on(problem.domain().space, 64)
    f = grid_fields(problem, {"w": w}, grid, times=t, engine="spectral")   # w: (B, nt, 64, 64)
    res = problem.residual(f)                                              # {name: (B, nt, 64, 64)}

Arrays are laid out ``(*batch, [time,] *space)``: any leading batch dimensions, then the time
levels of a time-dependent problem, then one dimension per spatial axis in the order of
``grid.coordinates`` at the field's location (:meth:`~pdekit.geometries.Grid.shape_of`).

Space. ``engine="stencil"``: finite differences of order 2 or 4
(:class:`~pdekit.core.stencil.StencilFields`) on centred, nodal or staggered (MAC) samples, with
the problem's boundary conditions on bounded axes (:func:`grid_boundary`); ``engine="spectral"``:
FFT derivatives (:class:`~pdekit.core.spectral.SpectralFields`), every spatial axis periodic.

Time, ``time_scheme`` (``times`` must be uniform):

==============  ====================================================  ==========  ==============
scheme          the time derivative                                   output at   order in dt
==============  ====================================================  ==========  ==============
``"central"``   centred stencil of ``order`` across the levels        every       ``order``
                (one-sided at the first and last)                     level
``"cn"``        (u^{n+1} - u^n) / dt; every other term on the mean    midpoints   2
                of the two levels (Crank-Nicolson / implicit          t + dt/2
                midpoint)
``"bdf1"``      (u^n - u^{n-1}) / dt                                  levels 1..  1
``"bdf2"``      (3 u^n - 4 u^{n-1} + u^{n-2}) / (2 dt)                levels 2..  2
``"spectral"``  FFT along time: the levels are one period of a        every       spectral
                time-periodic window (level nt would repeat level 0)  level
==============  ====================================================  ==========  ==============

The orders are measured by the tests (``tests/problems/test_grid_physics.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pdekit.core import spectral
from pdekit.core.fields import Fields, Key
from pdekit.core.spectral import SpectralFields
from pdekit.core.stencil import ORDERS, Boundary, Side, StencilFields, axis_derivative
from pdekit.errors import ParameterError, UnknownNameError
from pdekit.geometries.grid import Grid

ENGINES = ("stencil", "spectral")
TIME_SCHEMES = ("central", "cn", "bdf1", "bdf2", "spectral")
#: order in dt of each time scheme (``None``: the stencil's ``order``; ``inf``: spectral)
TIME_ORDER = {"central": None, "cn": 2, "bdf1": 1, "bdf2": 2, "spectral": math.inf}
#: time levels each scheme needs at least (``central``: ``order + 2``, see :func:`_need`)
_TIME_LEVELS = {"cn": 2, "bdf1": 2, "bdf2": 3, "spectral": 3}
_DT = "d/dt "  # prefix of the time-derivative pseudo-fields handed to the spatial engine


def axis_locations(grid: Grid, location: str) -> list[str]:
    """Per-axis sample location of the stencil engine (``"cell"``/``"node"``) for a grid
    location (``"center"``, ``"node"``, ``"face_x"``...)."""
    grid._check_location(location)
    out = []
    for k in range(grid.dim):
        on_node = location == "node" or location == f"face_{'xyz'[k]}"
        out.append("node" if on_node else "cell")
    return out


def _space(problem):
    dom = problem.domain()
    return dom.space if problem.time_dependent else dom


def grid_boundary(
    problem,
    grid: Grid,
    t: np.ndarray | float | None = None,
    *,
    locations: Mapping[str, str] | str = "center",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> dict[str, list[Boundary]]:
    """The stencil engine's boundary data of every field: a problem's BCs on a grid.

    Parameters
    ----------
    problem:
        The problem; its :meth:`~pdekit.problems.Problem.boundary_conditions` are read.
    grid:
        The spatial grid (its coordinates are the problem's spatial coordinates).
    t:
        Time(s) at which the data are taken: a number, or an array (m,) of levels, which puts a
        leading time dimension on every side's data (matching arrays ``(*batch, m, *space)``).
        None for steady problems.
    locations:
        Where each field sits on the grid (one location for all, or ``{field: location}``): the
        boundary data are evaluated at that field's tangential positions.

    Returns
    -------
    ``{field: [Boundary per axis]}``: periodic axes periodic; on a bounded axis each end holds
    the BC naming the field there (Dirichlet, Neumann or Robin, data as tensors), or ``"free"``
    one-sided extrapolation where the problem prescribes nothing for that field.
    """
    times = None if t is None else np.atleast_1d(np.asarray(t, dtype=np.float64))
    if problem.time_dependent and times is None:
        raise ParameterError(f"{problem.name} is time-dependent: grid_boundary needs t")
    out: dict[str, list[Boundary]] = {}
    for name in problem.fields:
        loc = locations.get(name, "center") if isinstance(locations, Mapping) else locations
        found = bcs_by_side(problem, grid, name)
        axes = []
        for k in range(grid.dim):
            if grid.periodic[k]:
                axes.append(Boundary.make_periodic())
                continue
            ends = [
                side_data(found[(k, s)], name, grid, k, s, loc, times, dtype, device)
                if (k, s) in found
                else Side("free")
                for s in (-1, 1)
            ]
            axes.append(Boundary(ends[0], ends[1]))
        out[name] = axes
    return out


def bcs_by_side(problem, grid: Grid, field: str) -> dict[tuple[int, int], Any]:
    """The problem's BC on ``field`` at each end of each bounded axis of ``grid``:
    ``{(axis, -1 | +1): BC}``. A BC's tag (``"xmin"``, an alias such as ``"top"``) names its
    end; a BC with tag None holds on every end. Two BCs on one end of one field are refused."""
    space = _space(problem)
    found: dict[tuple[int, int], Any] = {}
    for bc in problem.boundary_conditions():
        if field not in bc.fields:
            continue
        if bc.kind == "traction":
            raise ParameterError(
                f"{problem.name}: a 'traction' boundary condition (on {bc.tag or 'the boundary'}) "
                "couples velocity and pressure and has no grid form here; grid engines take "
                "Dirichlet, Neumann and Robin conditions"
            )
        if bc.tag is not None:
            ends = [space.facet(bc.tag)]
        else:
            ends = [(k, s) for k in range(grid.dim) if not grid.periodic[k] for s in (-1, 1)]
        for end in ends:
            if end in found:
                k, s = end
                raise ParameterError(
                    f"{problem.name}: two boundary conditions on field {field!r} at the "
                    f"{'lower' if s < 0 else 'upper'} end of axis {grid.coordinates[k]!r}"
                )
            found[end] = bc
    return found


def side_data(bc, name, grid, k, side, location, times, dtype, device) -> Side:
    """One BC's data on one end of axis k: tensors of shape ``([m,] *tangential)``, the boundary
    slice without axis k, evaluated at the face positions of ``location`` and at each time."""
    axes = grid.axes(location)
    pos = [np.asarray(a) for a in axes.values()]
    pos[k] = np.array([grid.hi[k] if side > 0 else grid.lo[k]])
    mesh = np.meshgrid(*pos, indexing="ij")
    pts = np.stack([m.reshape(-1) for m in mesh], axis=1)
    shape = tuple(p.size for p in pos)
    if times is not None:
        nt = times.size
        pts = np.concatenate([np.tile(pts, (nt, 1)), np.repeat(times, len(pts))[:, None]], axis=1)
        shape = (nt, *shape)
    x = torch.as_tensor(pts, dtype=torch.float64)
    with torch.no_grad():
        value = bc.value(x)[name]
        a, b = bc.coefficients(x)

    shape = shape[: len(shape) - grid.dim + k] + shape[len(shape) - grid.dim + k + 1 :]

    def arr(v):  # the data over the boundary slice, without axis k (see core.stencil.Side)
        return torch.as_tensor(v, dtype=dtype, device=device).reshape(shape)

    if bc.kind == "robin":
        return Side("robin", arr(value), arr(a), arr(b))
    return Side(bc.kind, arr(value))


class GridFields(Fields):
    """The fields accessor of :func:`grid_fields`: time derivatives by the chosen scheme, every
    other quantity by a spatial engine over the axes ``("t", *space)`` (steady: ``space``).

    The spatial engine holds, besides each field's values at the evaluation levels, the time
    derivatives of the fields whose ``"t"`` derivatives are declared, as pseudo-fields at the
    field's location; so a time derivative reaches a staggered target location (and mixed
    derivatives such as ``"xt"``) through the same stencils as the field itself, with one-sided
    ("free") extrapolation at bounded ends.
    """

    def __init__(self, problem, inner: Fields, times: np.ndarray | None, scheme: str):
        super().__init__(problem.coordinates, problem.fields, problem.derivatives)
        self.problem, self.inner, self.times, self.scheme = problem, inner, times, scheme
        self.shape = inner.shape

    def _split(self, key: Key) -> tuple[int, tuple[str, ...]]:
        names = tuple(self.coordinates[i] for i in key)
        return names.count("t"), tuple(n for n in names if n != "t")

    def _value(self, field: str) -> torch.Tensor:
        return self.inner[field]

    def _derivative(self, field: str, key: Key) -> torch.Tensor:
        nt, rest = self._split(key)
        target = field if nt == 0 else f"{_DT * nt}{field}"
        if target not in self.inner.fields:
            raise ParameterError(
                f"time scheme {self.scheme!r} gives time derivatives of order 1"
                + (" and 2" if self.scheme in ("central", "spectral") else "")
                + f"; d{field}/d{''.join(self.coordinates[i] for i in key)} was asked"
            )
        return self.inner[target] if not rest else self.inner.d(target, rest)

    def _laplacian(self, field: str) -> torch.Tensor:
        return self.inner.d(field, "laplacian")

    def _coord(self, index: int) -> torch.Tensor:
        return self.inner.coord(self.coordinates[index])


def _need(axis: str, n: int, need: int, why: str) -> None:
    if n < need:
        raise ParameterError(
            f"grid axis {axis!r} has {n} points; {why} needs at least {need}. "
            "Refine the grid or lower the order."
        )


def _time_derivatives(u: torch.Tensor, dim: int, k: int, dt: float, scheme: str, order: int):
    """The k-th time derivative of levels ``u`` along ``dim`` at the scheme's output levels."""
    n = u.shape[dim]

    def lv(a, b):
        return u.narrow(dim, a, n - a - b)

    if scheme == "central":
        return axis_derivative(u, dim, k, dt, order=order, boundary="free", source="node")
    if scheme == "spectral":
        moved = u.movedim(dim, -1)
        return spectral.derivative(moved, [k], [n * dt]).movedim(-1, dim)
    if k != 1:
        raise ParameterError(f"time scheme {scheme!r} gives first time derivatives only")
    if scheme in ("cn", "bdf1"):
        return (lv(1, 0) - lv(0, 1)) / dt
    return (3 * lv(2, 0) - 4 * lv(1, 1) + lv(0, 2)) / (2 * dt)  # bdf2


def _levels(u: torch.Tensor, dim: int, scheme: str) -> torch.Tensor:
    """The values at the scheme's output levels (CN: the mean of consecutive levels)."""
    n = u.shape[dim]
    if scheme == "cn":
        return 0.5 * (u.narrow(dim, 0, n - 1) + u.narrow(dim, 1, n - 1))
    skip = {"bdf1": 1, "bdf2": 2}.get(scheme, 0)
    return u.narrow(dim, skip, n - skip)


def _level_times(times: np.ndarray, scheme: str) -> np.ndarray:
    if scheme == "cn":
        return 0.5 * (times[1:] + times[:-1])
    return times[{"bdf1": 1, "bdf2": 2}.get(scheme, 0) :]


def grid_fields(
    problem,
    values: Mapping[str, Any],
    grid: Grid,
    *,
    times: Sequence[float] | np.ndarray | None = None,
    engine: str = "stencil",
    order: int = 2,
    time_scheme: str = "central",
    locations: Mapping[str, str] | str = "center",
    target: str | None = None,
    boundary: bool = True,
) -> GridFields:
    """A :class:`~pdekit.core.fields.Fields` over gridded arrays on which ``problem.residual``
    runs unchanged.

    Parameters
    ----------
    problem:
        The problem (its coordinates, fields, declared derivatives and boundary conditions).
    values:
        ``{field: array (*batch, [nt,] *grid.shape_of(location))}``, torch or numpy (numpy is
        taken as float64); every field of the problem that its residual reads.
    grid:
        The spatial :class:`~pdekit.geometries.Grid` (coordinates: the problem's spatial ones).
    times:
        The ``nt`` uniform time levels (time-dependent problems).
    engine:
        ``"stencil"`` (finite differences, any boundaries) or ``"spectral"`` (FFT, periodic
        spatial axes only).
    order:
        Stencil order, 2 or 4 (space; and time for ``time_scheme="central"``).
    time_scheme:
        ``"central"``, ``"cn"``, ``"bdf1"``, ``"bdf2"`` or ``"spectral"`` (module docstring).
    locations:
        Where each field's samples sit: one grid location for all (``"center"``, ``"node"``,
        ``"face_x"``...) or ``{field: location}`` (MAC: ``{"u": "face_x", "v": "face_y", "p":
        "center"}``). The spectral engine needs all fields at one location.
    target:
        The grid location of the results (default: the fields' common location, else centres).
    boundary:
        Apply the problem's boundary conditions on bounded axes (:func:`grid_boundary`); False
        extrapolates one-sidedly everywhere (for data that need not satisfy them).

    Returns
    -------
    :class:`GridFields`: ``f[...]``, ``f.d(...)`` of shape ``(*batch, [m,] *target shape)``
    with m the scheme's output levels; ``f.coord(...)`` broadcasts against them.

    Raises
    ------
    ParameterError
        For an unknown engine or scheme, fields missing, a grid axis or a time axis with too few
        points for the order (naming the axis, its points and the points needed), non-uniform
        times, or a spectral engine on a bounded axis.
    """
    if engine not in ENGINES:
        raise UnknownNameError("grid engine", engine, ENGINES)
    if time_scheme not in TIME_SCHEMES:
        raise UnknownNameError("time scheme", time_scheme, TIME_SCHEMES)
    if order not in ORDERS:
        raise ParameterError(f"order must be one of {list(ORDERS)}; got {order!r}")
    space_names = tuple(c for c in problem.coordinates if c != "t")
    if tuple(grid.coordinates) != space_names:
        raise ParameterError(
            f"grid coordinates {tuple(grid.coordinates)} are not {problem.name}'s spatial "
            f"coordinates {space_names}"
        )
    missing = [k for k in problem.fields if k not in values]
    if missing:
        raise ParameterError(f"values lack fields {missing} of {problem.name}")
    locs = {
        k: (locations.get(k, "center") if isinstance(locations, Mapping) else locations)
        for k in problem.fields
    }
    for loc in locs.values():
        grid._check_location(loc)
    if engine == "spectral":
        if not all(grid.periodic):
            raise ParameterError(
                "the spectral engine needs every spatial axis periodic; "
                f"{grid.coordinates} periodic = {grid.periodic}"
            )
        if len(set(locs.values())) > 1 or (target is not None and {target} != set(locs.values())):
            raise ParameterError(
                "the spectral engine needs every field and the target at one location"
            )
    for k, c in enumerate(grid.coordinates):
        if engine == "spectral":
            _need(c, grid.n[k], 3, "spectral differentiation")
        elif grid.periodic[k]:
            _need(c, grid.n[k], order + 1, f"a periodic stencil of order {order}")
        else:
            _need(c, grid.n[k], order + 2, f"a stencil of order {order} near a boundary")

    tensors = {k: _as_tensor(values[k]) for k in problem.fields}
    ref = tensors[problem.fields[0]]
    timed = problem.time_dependent
    level_times = None
    if timed:
        if times is None:
            raise ParameterError(f"{problem.name} is time-dependent: grid_fields needs times")
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        nt = times.size
        need = order + 2 if time_scheme == "central" else _TIME_LEVELS[time_scheme]
        _need(
            "t",
            nt,
            need,
            f"time scheme {time_scheme!r}"
            + (f" of order {order}" if time_scheme == "central" else ""),
        )
        dt = float(times[1] - times[0])
        if not (dt > 0 and np.allclose(np.diff(times), dt, rtol=1e-9, atol=0)):
            raise ParameterError("times must be uniform and increasing")
        level_times = _level_times(times, time_scheme)
    d = grid.dim
    for k, v in tensors.items():
        shape = grid.shape_of(locs[k])
        lead = v.ndim - d
        if (
            tuple(v.shape[lead:]) != shape
            or lead < int(timed)
            or (timed and v.shape[lead - 1] != nt)
        ):
            want = (
                (f"(*batch, nt={nt}, " if timed else "(*batch, ") + ", ".join(map(str, shape)) + ")"
            )
            raise ParameterError(
                f"field {k!r} ({locs[k]}) needs shape {want}; got {tuple(v.shape)}"
            )

    # the values at the output levels, and the declared time derivatives as pseudo-fields
    inner_values: dict[str, torch.Tensor] = {}
    inner_locs: dict[str, str] = {}
    for k, v in tensors.items():
        if not timed:
            inner_values[k] = v
            inner_locs[k] = locs[k]
            continue
        tdim = v.ndim - d - 1
        inner_values[k] = _levels(v, tdim, time_scheme)
        inner_locs[k] = locs[k]
        specs = problem.derivatives.get(k, ())
        orders_t = {s.count("t") for s in specs if s != "laplacian" and "t" in s}
        for m in sorted(orders_t):
            inner_values[f"{_DT * m}{k}"] = _time_derivatives(v, tdim, m, dt, time_scheme, order)
            inner_locs[f"{_DT * m}{k}"] = locs[k]

    coords = (("t",) if timed else ()) + tuple(grid.coordinates)
    if engine == "spectral":
        loc = next(iter(locs.values()))
        pos = [float(a[0]) for a in grid.axes(loc).values()]
        inner = SpectralFields(
            inner_values,
            coords,
            ([float(dt)] if timed else []) + list(grid.spacing),
            origin=([float(level_times[0])] if timed else []) + pos,
            periodic=([False] if timed else []) + [True] * d,
            order=order,
        )
        return GridFields(problem, inner, level_times, time_scheme)

    bc = {}
    if boundary:
        bc = grid_boundary(
            problem,
            grid,
            _boundary_times(times, time_scheme) if timed else None,
            locations=locs,
            dtype=ref.dtype,
            device=ref.device,
        )
        if timed and time_scheme == "cn":
            bc = {k: [_mean_levels(b) for b in axes] for k, axes in bc.items()}
    free = [Boundary.make_periodic() if p else Boundary.free() for p in grid.periodic]
    if not boundary:
        bc = {k: free for k in problem.fields}
    time_b = [Boundary.free()] if timed else []
    # time-derivative pseudo-fields extrapolate one-sidedly (their data is not the field's)
    boundaries = {k: time_b + list(bc.get(k, free)) for k in inner_values}
    stencil_locs = {
        k: (["node"] if timed else []) + axis_locations(grid, loc) for k, loc in inner_locs.items()
    }
    tgt = None
    if target is not None:
        grid._check_location(target)
        tgt = (["node"] if timed else []) + axis_locations(grid, target)
    elif len(set(locs.values())) > 1:
        tgt = (["node"] if timed else []) + ["cell"] * d
    inner = StencilFields(
        inner_values,
        coords,
        ([float(dt)] if timed else []) + list(grid.spacing),
        origin=([float(level_times[0])] if timed else []) + list(grid.lo),
        order=order,
        boundary=boundaries,
        location=stencil_locs,
        target=tgt,
    )
    return GridFields(problem, inner, level_times, time_scheme)


def _boundary_times(times: np.ndarray, scheme: str) -> np.ndarray:
    """The times whose boundary data the output levels use (CN: both levels, averaged later)."""
    return times if scheme == "cn" else _level_times(times, scheme)


def _mean_levels(b: Boundary) -> Boundary:
    """CN: the boundary data of consecutive levels averaged, like the fields themselves."""
    if b.periodic:
        return b

    def mean(side: Side) -> Side:
        if side.kind == "free":
            return side
        avg = [
            0.5 * (x[1:] + x[:-1]) if isinstance(x, torch.Tensor) else x
            for x in (side.value, side.a, side.b)
        ]
        return Side(side.kind, *avg)

    return Boundary(mean(b.lo), mean(b.hi))


def _as_tensor(v) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v
    return torch.as_tensor(np.asarray(v, dtype=np.float64))


def grid_residual(
    problem,
    values: Mapping[str, Any],
    grid: Grid,
    *,
    outputs: Mapping[str, str] | None = None,
    **kwargs,
) -> dict[str, torch.Tensor]:
    """``problem.residual`` on gridded values, each equation at its own grid location.

    ``outputs`` maps equation names to grid locations (on a MAC grid: ``{"momentum_x":
    "face_x", "momentum_y": "face_y", "continuity": "center"}``); equations not named are
    returned at the default target of :func:`grid_fields`. The residual is evaluated once per
    distinct location. Other keyword arguments go to :func:`grid_fields`.
    """
    if "target" in kwargs:
        raise ParameterError("grid_residual takes per-equation locations in outputs, not target")
    outputs = dict(outputs or {})
    out: dict[str, torch.Tensor] = {}
    names: tuple[str, ...] = ()
    for loc in dict.fromkeys(outputs.values()):
        res = problem.residual(grid_fields(problem, values, grid, target=loc, **kwargs))
        names = tuple(res)
        for eq, where in outputs.items():
            if eq not in res:
                raise UnknownNameError("equation", eq, names)
            if where == loc:
                out[eq] = res[eq]
    if not outputs or any(n not in outputs for n in names):
        res = problem.residual(grid_fields(problem, values, grid, **kwargs))
        out.update({k: v for k, v in res.items() if k not in outputs})
    return out
