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

Two wall treatments. The mirrored ghosts above (``mirror=True``) are second order on
grid-aligned walls and what the projection solver imposes. A velocity that is the curl of a
potential cannot meet them together with the conditions inside solids: below a floor, the
conditions v = 0 inside the solid make the potential constant along the solid's first node row,
so every ghost has the same value and the mirror would force the fluid's first row to one
value. With ``mirror=False`` a ghost takes the wall velocity itself (the first-order wall of
Wandel et al.: every solid sample moves with its solid), which a curl meets exactly; curl-based
learners use it (``neural_stagger``: ``loss.mirror_walls``).

The wrap. A velocity that is the curl of a potential on this periodic layout has zero net flux
through every full row and column of the layout, ring samples included. A lid or an inflow
gives the prescribed samples of a column a net flux, which must be carried back somewhere: the
samples where the curl wraps (u in the last row along y, v in the last column along x) get the
role FREE (no condition), and must lie inside solids (no fluid stencil reads them), so
:func:`enclosed_grid`
puts two solid cells above the box on each axis (one below), and a curl-based solver refuses a
scene whose wrapped samples are not inside solids (:meth:`MacScene.check_curl_layout`). With a
single ring cell there the lid's ghosts and the floor's would share a wrapped potential node,
and no potential could satisfy both; freeing every sample inside solids instead (measured) lets
a trained stepper leak flow through the walls and back through the solid ring. An outlet's
flux must leave the outflow cells too: the u faces from an outflow cell into the plain solid
cell after it are FREE as well, and :func:`channel_scene` gives the solid column after the
outlet the inflow's velocity, so that the flux passing the layout's end and re-entering through
the inlet column meets conditions it can satisfy (a developed channel flow is then exactly a
curl, tested).

Outflow (an open end of a channel): solid cells may be marked as **outflow cells**
(:attr:`MacScene.outflow`). Only outlets at the high-x end are supported: every outflow cell's
low-x neighbour is a fluid or an outflow cell. The u samples between a fluid (or outflow) cell
and an outflow cell, and the v samples between two outflow cells, get the role OUTFLOW, whose
condition is zero gradient along +x: the sample equals its upstream (low-x) neighbour,
u[i, j] = u[i - 1, j], v[i, j] = v[i - 1, j] (the classical MAC outflow condition, e.g. Griebel,
Dornseifer & Neunhoeffer 1998, "Numerical Simulation in Fluid Dynamics"; the "do-nothing"
condition nu du/dn - p n = 0 of finite-element benchmarks prescribes the traction instead and
fixes the pressure level; both let a flow that leaves nearly parallel pass with little
reflection). u ghosts next to outflow samples (the
corners where a channel wall meets the outlet) mirror them like fluid samples. Channel scenes:
:func:`channel_scene`; forces on obstacles: :mod:`pdekit.problems.mac_forces`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.geometries.grid import Grid

