"""Scenes on a staggered (MAC) grid: walls, obstacles and inflows as masks, for grid flow solvers.

A :class:`MacScene` is what a grid flow solver (the projection reference
:mod:`~pdekit.problems.references.projection`, the ``neural_stagger`` learner) needs to know
about a 2D incompressible flow's geometry: which cells are solid, and how fast each solid cell
moves (a lid, an inflow, a wall at rest). Every field is one array of the same shape ``(H, W)``
('ij' indexing: axis 0 along x), so coarse pieces split every component alike (pixel unshuffle).

Layout (``grid`` is a :class:`~pdekit.geometries.Grid` whose axes are flagged periodic only so
that every location has H x W samples; nothing wraps where it matters, because the outermost
ring of cells is always solid and no fluid sample's stencil reaches past it):

* ``p[i, j]`` at the cell centre (x0 + (i + 1/2) h_x, y0 + (j + 1/2) h_y);
* ``u[i, j]`` on the face between cells (i - 1, j) and (i, j): (x0 + i h_x, y0 + (j + 1/2) h_y);
* ``v[i, j]`` on the face between cells (i, j - 1) and (i, j): (x0 + (i + 1/2) h_x, y0 + j h_y);
* a 2D vector potential ``a[i, j]`` at the node (x0 + i h_x, y0 + j h_y).

Boundary samples (the classical staircase treatment of a MAC grid, Harlow & Welch 1965): a face
between a solid and a fluid cell is a **wall face**, where the normal velocity is the solid
cell's; a velocity sample between two solid cells next to fluid samples along the wall (u's
neighbours in y, v's in x) is a **ghost**, set so that the mean of the ghost and its fluid
neighbour(s) is the wall's tangential velocity (no-slip, second order on grid-aligned walls);
other samples inside solids take the solid's velocity. :meth:`MacScene.conditions` returns these
conditions as residuals, which a learner penalises and the projection solver imposes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries.grid import Grid

#: roles of a velocity sample (:attr:`MacScene.roles`)
FLUID, WALL, GHOST, INSIDE = 0, 1, 2, 3


def rasterise(geometry, grid: Grid, location: str = "center") -> np.ndarray:
    """Boolean array (grid.shape_of(location)): which samples lie inside ``geometry`` (anything
    with ``contains(points) -> bool array``: a primitive, a CSG shape or a mesh). Counting the
    cells of a shape measures its area to O(h)."""
    pts = np.stack(
        [m.reshape(-1) for m in np.meshgrid(*grid.axes(location).values(), indexing="ij")], 1
    )
    return np.asarray(geometry.contains(pts), dtype=bool).reshape(grid.shape_of(location))


def _shift(a: torch.Tensor, k: int, axis: int) -> torch.Tensor:
    """``a`` moved by k along ``axis``: out[i] = a[i - k] (wraps; only ring samples see a wrap)."""
    return torch.roll(a, k, dims=axis)


@dataclass(frozen=True, eq=False)
class MacScene:
    """Solid cells and their velocities on a 2D MAC layout (module docstring).

    Parameters
    ----------
    grid:
        The array layout: H x W cells over the box, including the solid outer ring.
    solid:
        Bool array (H, W): cells inside walls or obstacles. The outer ring must be solid.
    wall_velocity:
        Array (2, H, W): the velocity (u, v) of each solid cell (ignored at fluid cells).
    name:
        A label for messages.
    """

    grid: Grid
    solid: torch.Tensor
    wall_velocity: torch.Tensor
    name: str = "scene"

    def __post_init__(self):
        g = self.grid
        if g.dim != 2 or not all(g.periodic):
            raise ParameterError(
                "a MacScene needs a 2D grid flagged periodic on both axes (layout)"
            )
        solid = torch.as_tensor(np.asarray(self.solid), dtype=torch.bool)
        wall = torch.as_tensor(np.asarray(self.wall_velocity), dtype=torch.float64)
        if tuple(solid.shape) != g.n or tuple(wall.shape) != (2, *g.n):
            raise ParameterError(
                f"solid needs shape {g.n} and wall_velocity (2, {g.n[0]}, {g.n[1]}); got "
                f"{tuple(solid.shape)} and {tuple(wall.shape)}"
            )
        ring = torch.cat([solid[0], solid[-1], solid[:, 0], solid[:, -1]])
        if not bool(ring.all()):
            raise ParameterError(f"scene {self.name!r}: the outermost ring of cells must be solid")
        if not bool((~solid).any()):
            raise ParameterError(f"scene {self.name!r} has no fluid cell")
        object.__setattr__(self, "solid", solid)
        object.__setattr__(self, "wall_velocity", wall * solid)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.n

    @property
    def fluid(self) -> torch.Tensor:
        """Bool (H, W): fluid cells (where the pressure and the divergence live)."""
        return ~self.solid

    @functools.cached_property
    def roles(self) -> dict[str, torch.Tensor]:
        """``{"u": int8 (H, W), "v": ...}``: each velocity sample's role (FLUID, WALL, GHOST,
        INSIDE)."""
        out = {}
        for comp, axis in (("u", 0), ("v", 1)):
            behind = _shift(self.solid, 1, axis)  # the cell on the low side of the face
            s, b = self.solid, behind
            role = torch.full(s.shape, INSIDE, dtype=torch.int8)
            role[~s & ~b] = FLUID
            role[s ^ b] = WALL
            tangential = 1 - axis
            fluid = role == FLUID
            near = _shift(fluid, 1, tangential) | _shift(fluid, -1, tangential)
            role[(s & b) & near] = GHOST
            out[comp] = role
        return out

    @functools.cached_property
    def targets(self) -> dict[str, torch.Tensor]:
        """``{"u": (H, W), "v": ...}``: the prescribed velocity of every non-fluid sample (the
        normal velocity of the solid cell on wall faces; the wall's tangential velocity for
        ghosts and inside samples; 0 at fluid samples)."""
        out = {}
        for c, (comp, axis) in enumerate((("u", 0), ("v", 1))):
            w = self.wall_velocity[c]
            behind_solid = _shift(self.solid, 1, axis)
            # on a wall face take the solid cell's velocity; inside, the mean of the two cells
            w_behind = _shift(w, 1, axis)
            both = self.solid & behind_solid
            t = torch.where(self.solid & ~behind_solid, w, w_behind)
            t = torch.where(both, 0.5 * (w + w_behind), t)
            out[comp] = torch.where(self.roles[comp] == FLUID, torch.zeros_like(t), t)
        return out

    def conditions(self, u: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """The boundary conditions' residuals at every non-fluid sample of ``u``, ``v``
        (``(*batch, H, W)``), 0 at fluid samples (:func:`boundary_residuals`)."""
        return boundary_residuals(self.roles, self.targets, u, v)

    def impose(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``u``, ``v`` with every non-fluid sample set so that :meth:`conditions` vanish (ghosts
        from their fluid neighbours, so impose after the fluid samples are final)."""
        res = self.conditions(u, v)
        out = []
        for comp, arr in (("u", u), ("v", v)):
            role = self.roles[comp].to(arr.device)
            scale = torch.where(role == GHOST, 0.5, 1.0).to(arr)
            out.append(arr - res[comp] / scale)
        return out[0], out[1]


