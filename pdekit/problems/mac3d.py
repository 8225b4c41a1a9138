"""3D scenes on a staggered (MAC) grid, and the curl of an edge potential:
:mod:`pdekit.problems.mac` one dimension up, for the 3D grid flow solvers (the projection reference
:mod:`~pdekit.problems.references.projection3d`, ``neural_stagger`` on 3D problems).

Layout (``grid`` a 3D :class:`~pdekit.geometries.Grid` flagged periodic on every axis, so every
location has X x Y x Z samples; 'ij' indexing, axis 0 along x):

* ``p[i, j, k]`` at the cell centre;
* ``u``, ``v``, ``w`` on the faces normal to x, y, z on the low side of cell (i, j, k);
* a vector potential ``a`` ``(3, X, Y, Z)`` on the cell edges: ``a_x[i, j, k]`` at
  (x0 + (i + 1/2) h_x, y0 + j h_y, z0 + k h_z), ``a_y`` and ``a_z`` alike; the velocity
  ``curl a`` (:func:`velocity_from_potential`) lands on the faces and its discrete divergence
  (:func:`divergence`) vanishes to round-off (differences commute).

Boundaries follow the 2D module (Harlow & Welch's staircase walls): a face between a solid and a
fluid cell is a WALL face (the solid's normal velocity); a sample inside solids next to a fluid
sample of the same component across either tangential axis is a GHOST (mirrored for no-slip,
second order on grid-aligned walls, what the projection solver imposes; or, ``mirror=False``,
the solid's velocity itself, Wandel et al.'s first-order wall, which a curl can meet); other
samples inside solids take the solid's velocity (INSIDE).

Periodic flow. Unlike the 2D scenes (always boxed in by a solid ring), an axis may be periodic
for the flow itself (:attr:`MacScene3d.periodic`): nothing is solid at its ends and the stencils
wrap, as the flow does. A channel then needs no inlet or outlet: a uniform body force
(:attr:`MacScene3d.body_force`, an acceleration, e.g. a mean pressure gradient) drives it, and a
curl-based learner sets its flux locally (the force acts everywhere) instead of carrying an
inflow down the channel (the receptive-field problem of the 2D channel, measured in
``docs/guide/operators.md``). On a non-periodic axis the outermost cells must be solid; the
samples where the curl wraps around such an axis (each component's last index along its
tangential non-periodic axes) get the role FREE and must lie inside solids
(:meth:`MacScene3d.check_curl_layout`; :func:`duct_scene` puts two solid cells above the box),
as in 2D: a net flux through a cross-section returns there.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries.grid import Grid
from pdekit.problems.mac import FLUID, FREE, GHOST, INSIDE, RING, WALL, _shift, rasterise

#: the velocity components and the axis each is normal to
COMPONENTS = ("u", "v", "w")


def _tangential(axis: int) -> tuple[int, int]:
    return tuple(k for k in range(3) if k != axis)


@dataclass(frozen=True, eq=False)
class MacScene3d:
    """Solid cells, their velocities and a body force on a 3D MAC layout (module docstring).

    Parameters
    ----------
    grid:
        The array layout: X x Y x Z cells, flagged periodic on every axis.
    solid:
        Bool array (X, Y, Z): cells inside walls or obstacles. On every axis that is not
        ``periodic`` the outermost cells must be solid.
    wall_velocity:
        Array (3, X, Y, Z): the velocity (u, v, w) of each solid cell (ignored at fluid cells).
    periodic:
        Per axis: does the flow itself wrap around (module docstring)?
    body_force:
        A uniform acceleration (f_x, f_y, f_z) on the fluid.
    name:
        A label for messages.
    """

    grid: Grid
    solid: torch.Tensor
    wall_velocity: torch.Tensor
    periodic: tuple[bool, bool, bool] = (False, False, False)
    body_force: tuple[float, float, float] = (0.0, 0.0, 0.0)
    name: str = "scene"

    def __post_init__(self):
        g = self.grid
        if g.dim != 3 or not all(g.periodic):
            raise ParameterError("a MacScene3d needs a 3D grid flagged periodic on every axis")
        solid = torch.as_tensor(np.asarray(self.solid), dtype=torch.bool)
        wall = torch.as_tensor(np.asarray(self.wall_velocity), dtype=torch.float64)
        if tuple(solid.shape) != g.n or tuple(wall.shape) != (3, *g.n):
            raise ParameterError(
                f"solid needs shape {g.n} and wall_velocity (3, *{g.n}); got "
                f"{tuple(solid.shape)} and {tuple(wall.shape)}"
            )
        try:
            periodic = tuple(bool(p) for p in self.periodic)
            force = tuple(float(f) for f in self.body_force)
        except (TypeError, ValueError):
            periodic, force = (), ()
        if len(periodic) != 3 or len(force) != 3 or not all(map(math.isfinite, force)):
            raise ParameterError(
                f"periodic needs three flags and body_force three finite numbers; got "
                f"{self.periodic}, {self.body_force}"
            )
        for axis in range(3):
            if periodic[axis]:
                continue
            ends = torch.cat([solid.select(axis, k).reshape(-1) for k in (0, -1)])
            if not bool(ends.all()):
                raise ParameterError(
                    f"scene {self.name!r}: the outermost cells along axis {axis} (not periodic) "
                    "must be solid"
                )
        if not bool((~solid).any()):
            raise ParameterError(f"scene {self.name!r} has no fluid cell")
        object.__setattr__(self, "solid", solid)
        object.__setattr__(self, "wall_velocity", wall * solid)
        object.__setattr__(self, "periodic", periodic)
        object.__setattr__(self, "body_force", force)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.n

    @property
    def fluid(self) -> torch.Tensor:
        """Bool (X, Y, Z): fluid cells."""
        return ~self.solid

    def _wrapped(self, axis: int) -> torch.Tensor:
        """The samples of component ``axis`` whose curl wraps around a non-periodic axis."""
        out = torch.zeros(self.grid.n, dtype=torch.bool)
        for t in _tangential(axis):
            if not self.periodic[t]:
                out.select(t, -1).fill_(True)
        return out

    @functools.cached_property
    def roles(self) -> dict[str, torch.Tensor]:
        """``{"u": int8 (X, Y, Z), "v": ..., "w": ...}``: FLUID, WALL, GHOST, INSIDE or FREE."""
        out = {}
        s = self.solid
        for axis, comp in enumerate(COMPONENTS):
            b = _shift(s, 1, axis)
            role = torch.full(s.shape, INSIDE, dtype=torch.int8)
            role[~s & ~b] = FLUID
            role[s ^ b] = WALL
            fluid = role == FLUID
            near = torch.zeros_like(fluid)
            for t in _tangential(axis):
                near |= _shift(fluid, 1, t) | _shift(fluid, -1, t)
            role[(s & b) & near] = GHOST
            role[(role == INSIDE) & self._wrapped(axis)] = FREE
            out[comp] = role
        return out

    @functools.cached_property
    def targets(self) -> dict[str, torch.Tensor]:
        """``{"u": (X, Y, Z), ...}``: the prescribed velocity of every non-fluid sample (the
        solid cell's normal velocity on wall faces, the mean of the two cells' inside solids),
        0 at fluid samples."""
        out = {}
        s = self.solid
        for axis, comp in enumerate(COMPONENTS):
            w = self.wall_velocity[axis]
            b = _shift(s, 1, axis)
            w_behind = _shift(w, 1, axis)
            t = torch.where(s & ~b, w, w_behind)
            t = torch.where(s & b, 0.5 * (w + w_behind), t)
            out[comp] = torch.where(self.roles[comp] == FLUID, torch.zeros_like(t), t)
        return out

    def check_curl_layout(self) -> None:
        """ParameterError unless every sample where a curl wraps around a non-periodic axis lies
        inside solids (FREE): needed by solvers whose velocity is a curl."""
        for axis, comp in enumerate(COMPONENTS):
            if self.body_force[axis] and all(self.periodic[t] for t in _tangential(axis)):
                raise ParameterError(
                    f"scene {self.name!r}: a curl of a periodic potential carries no net flux "
                    f"along axis {axis}, which the body force {self.body_force[axis]:g} drives: "
                    "make an axis across it non-periodic (walls)"
                )
            if bool((self.roles[comp][self._wrapped(axis)] != FREE).any()):
                raise ParameterError(
                    f"scene {self.name!r}: the {comp} samples where a curl wraps around the "
                    "layout (the last index along a non-periodic axis) must lie inside solids: "
                    "add a second solid cell on the high side (duct_scene does)"
                )

    def conditions(self, velocity, mirror: bool = True) -> dict[str, torch.Tensor]:
        """Boundary residuals of ``velocity`` = (u, v, w) (each ``(*batch, X, Y, Z)``), 0 at
        fluid samples (:func:`boundary_residuals`)."""
        return boundary_residuals(self.roles, self.targets, velocity, mirror)

    def impose(self, velocity) -> tuple[torch.Tensor, ...]:
        """(u, v, w) with every non-fluid sample set so that :meth:`conditions` (mirrored ghosts)
        vanish; ghosts read their fluid neighbours, which are left as they are."""
        res = self.conditions(velocity)
        out = []
        for comp, arr in zip(COMPONENTS, velocity):
            role = self.roles[comp].to(arr.device)
            scale = torch.where(role == GHOST, 0.5, 1.0).to(arr)
            out.append(arr - res[comp] / scale)
        return tuple(out)


def boundary_residuals(roles, targets, velocity, mirror: bool = True) -> dict[str, torch.Tensor]:
    """The boundary conditions' residuals of a 3D scene (or a batch: ``roles`` and ``targets``
    broadcast against each component of ``velocity``, ``(*batch, X, Y, Z)``): value - target on
    wall faces and inside solids; at ghosts (ghost + mean of its fluid neighbours across the
    two tangential axes) / 2 - target, or with ``mirror=False`` ghost - target (Wandel et
    al.'s wall); 0 at fluid and FREE samples. Differentiable."""
    out = {}
    for axis, (comp, arr) in enumerate(zip(COMPONENTS, velocity)):
        role = roles[comp].to(arr.device)
        value = arr
        if mirror:
            near = (role == FLUID).to(arr)
            total = torch.zeros_like(arr)
            count = torch.zeros_like(near)
            for t in _tangential(axis):
                dim = arr.ndim - 3 + t
                for k in (1, -1):
                    nb = _shift(near, k, near.ndim - 3 + t)
                    total = total + _shift(arr, k, dim) * nb
                    count = count + nb
            mean = total / count.clamp(min=1)
            value = torch.where(role == GHOST, 0.5 * (arr + mean), arr)
        free = (role == FLUID) | (role == FREE)
        out[comp] = torch.where(free, torch.zeros_like(arr), value - targets[comp].to(arr))
    return out


def velocity_from_potential(a: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, ...]:
    """(u, v, w) = curl of the edge potential ``a`` ``(*batch, 3, X, Y, Z)`` (module
    docstring): u = d_y a_z - d_z a_y, v = d_z a_x - d_x a_z, w = d_x a_y - d_y a_x by
    differences between neighbouring edges, which puts each component on its faces and makes
    :func:`divergence` vanish to round-off."""
    h = [float(x) for x in grid.spacing]
    n = a.ndim - 4  # leading axes of each component

    def d(f, axis):
        return (_shift(f, -1, n + axis) - f) / h[axis]

    ax, ay, az = a.unbind(-4)
    return d(az, 1) - d(ay, 2), d(ax, 2) - d(az, 0), d(ay, 0) - d(ax, 1)


def divergence(u, v, w, grid: Grid):
    """Discrete divergence at cell centres (the forward differences of the face values)."""
    h = [float(x) for x in grid.spacing]
    n = u.ndim - 3
    return sum((_shift(f, -1, n + k) - f) / h[k] for k, f in enumerate((u, v, w)))


def to_nodes(scene: MacScene3d, u, v, w, p) -> dict[str, np.ndarray]:
    """MAC values ``(*batch, X, Y, Z)`` at the layout's nodes (x0 + i h_x, ...): each velocity
    component the mean of the 4 faces around the node (u: those at j - 1/2, j + 1/2 and
    k - 1/2, k + 1/2), except at nodes touching a solid cell, which move with the solid cells
    around them (the mean of their velocities: 0 at walls at rest, where the mirrored ghosts
    put the wall); p the mean over the fluid cells around the node (0 where there is none)."""
    u, v, w, p = (torch.as_tensor(np.asarray(x), dtype=torch.float64) for x in (u, v, w, p))
    n = u.ndim - 3

    def around(f, axes, lead):
        out = f
        for k in axes:
            out = out + _shift(out, 1, lead + k)
        return out

    solid = scene.solid.to(torch.float64)
    fluid = 1.0 - solid
    touching = around(solid, (0, 1, 2), 0) > 0
    count = around(solid, (0, 1, 2), 0).clamp(min=1)
    out = {}
    for k, (c, f) in enumerate(zip(COMPONENTS, (u, v, w))):
        mean = around(f, _tangential(k), n) / 4
        walls = around(scene.wall_velocity[k] * solid, (0, 1, 2), 0) / count
        out[c] = torch.where(touching, walls, mean).numpy()
    cells = around(fluid, (0, 1, 2), 0)
    out["p"] = (around(p * fluid, (0, 1, 2), n) / cells.clamp(min=1)).numpy()
    return out


def duct_scene(
    length: float,
    side: float,
    cells_across: int,
    force: float,
    obstacles=(),
    pad_to: int = 1,
    *,
    name: str | None = None,
) -> MacScene3d:
    """A square duct [0, length] x [0, side]^2, periodic along x, driven by the body force
    ``force`` along x (a mean pressure gradient), walls at rest on the four sides, ``obstacles``
    (anything with ``contains``: :class:`~pdekit.geometries.csg.Ball`, boxes, CSG shapes,
    meshes) rasterised into solid cells at rest (cell centres inside).

    Cells are cubes, h = side / ``cells_across``; ``length / h`` must be a whole number (the
    period). Across the duct the layout adds one solid cell below and two above the fluid
    (:data:`~pdekit.problems.mac.RING`, where a curl wraps), so a layout has
    ``(length / h, n, n)`` cells, n = ``cells_across + 3`` rounded up to a multiple of
    ``pad_to`` by more solid cells above (a neural stepper splits the layout into pieces and
    down-samples it by 2**depth; the length is the period and is not padded).
    """
    cells_across = int(cells_across)
    if cells_across < 2 or not (length > 0 and side > 0):
        raise ParameterError("a duct needs length, side > 0 and at least 2 cells across")
    h = side / cells_across
    nx = round(length / h)
    if nx < 2 or abs(nx * h - length) > 1e-9 * length:
        raise ParameterError(
            f"the duct's length {length:g} must be a whole number (>= 2) of cells of "
            f"h = side / cells_across = {h:g}"
        )
    if not math.isfinite(force):
        raise ParameterError(f"force must be finite; got {force}")
    if int(pad_to) < 1:
        raise ParameterError(f"pad_to must be >= 1; got {pad_to}")
    low, high = RING
    n = -(-(cells_across + low + high) // int(pad_to)) * int(pad_to)
    high = n - low - cells_across
    grid = Grid(
        (0.0, -low * h, -low * h),
        (length, side + high * h, side + high * h),
        (nx, n, n),
        periodic=True,
    )
    solid = torch.ones(nx, n, n, dtype=torch.bool)
    solid[:, low : low + cells_across, low : low + cells_across] = False
    box = ~solid.clone()
    for geometry in obstacles:
        solid |= torch.as_tensor(rasterise(geometry, grid)) & box
    wall = torch.zeros(3, nx, n, n, dtype=torch.float64)
    label = name or f"duct {length:g} x {side:g}^2, {nx} x {cells_across}^2 cells"
    return MacScene3d(grid, solid, wall, (True, False, False), (float(force), 0.0, 0.0), label)