#: roles of a velocity sample (:attr:`MacScene.roles`)
FLUID, WALL, GHOST, INSIDE, OUTFLOW, FREE = 0, 1, 2, 3, 4, 5


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
    outflow:
        Optional bool array (H, W): solid cells that are an outlet at the high-x end (module
        docstring), a subset of ``solid`` whose low-x neighbours are fluid or outflow cells.
        Stored as a bool tensor (all False when None).
    """

    grid: Grid
    solid: torch.Tensor
    wall_velocity: torch.Tensor
    name: str = "scene"
    outflow: torch.Tensor | None = None

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
        object.__setattr__(self, "outflow", self._check_outflow())

    def check_curl_layout(self) -> None:
        """ParameterError unless the samples where the curl of a potential wraps around the
        layout lie inside solids (module docstring: needed by solvers whose velocity is a curl;
        the projection solver is not one)."""
        for comp, axis in (("u", 0), ("v", 1)):
            if bool((self.roles[comp][_wrapped(self.roles[comp], axis)] != FREE).any()):
                raise ParameterError(
                    f"scene {self.name!r}: the {comp} samples where a curl wraps around the "
                    "layout (the last row or column) must lie inside solids: add a second "
                    "solid cell on the high side of each axis (enclosed_grid does)"
                )

    def _check_outflow(self) -> torch.Tensor:
        """The outflow mask as a bool tensor, checked: solid cells reached from a fluid cell
        through outflow cells along +x without wrapping around the layout."""
        if self.outflow is None:
            return torch.zeros(self.grid.n, dtype=torch.bool)
        out = torch.as_tensor(np.asarray(self.outflow), dtype=torch.bool)
        if tuple(out.shape) != self.grid.n:
            raise ParameterError(f"outflow needs shape {self.grid.n}; got {tuple(out.shape)}")
        if bool((out & ~self.solid).any()):
            raise ParameterError(f"scene {self.name!r}: outflow cells must be solid cells")
        reached = ~self.solid
        inner = torch.ones_like(out)
        inner[0] = False  # the chain may not wrap around the layout (from row i = H - 1)
        for _ in range(out.shape[0]):
            grown = reached | (out & inner & _shift(reached, 1, 0))
            if torch.equal(grown, reached):
                break
            reached = grown
        if bool((out & ~reached).any()):
            raise ParameterError(
                f"scene {self.name!r}: every outflow cell must continue a fluid cell along +x "
                "(outlets at the high-x end only; the cells from the fluid to it all outflow)"
            )
        return out

    def inflow_potential(self) -> torch.Tensor:
        """Float64 (H, W): :func:`inflow_potential` of this scene."""
        return inflow_potential(self.targets["u"].to(torch.float64), self.roles["u"], self.grid)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.n

    @property
    def fluid(self) -> torch.Tensor:
        """Bool (H, W): fluid cells (where the pressure and the divergence live)."""
        return ~self.solid

    @property
    def has_outflow(self) -> bool:
        return bool(self.outflow.any())

    @functools.cached_property
    def roles(self) -> dict[str, torch.Tensor]:
        """``{"u": int8 (H, W), "v": ...}``: each velocity sample's role (FLUID, WALL, GHOST,
        INSIDE, OUTFLOW, FREE)."""
        out = {}
        of = self.outflow
        first = torch.zeros(of.shape, dtype=torch.bool)
        first[0] = True  # u[0, j] lies between the last and the first row of cells (a wrap)
        for comp, axis in (("u", 0), ("v", 1)):
            behind = _shift(self.solid, 1, axis)  # the cell on the low side of the face
            s, b = self.solid, behind
            role = torch.full(s.shape, INSIDE, dtype=torch.int8)
            role[~s & ~b] = FLUID
            role[s ^ b] = WALL
            if comp == "u":  # faces from a fluid or outflow cell into an outflow cell
                outflow = of & (_shift(of, 1, 0) | ~_shift(self.solid, 1, 0)) & ~first
            else:  # faces between two outflow cells
                outflow = of & _shift(of, 1, 1)
            role[outflow] = OUTFLOW
            tangential = 1 - axis
            near = _mirrored(role, axis)
            near = _shift(near, 1, tangential) | _shift(near, -1, tangential)
            role[(s & b) & near & ~outflow] = GHOST
            # no condition (FREE): where the curl of a potential wraps around the layout, and
            # on the faces from an outflow cell into a plain solid one (the outlet's flux passes
            # them: module docstring)
            inside = role == INSIDE
            role[inside & _wrapped(role, axis)] = FREE
            if comp == "u":
                role[inside & _shift(of, 1, 0) & ~of] = FREE
            out[comp] = role
        return out

    @functools.cached_property
    def outlet(self) -> dict[str, torch.Tensor]:
        """``{"u": bool (H, W), "v": ...}``: the normal velocities through the outlet plane (u
        OUTFLOW samples whose low-x cell is fluid; no v sample), the samples a projection
        solver shifts so that a region's net flux vanishes."""
        u = (self.roles["u"] == OUTFLOW) & ~_shift(self.solid, 1, 0)
        return {"u": u, "v": torch.zeros_like(u)}

    @functools.cached_property
    def _outflow_depth(self) -> int:
        """Passes of upstream copies that reach every OUTFLOW sample (the longest chain)."""
        depth = 0
        for comp in ("u", "v"):
            outflow = self.roles[comp] == OUTFLOW
            reached = ~outflow
            k = 0
            while not bool(reached.all()) and k < outflow.shape[0]:
                reached = reached | (outflow & _shift(reached, 1, 0))
                k += 1
            depth = max(depth, k)
        return depth

    @functools.cached_property
    def targets(self) -> dict[str, torch.Tensor]:
        """``{"u": (H, W), "v": ...}``: the prescribed velocity of every non-fluid sample (the
        normal velocity of the solid cell on wall faces; the wall's tangential velocity for
        ghosts and inside samples; 0 at fluid and outflow samples)."""
        out = {}
        for c, (comp, axis) in enumerate((("u", 0), ("v", 1))):
            w = self.wall_velocity[c]
            behind_solid = _shift(self.solid, 1, axis)
            # on a wall face take the solid cell's velocity; inside, the mean of the two cells
            w_behind = _shift(w, 1, axis)
            both = self.solid & behind_solid
            t = torch.where(self.solid & ~behind_solid, w, w_behind)
            t = torch.where(both, 0.5 * (w + w_behind), t)
            free = (self.roles[comp] == FLUID) | (self.roles[comp] == OUTFLOW)
            out[comp] = torch.where(free, torch.zeros_like(t), t)
        return out

    def conditions(
        self, u: torch.Tensor, v: torch.Tensor, mirror: bool = True
    ) -> dict[str, torch.Tensor]:
        """The boundary conditions' residuals at every non-fluid sample of ``u``, ``v``
        (``(*batch, H, W)``), 0 at fluid samples (:func:`boundary_residuals`)."""
        return boundary_residuals(self.roles, self.targets, u, v, mirror)

    def impose(
        self, u: torch.Tensor, v: torch.Tensor, outlet: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``u``, ``v`` with every non-fluid sample set so that :meth:`conditions` vanish: outflow
        samples copied from upstream first (repeatedly along chains), then the others (ghosts
        from their fluid or outflow neighbours, so impose after the fluid samples are final).
        ``outlet=False`` keeps the values of the :attr:`outlet` samples (a projection solver's
        flux-corrected normal velocities) and imposes the rest relative to them."""
        fields = {"u": u, "v": v}
        for _ in range(self._outflow_depth):
            for comp, arr in fields.items():
                move = self.roles[comp] == OUTFLOW
                if not outlet:
                    move = move & ~self.outlet[comp]
                upstream = _shift(arr, 1, arr.ndim - 2)
                fields[comp] = torch.where(move.to(arr.device), upstream, arr)
        res = self.conditions(fields["u"], fields["v"])
        out = []
        for comp, arr in fields.items():
            role = self.roles[comp].to(arr.device)
            scale = torch.where(role == GHOST, 0.5, 1.0).to(arr)
            out.append(torch.where(role == OUTFLOW, arr, arr - res[comp] / scale))
        return out[0], out[1]


def boundary_residuals(
    roles: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    u: torch.Tensor,
    v: torch.Tensor,
    mirror: bool = True,
) -> dict[str, torch.Tensor]:
    """Residuals of the boundary conditions of a scene (or a batch of scenes: ``roles`` and
    ``targets`` broadcast against ``u``, ``v`` of shape ``(*batch, H, W)``): value - target on
    wall faces and inside solids; (ghost + mean of its fluid neighbours along the wall) / 2 -
    target at ghosts (u ghosts also count OUTFLOW neighbours), or with ``mirror=False`` ghost -
    target (the first-order wall of Wandel et al., where every solid sample takes the solid's
    velocity: the conditions a curl can meet, see the module docstring); value - upstream
    neighbour (x - h_x) - target at outflow samples (targets 0 there: outlets at the high-x end
    only); 0 at fluid samples and FREE ones (module docstring on the wrap). Differentiable torch
    code throughout."""
    out = {}
    for comp, arr, axis in (("u", u, 0), ("v", v, 1)):
        role = roles[comp].to(arr.device)
        target = targets[comp].to(arr)
        along = arr.ndim - 1 - axis  # the array axis along the wall (u: y, v: x)
        near = _mirrored(role, axis).to(arr)
        lo = _shift(near, 1, near.ndim - 1 - axis)
        hi = _shift(near, -1, near.ndim - 1 - axis)
        count = (lo + hi).clamp(min=1)
        mean = (_shift(arr, 1, along) * lo + _shift(arr, -1, along) * hi) / count
        value = torch.where(role == GHOST, 0.5 * (arr + mean), arr) if mirror else arr
        value = torch.where(role == OUTFLOW, arr - _shift(arr, 1, arr.ndim - 2), value)
        free = (role == FLUID) | (role == FREE)
        out[comp] = torch.where(free, torch.zeros_like(arr), value - target)
    return out


def _wrapped(role: torch.Tensor, axis: int) -> torch.Tensor:
    """Bool like ``role``: the samples of component ``axis`` whose curl wraps around the
    layout (u: the last index along y; v: the last index along x)."""
    out = torch.zeros(role.shape, dtype=torch.bool, device=role.device)
    if axis == 0:
        out[..., -1] = True
    else:
        out[..., -1, :] = True
    return out


def _mirrored(role: torch.Tensor, axis: int) -> torch.Tensor:
    """The samples a ghost of component ``axis`` mirrors: FLUID, and for u (ghosts along y)
    also OUTFLOW (the walls' corners at an outlet). v ghosts lie along x, where an OUTFLOW
    neighbour is either upstream of the outlet or wrapped around the layout: never mirrored."""
    near = role == FLUID
    return near | (role == OUTFLOW) if axis == 0 else near


def inflow_potential(u_targets: torch.Tensor, u_roles: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The node potential ``(*batch, H, W)`` whose curl carries the normal velocity prescribed
    on the wall faces in front of the low-x solid column (u samples of layout column 1 with
    role WALL in ``u_roles``; ``u_targets``, ``u_roles`` a :attr:`MacScene.targets` and
    :attr:`MacScene.roles` ``"u"``, or batches of them) unchanged along x through the whole
    layout, with v = 0: a channel's inflow switched on and the fluid moving with it
    everywhere, obstacles included (their no-slip is left for the solver to impose); zero
    where those faces prescribe nothing (a closed box: the state at rest).
    ``a[i, j] = h_y sum_{j' < j} u_in[j']``, so the flux between the floor and any node is the
    inflow's up to that node's height. Differentiable in ``u_targets``."""
    hy = float(grid.spacing[1])
    face = (u_roles[..., 1:2, :-1] == WALL).to(u_targets.device, u_targets.dtype)
    flux = hy * torch.cumsum(face * u_targets[..., 1:2, :-1], dim=-1)  # (*batch, 1, W - 1)
    a = torch.cat([torch.zeros_like(flux[..., :1]), flux], dim=-1)
    return a.expand(u_targets.shape)


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


#: solid cells added below / above the fluid box on each axis by :func:`enclosed_grid`: two on
#: the high side, so that the samples a curl wraps around are inside solids (module docstring)
RING = (1, 2)


def enclosed_grid(lo, hi, cells, ring: tuple[int, int] = RING) -> Grid:
    """The layout grid of a box [lo, hi] split into ``cells`` fluid cells per axis, with
    ``ring[0]`` solid cells added below and ``ring[1]`` above it on every axis."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    cells = np.broadcast_to(np.asarray(cells), lo.shape)
    h = (hi - lo) / cells
    low, high = ring
    return Grid(lo - low * h, hi + high * h, cells + low + high, periodic=True)


def cavity_scene(cells: int, lid: float = 1.0, ring: tuple[int, int] = RING) -> MacScene:
    """The lid-driven cavity [0, 1]^2 on ``cells`` x ``cells`` fluid cells: walls at rest, the
    lid y = 1 moving at u = ``lid`` (its corner cells included); the layout has
    ``cells + ring[0] + ring[1]`` cells per axis."""
    grid = enclosed_grid((0.0, 0.0), (1.0, 1.0), cells, ring)
    n = grid.n
    low, high = ring
    solid = torch.ones(n, dtype=torch.bool)
    solid[low:-high, low:-high] = False
    wall = torch.zeros(2, *n, dtype=torch.float64)
    wall[0, :, -high:] = lid
    return MacScene(grid, solid, wall, name=f"cavity {cells}x{cells}")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def channel_scene(
    length: float,
    height: float,
    cells_across: int,
    inflow_profile,
    obstacles=(),
    pad_to: int = 16,
    *,
    name: str | None = None,
) -> MacScene:
    """A channel [0, length] x [0, height] with an inflow at x = 0 and an outlet at the far end,
    on square cells h = height / ``cells_across``.

    Layout (axis 0 along x): solid cells around the fluid box. The row below it and the row
    above it are walls at rest (no-slip); the column before it carries the inflow, u =
    ``inflow_profile(y)`` (a function of the cell centres' y, numpy in, numpy out) on its
    faces at x = 0; the column after it is outflow cells (:attr:`MacScene.outflow`, zero
    gradient along +x). ``obstacles`` (anything with ``contains``:
    :class:`~pdekit.geometries.csg.Disk`, CSG shapes, boxes) are rasterised (:func:`rasterise`,
    cell centres inside) into solid cells at rest. The fluid spans ceil(length / h) columns
    (the length is rounded up to whole cells).

    Where a curl wraps (module docstring): one more solid column after the outflow column and
    at least one more solid row above the top wall, whose samples inside solids are free, so
    that the scene values of a developed channel flow are the curl of a periodic potential
    (tested for the discrete Poiseuille flow; without the column the flux through the outlet
    and the inlet would both have to pass the single wrapped face between them).

    Padding: the neural stepper splits the layout into pieces and down-samples by 2**depth, so
    both layout dimensions are made multiples of ``pad_to``: extra **fluid columns at the outlet
    end** (the channel becomes up to ``pad_to - 1`` cells longer; the outlet moves with it) and
    extra **solid rows on top**.
    """
    cells_across = int(cells_across)
    if cells_across < 2 or not (length > 0 and height > 0):
        raise ParameterError("a channel needs length, height > 0 and at least 2 cells across")
    if int(pad_to) < 1:
        raise ParameterError(f"pad_to must be >= 1; got {pad_to}")
    h = height / cells_across
    nx = max(2, math.ceil(length / h - 1e-9))
    ny = cells_across
    width = _round_up(nx + 3, int(pad_to))  # inlet, fluid (padded), outflow, wrap column
    rows = _round_up(ny + 3, int(pad_to))  # floor, fluid, top wall, wrap row(s)
    grid = Grid((-h, -h), (-h + width * h, -h + rows * h), (width, rows), periodic=True)
    solid = torch.ones(width, rows, dtype=torch.bool)
    solid[1 : width - 2, 1 : ny + 1] = False
    box = ~solid.clone()
    for geometry in obstacles:
        solid |= torch.as_tensor(rasterise(geometry, grid)) & box
    y = grid.axis(1, "center")[1 : ny + 1]
    inflow = np.array(np.broadcast_to(np.asarray(inflow_profile(y), dtype=np.float64), y.shape))
    if not np.isfinite(inflow).all():
        raise ParameterError("the inflow profile has non-finite values")
    wall = torch.zeros(2, width, rows, dtype=torch.float64)
    wall[0, 0, 1 : ny + 1] = torch.as_tensor(inflow)
    # the column after the outlet moves like the inflow: the flux leaving the outlet re-enters
    # through the inlet column where a curl wraps (module docstring); no fluid stencil reads it
    wall[0, width - 1, 1 : ny + 1] = torch.as_tensor(inflow)
    outflow = torch.zeros(width, rows, dtype=torch.bool)
    outflow[width - 2, 1 : ny + 1] = True
    label = name or f"channel {length:g} x {height:g}, {width - 3} x {ny} cells"
    return MacScene(grid, solid, wall, name=label, outflow=outflow)