def boundary_residuals(
    roles: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    u: torch.Tensor,
    v: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Residuals of the boundary conditions of a scene (or a batch of scenes: ``roles`` and
    ``targets`` broadcast against ``u``, ``v`` of shape ``(*batch, H, W)``): value - target on
    wall faces and inside solids; (ghost + mean of its fluid neighbours along the wall) / 2 -
    target at ghosts; 0 at fluid samples."""
    out = {}
    for comp, arr, axis in (("u", u, 0), ("v", v, 1)):
        role = roles[comp].to(arr.device)
        target = targets[comp].to(arr)
        along = arr.ndim - 1 - axis  # the array axis along the wall (u: y, v: x)
        fluid = (role == FLUID).to(arr)
        lo = _shift(fluid, 1, fluid.ndim - 1 - axis)
        hi = _shift(fluid, -1, fluid.ndim - 1 - axis)
        count = (lo + hi).clamp(min=1)
        mean = (_shift(arr, 1, along) * lo + _shift(arr, -1, along) * hi) / count
        value = torch.where(role == GHOST, 0.5 * (arr + mean), arr)
        out[comp] = torch.where(role == FLUID, torch.zeros_like(arr), value - target)
    return out


def velocity_from_potential(a: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) = curl of the node potential ``a`` (``(*batch, H, W)``): u = d_y a, v = -d_x a by
    one-sided differences between neighbouring nodes, which puts u on x-faces and v on y-faces,
    and makes the discrete divergence (:func:`divergence`) vanish to round-off."""
    hx, hy = (float(h) for h in grid.spacing)
    u = (_shift(a, -1, a.ndim - 1) - a) / hy
    v = -(_shift(a, -1, a.ndim - 2) - a) / hx
    return u, v


def divergence(u: torch.Tensor, v: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Discrete divergence at cell centres: (u[i + 1, j] - u[i, j]) / h_x + (v[i, j + 1] -
    v[i, j]) / h_y."""
    hx, hy = (float(h) for h in grid.spacing)
    return (_shift(u, -1, u.ndim - 2) - u) / hx + (_shift(v, -1, v.ndim - 1) - v) / hy


def unshuffle(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Split fine fields ``(B, C, n_1 s_1, ..., n_d s_d)`` into ``(B, P, C, n_1, ..., n_d)`` with
    P = prod(s) interleaved coarse pieces: piece (i_1, ..., i_d) holds the samples
    x[..., i_1 :: s_1, ..., i_d :: s_d] (PyTorch's ``pixel_unshuffle`` in 2D, with the pieces
    on their own axis). Every MAC component splits alike (all share one array shape)."""
    b, c, *n = x.shape
    d = len(factors)
    if len(n) != d or any(m % s for m, s in zip(n, factors)):
        raise ParameterError(
            f"fields of spatial shape {tuple(n)} do not split into pieces {tuple(factors)}"
        )
    shape = [b, c]
    for m, s in zip(n, factors):
        shape += [m // s, s]
    y = x.reshape(shape)
    # (b, c, n1, s1, n2, s2, ...) -> (b, s1, s2, ..., c, n1, n2, ...)
    perm = [0] + [3 + 2 * k for k in range(d)] + [1] + [2 + 2 * k for k in range(d)]
    y = y.permute(perm)
    return y.reshape(b, int(np.prod(factors)), c, *(m // s for m, s in zip(n, factors)))


def shuffle(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """The inverse of :func:`unshuffle`: ``(B, P, C, n_1, ...)`` -> ``(B, C, n_1 s_1, ...)``."""
    b, p, c, *n = x.shape
    d = len(factors)
    if len(n) != d or p != int(np.prod(factors)):
        raise ParameterError(f"{p} pieces of {len(n)}D fields do not match factors {factors}")
    y = x.reshape(b, *factors, c, *n)
    # (b, s1, .., sd, c, n1, .., nd) -> (b, c, n1, s1, n2, s2, ...)
    perm = [0, d + 1]
    for k in range(d):
        perm += [d + 2 + k, 1 + k]
    y = y.permute(perm)
    return y.reshape(b, c, *(m * s for m, s in zip(n, factors)))


def to_nodes(scene: MacScene, u, v, p) -> dict[str, np.ndarray]:
    """MAC values ``(*batch, H, W)`` as values at the layout's nodes (x0 + i h_x, y0 + j h_y):
    u and v averaged from their two faces beside the node (the wall velocity on a wall, where
    the boundary conditions hold), p the mean over the fluid cells around the node (0 where
    there is none)."""
    u, v, p = (torch.as_tensor(np.asarray(x), dtype=torch.float64) for x in (u, v, p))
    lx, ly = u.ndim - 2, u.ndim - 1
    fluid = scene.fluid.to(torch.float64)
    wsum = fluid + _shift(fluid, 1, 0) + _shift(fluid, 1, 1) + _shift(_shift(fluid, 1, 0), 1, 1)
    fp = p * fluid
    psum = fp + _shift(fp, 1, lx) + _shift(fp, 1, ly) + _shift(_shift(fp, 1, lx), 1, ly)
    return {
        "u": (0.5 * (u + _shift(u, 1, ly))).numpy(),
        "v": (0.5 * (v + _shift(v, 1, lx))).numpy(),
        "p": (psum / wsum.clamp(min=1)).numpy(),
    }


def box_nodes(grid: Grid, lo, hi) -> tuple[slice, slice]:
    """Index ranges of the layout nodes that lie in the box [lo, hi] (to round-off)."""
    out = []
    for k in range(2):
        x = grid.axis(k, "node")
        tol = 1e-9 * float(grid.spacing[k])
        idx = np.nonzero((x >= lo[k] - tol) & (x <= hi[k] + tol))[0]
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return out[0], out[1]


def enclosed_grid(lo, hi, cells, ring: int = 1) -> Grid:
    """The layout grid of a box [lo, hi] split into ``cells`` fluid cells per axis, with
    ``ring`` solid cells added on every side (lo - ring h .. hi + ring h)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    cells = np.broadcast_to(np.asarray(cells), lo.shape)
    h = (hi - lo) / cells
    return Grid(lo - ring * h, hi + ring * h, cells + 2 * ring, periodic=True)


def cavity_scene(cells: int, lid: float = 1.0, ring: int = 1) -> MacScene:
    """The lid-driven cavity [0, 1]^2 on ``cells`` x ``cells`` fluid cells: walls at rest, the
    lid y = 1 moving at u = ``lid`` (its corner cells included)."""
    grid = enclosed_grid((0.0, 0.0), (1.0, 1.0), cells, ring)
    n = grid.n
    solid = torch.ones(n, dtype=torch.bool)
    solid[ring:-ring, ring:-ring] = False
    wall = torch.zeros(2, *n, dtype=torch.float64)
    wall[0, :, -ring:] = lid
    return MacScene(grid, solid, wall, name=f"cavity {cells}x{cells}")
