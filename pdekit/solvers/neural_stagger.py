"""NeuralStagger: a physics-constrained neural time stepper split into coarse parallel pieces.

Paper: Huang, Shi, Meng, Wang, Gao, Zhang & Liu, "NeuralStagger: Accelerating
Physics-constrained Neural PDE Solver with Spatial-temporal Decomposition", ICML 2023
(arXiv 2302.10255). **The paper has no public code**; this is a reimplementation from its
abstract and Fig. 1 and from its base method, whose code is public: Wandel, Weinmann & Klein,
"Learning Incompressible Fluid Dynamics from Scratch", ICLR 2021. What comes from where:

From Wandel et al. (the base solver, trained without solution data):

* the state on a staggered MAC grid is a vector potential ``a`` (at the nodes) and a pressure
  ``p`` (at the centres); the velocity is ``v = curl a``
  (:func:`~pdekit.problems.mac.velocity_from_potential`), discretely divergence-free by
  construction, so no continuity loss and no pressure solve;
* a U-Net maps the state at t, the obstacle/fluid masks and the boundary velocities to
  increments, ``a+ = A tanh((a + da) / A)``, ``p+ = P tanh((p + dp) / P)``, both re-centred to
  zero mean after each step;
* the loss is the implicit-explicit momentum residual
  ``(v^{t+1} - v^t)/dt + (v'.grad) v' + grad p^{t+1} - nu lap v'`` with ``v' = (v^t +
  v^{t+1}) / 2`` on fluid samples plus a boundary term, combined as
  ``mean_batch log(w_b L_bound + L_nav)`` with ``w_b = 20``;
* training: a pool of scenes whose states the network advances itself and writes back
  (replay), each scene replaced by a fresh one now and then.

From NeuralStagger (the abstract; Fig. 1):

* **spatial decomposition**: the fine fields split into ``s_x s_y`` interleaved coarse pieces
  (:func:`~pdekit.problems.mac.unshuffle`, every MAC component alike); a coarse network
  sees only its own piece (state, masks and boundary data subsampled the same way) and
  predicts its piece; the pieces are reassembled (:func:`~pdekit.problems.mac.shuffle`) and
  the loss is the fine-grid physics loss, so the pieces couple only through training;
* **temporal decomposition**: ``s_t`` future states predicted at once from the last ``s_t``,
  with the physics loss on every consecutive pair.

Our choices where both are silent (each is a config key):

* the momentum residual is the problem's own ``residual(f)`` evaluated by the grid path
  (:func:`~pdekit.problems.grid.grid_residual`, second-order MAC stencils, time scheme
  ``"cn"``, the pressure of the new level); Wandel's code uses the isotropic 9-point Laplacian
  and one-sided products, we use the project's 5-point Laplacian and compact interpolation
  (**deviation**: one discretisation of the equations for every grid solver);
* walls follow Wandel et al. by default (every solid velocity sample takes its solid's
  velocity, first order; ``loss.mirror_walls=True`` uses the second-order mirrored ghosts of
  :class:`~pdekit.problems.mac.MacScene`, which a curl cannot meet together with the conditions
  inside solids); the samples where the curl wraps around the layout carry no condition (FREE:
  see :mod:`pdekit.problems.mac`, without them a lid's or an inflow's flux makes the conditions
  contradictory; measured: freeing every sample inside solids instead let the trained stepper
  leak flow through the walls);
* ``L_nav`` and ``L_bound`` are means over the fluid and over the boundary samples (Wandel:
  means over all cells of masked squares; a constant factor in each);
* two knobs for channels, off by default (measured in ``docs/guide/operators.md``):
  ``loss.moving_weight`` weights the boundary samples with a non-zero prescribed velocity (an
  inflow, a lid) against the resting ones in ``L_bound`` (Wandel: a plain mean, where a
  channel's inflow is ~1% of the samples); ``scenes.start = "inflow"`` starts fresh training
  scenes and rollouts with the inflow carried through the channel
  (:func:`~pdekit.problems.mac.inflow_potential`) instead of at rest (Wandel): the flux
  through every column is the jump of ``a`` between the walls, which a U-Net with a receptive
  field of a few dozen cells cannot set along a 224-cell channel in one step;
* the replay life with temporal blocks: a pooled scene is replaced after 400 **time steps** on
  average (``scenes.mean_life`` 0, i.e. 400 / s_t advances of s_t steps each; Wandel's 400
  advances at s_t = 1). Counted in advances, long blocks fill the pool with late states and
  few start-ups (measured, ``docs/guide/operators.md``: s_t = 8 at 2.2x the base's error on
  the 2D cavity and 4.9x in 3D, against 1.8x and 1.3x with 400 / s_t);
* with shared weights each piece also gets its offset (i / s_x, j / s_y) as two constant input
  channels, so one network can tell the interleaved pieces apart;
* the U-Net is pdekit's :class:`~pdekit.solvers.operators.UNet2d` without normalisation (a
  normalised network cannot scale its increments with the flow's amplitude); Wandel's has
  hidden size 20 and 4 levels, our default is width 20, depth 3.

3D (the paper shows 2D and 3D flows; neither paper's 3D details are public, so all of this is
ours): the same stepper on a 3D MAC layout (:mod:`pdekit.problems.mac3d`). The potential has
three components on the cell edges, v = curl a (divergence-free to round-off); the frames carry
(a_x, a_y, a_z, p, u, v, w), the scene channels the fluid cells and each component's
non-fluid samples and targets; the pieces split three axes (``stagger.spatial`` with two
entries splits z like y); the coarse networks are :class:`~pdekit.solvers.operators.UNet3d`
with circular padding (a 3D layout may be periodic for the flow itself); the loss is the 3D
problem's own residual on the MAC grid, as in 2D. The 3D scenes have no inlet: the duct of
``navier_stokes/duct_sphere`` is periodic along its axis and driven by a body force, which
acts everywhere, so the flux needs no long-range transport (the 2D channel's difficulty) and
``scenes.start`` is rest.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from pdekit import store
from pdekit.errors import CheckpointError, ParameterError
from pdekit.problems import mac, mac3d
from pdekit.problems.base import Problem
from pdekit.problems.grid import grid_residual
from pdekit.problems.references.grid import GridReference
from pdekit.solution import Solution
from pdekit.solvers import distributed
from pdekit.solvers.base import NetworkSolver, _load_model
from pdekit.solvers.config import check, from_dict, to_dict
from pdekit.solvers.fno import _note
from pdekit.solvers.operators import UNet2d, UNet2dConfig, UNet3d
from pdekit.solvers.registry import register_solver
from pdekit.solvers.training import TrainConfig

#: per grid dimension: the velocity components; the potential's components (2D: one, at the
#: nodes; 3D: three, on the edges: :mod:`pdekit.problems.mac3d`)
VELOCITY = {2: ("u", "v"), 3: ("u", "v", "w")}
POTENTIAL_COMPONENTS = {2: 1, 3: 3}
#: per grid dimension: where each field sits on the MAC layout, and the residuals the loss reads
LOCATIONS = {
    d: {**{c: f"face_{'xyz'[k]}" for k, c in enumerate(VELOCITY[d])}, "p": "center"} for d in (2, 3)
}
OUTPUTS = {
    d: {**{f"momentum_{'xyz'[k]}": f"face_{'xyz'[k]}" for k in range(d)}, "continuity": "face_x"}
    for d in (2, 3)
}


def frame_channels(dim: int) -> int:
    """Input channels per state frame: the potential, p and the velocity."""
    return POTENTIAL_COMPONENTS[dim] + 1 + dim


def scene_channels(dim: int) -> int:
    """Scene channels: fluid cells, each component's non-fluid samples and their targets."""
    return 1 + 2 * dim


def velocity_of(a: torch.Tensor, grid) -> tuple[torch.Tensor, ...]:
    """The velocity components of the potential ``a`` on ``grid`` (2D: ``(*batch, H, W)``; 3D:
    ``(*batch, 3, X, Y, Z)``): :func:`pdekit.problems.mac.velocity_from_potential` or its 3D
    twin."""
    if grid.dim == 3:
        return mac3d.velocity_from_potential(a, grid)
    return mac.velocity_from_potential(a, grid)


def potential_shape(grid) -> tuple[int, ...]:
    """The shape of one potential frame on ``grid``."""
    return tuple(grid.n) if grid.dim == 2 else (3, *grid.n)


# -- configuration -----------------------------------------------------------------------------
@dataclass
class StaggerConfig:
    """The decomposition (NeuralStagger); spatial (1, 1) and temporal 1 is the base solver."""

    #: coarse pieces per axis (s_x, s_y), or (s_x, s_y, s_z) in 3D; two entries on a 3D
    #: problem split z like y
    spatial: tuple[int, ...] = (2, 2)
    #: states predicted at once (s_t)
    temporal: int = 1
    #: one network for every piece (True) or one per piece (False)
    shared_weights: bool = True

    def __post_init__(self):
        self.spatial = tuple(int(s) for s in self.spatial)
        if len(self.spatial) not in (2, 3) or any(s < 1 or s > 16 for s in self.spatial):
            raise ParameterError(
                "StaggerConfig.spatial must be two or three pieces per axis (s_x, s_y[, s_z]), "
                f"each in [1, 16]; got {self.spatial}"
            )
        check(self, "temporal", self.temporal, low=1, high=16, kind=int)
        check(self, "shared_weights", self.shared_weights, choices=(True, False))

    def factors(self, dim: int) -> tuple[int, ...]:
        """The pieces per axis on a ``dim``-dimensional layout (z split like y when only
        (s_x, s_y) are given)."""
        if len(self.spatial) == dim:
            return self.spatial
        if dim == 3 and len(self.spatial) == 2:
            return (*self.spatial, self.spatial[1])
        raise ParameterError(
            f"StaggerConfig.spatial {self.spatial} does not fit a {dim}D problem (give "
            f"{dim} pieces per axis{'; two split z like y' if dim == 3 else ''})"
        )


@dataclass
class StepperNetworkConfig:
    """The coarse U-Net of each piece and the saturation of its outputs (Wandel et al.)."""

    #: channels at the finest level of the U-Net (Wandel: hidden size 20)
    width: int = 20
    #: 2x down-samplings; the coarse grid must be divisible by 2**depth
    depth: int = 3
    #: saturation A of the potential, a+ = A tanh((a + da) / A) (Wandel: 400 in grid units)
    a_bound: float = 10.0
    #: saturation P of the pressure (Wandel: 10)
    p_bound: float = 10.0

    def __post_init__(self):
        check(self, "width", self.width, low=1, high=512, kind=int)
        check(self, "depth", self.depth, low=0, high=6, kind=int)
        check(self, "a_bound", self.a_bound, low=1e-6, high=1e6)
        check(self, "p_bound", self.p_bound, low=1e-6, high=1e6)


@dataclass
class SceneConfig:
    """The grid, the time step and the pool of training scenes."""

    #: fluid cells across the problem's box per axis (0: the problem's ``stepper_cells``)
    cells: int = 0
    #: time step (0: the problem's ``stepper_dt``)
    dt: float = 0.0
    #: scenes in the replay pool (Wandel: 1000)
    pool: int = 64
    #: scenes advanced per training step (Wandel: 100)
    batch: int = 8
    #: mean number of times a scene is advanced before it is replaced by a fresh one; 0 (the
    #: default): 400 time steps, i.e. 400 / s_t advances (an advance covers s_t steps). For
    #: s_t = 1 that is Wandel et al.'s 400; for temporal blocks (NeuralStagger is silent) our
    #: choice, measured in docs/guide/operators.md: a life of 400 advances at s_t = 8 fills the
    #: pool with late states (velocity error 2.2x the base's on the 2D cavity, 4.9x in 3D;
    #: 1.8x and 1.3x with 400 / s_t)
    mean_life: float = 0.0
    #: the state a fresh scene (and a rollout) starts from: "rest" (Wandel et al.) or "inflow",
    #: the inflow carried unchanged through the channel, obstacles included
    #: (:meth:`~pdekit.problems.mac.MacScene.inflow_potential`; rest for scenes without an
    #: inflow). Our knob: a U-Net's receptive field spans a few dozen cells, so from rest the
    #: flux of the inlet must travel the channel step by step before the outlet sees it
    start: str = "rest"

    def __post_init__(self):
        check(self, "cells", self.cells, low=0, high=4096, kind=int)
        check(self, "dt", self.dt, low=0.0, high=1e6)
        check(self, "pool", self.pool, low=1, high=100000, kind=int)
        check(self, "batch", self.batch, low=1, high=self.pool, kind=int)
        check(self, "mean_life", self.mean_life, low=0.0, high=1e9)
        if 0.0 < self.mean_life < 1.0:
            raise ParameterError(
                f"SceneConfig.mean_life must be 0 (400 time steps) or in [1, 1e9] advances; got "
                f"{self.mean_life}"
            )
        check(self, "start", self.start, choices=START_STATES)

    #: the default life in time steps (Wandel et al.'s 400 advances of one step)
    DEFAULT_LIFE_STEPS = 400.0

    def life(self, temporal: int) -> float:
        """The mean number of advances of a pooled scene, for blocks of ``temporal`` steps."""
        if self.mean_life:
            return float(self.mean_life)
        return max(1.0, self.DEFAULT_LIFE_STEPS / temporal)


@dataclass
class StaggerLossConfig:
    """The physics loss log(w_b L_bound + L_nav) (Wandel et al.)."""

    #: weight w_b of the boundary term (Wandel: 20)
    boundary_weight: float = 20.0
    #: walls by mirrored ghosts (second order; a curl cannot meet them together with the
    #: conditions inside solids: pdekit.problems.mac) instead of Wandel's first-order walls
    #: (every solid sample moves with its solid)
    mirror_walls: bool = False
    #: weight of the boundary samples whose prescribed velocity is not zero (an inflow, a lid)
    #: against the resting ones (walls, obstacles) inside L_bound, a weighted mean; 1 is
    #: Wandel et al.'s plain mean (our knob: in a channel the inflow is ~1% of the samples)
    moving_weight: float = 1.0

    def __post_init__(self):
        check(self, "boundary_weight", self.boundary_weight, low=0.0, high=1e9)
        check(self, "moving_weight", self.moving_weight, low=1e-6, high=1e6)
        check(self, "mirror_walls", self.mirror_walls, choices=(True, False))


@dataclass
class StaggerTrainConfig(TrainConfig):
    """Adam at 1e-3 (Wandel), halved every 1000 steps, gradient norm clipped to 1."""

    steps: int = 3000
    lr: float = 1e-3
    lr_decay: float = 0.5
    decay_every: int = 1000
    grad_clip: float = 1.0
    log_every: int = 25
    #: the loss is a log, negative once it is small: no stall or explosion test on its value
    stall_steps: int = 0
    explode_factor: float = 0.0


@dataclass
class NeuralStaggerConfig:
    """Configuration of ``neural_stagger``."""

    stagger: StaggerConfig = field(default_factory=StaggerConfig)
    network: StepperNetworkConfig = field(default_factory=StepperNetworkConfig)
    scenes: SceneConfig = field(default_factory=SceneConfig)
    loss: StaggerLossConfig = field(default_factory=StaggerLossConfig)
    train: StaggerTrainConfig = field(default_factory=StaggerTrainConfig)
    #: train anew even when the model store holds a model for this problem and layout
    retrain: bool = False
    #: a model file to use ("": look in the model store)
    pretrained: str = ""

    def __post_init__(self):
        check(self, "retrain", self.retrain, choices=(True, False))
        if not isinstance(self.pretrained, str):
            raise ParameterError(
                f"NeuralStaggerConfig.pretrained must be a path; got {self.pretrained!r}"
            )


#: the states a scene can start from (SceneConfig.start)
START_STATES = ("rest", "inflow")


def start_potential(
    u_targets: torch.Tensor, u_roles: torch.Tensor, grid, start: str
) -> torch.Tensor:
    """The potential ``(*batch, H, W)`` scenes with prescribed u ``u_targets`` (roles
    ``u_roles``) start from
    (:attr:`SceneConfig.start`: zero at rest, :func:`~pdekit.problems.mac.inflow_potential`
    for "inflow"); the pressure starts at 0. Differentiable in ``u_targets``."""
    if start not in START_STATES:
        raise ParameterError(f"start must be one of {START_STATES}; got {start!r}")
    if grid.dim == 3:  # the 3D scenes have no inlet (mac3d: periodic, force-driven)
        if start != "rest":
            raise ParameterError(
                f"scenes.start = {start!r} needs a channel inlet; 3D scenes start at rest"
            )
        return u_targets.new_zeros(*u_targets.shape[:-3], 3, *u_targets.shape[-3:])
    if start == "inflow":
        return mac.inflow_potential(u_targets, u_roles, grid)
    return torch.zeros_like(u_targets)


#: the config sections a stored model must share with the request to answer it (the training
#: schedule and the pool do not change what the model computes)
STORE_SECTIONS = ("stagger", "network", "loss")


# -- scenes as tensors -------------------------------------------------------------------------
@dataclass
class SceneBatch:
    """A batch of scenes on one layout, as the tensors the network and the loss read."""

    roles: dict[str, torch.Tensor]  # int8 (B, H, W) per component
    targets: dict[str, torch.Tensor]  # (B, H, W)
    fluid: torch.Tensor  # bool (B, H, W) cells

    @classmethod
    def of(cls, scenes: list, device=None, dtype=torch.float32) -> SceneBatch:
        comps = VELOCITY[scenes[0].grid.dim]
        return cls(
            {k: torch.stack([s.roles[k] for s in scenes]).to(device) for k in comps},
            {k: torch.stack([s.targets[k] for s in scenes]).to(device, dtype) for k in comps},
            torch.stack([s.fluid for s in scenes]).to(device),
        )

    def index(self, idx) -> SceneBatch:
        return SceneBatch(
            {k: v[idx] for k, v in self.roles.items()},
            {k: v[idx] for k, v in self.targets.items()},
            self.fluid[idx],
        )

    def channels(self) -> torch.Tensor:
        """``(B, scene_channels, *grid)``: fluid cells, each component's non-fluid samples,
        their targets (2D: fluid, u and v samples, their targets)."""
        dtype = self.targets["u"].dtype
        masks = [(role != mac.FLUID).to(dtype) for role in self.roles.values()]
        values = [m * self.targets[k] for k, m in zip(self.roles, masks)]
        return torch.stack([self.fluid.to(dtype), *masks, *values], 1)


# -- the network -------------------------------------------------------------------------------
class PieceNetworks(nn.Module):
    """Fine fields ``(B, C_in, *grid)`` -> ``(B, C_out, *grid)`` (2D or 3D, ``dim``) through
    coarse networks, one per interleaved piece (or one shared by all): split, each piece on its
    own, reassembled."""

    def __init__(
        self, in_channels: int, out_channels: int, stagger: StaggerConfig, net, dim: int = 2
    ):
        super().__init__()
        self.factors = stagger.factors(dim)
        self.shared = stagger.shared_weights
        p = math.prod(self.factors)
        self.offsets = self.shared and p > 1
        cfg = UNet2dConfig(
            in_channels=in_channels + dim * int(self.offsets),
            out_channels=out_channels,
            width=net.width,
            depth=net.depth,
            norm="none",
            # 3D layouts may be periodic for the flow itself (mac3d): circular padding there
            padding="zeros" if dim == 2 else "circular",
        )
        unet = UNet2d if dim == 2 else UNet3d
        self.nets = nn.ModuleList([unet(cfg) for _ in range(1 if self.shared else p)])

    @property
    def pieces(self) -> int:
        return math.prod(self.factors)

    def piece_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, P, C, h, w)``: every piece's inputs (with its offset channels if shared)."""
        xs = mac.unshuffle(x, self.factors)
        if self.offsets:
            b, p, _, *n = xs.shape
            d = len(self.factors)
            off = torch.tensor(
                [[i / s for i, s in zip(idx, self.factors)] for idx in np.ndindex(*self.factors)],
                dtype=x.dtype,
            ).to(x.device)
            off = off.reshape(1, p, d, *([1] * d)).expand(b, p, d, *n)
            xs = torch.cat([xs, off], dim=2)
        return xs

    def run_pieces(self, xs: torch.Tensor, which: list[int] | None = None) -> torch.Tensor:
        """Outputs ``(B, len(which), C_out, h, w)`` of the pieces ``which`` (all by default)
        from their inputs ``xs`` ``(B, len(which), C, h, w)``: what one rank or one device runs."""
        which = list(range(self.pieces)) if which is None else list(which)
        b, p = xs.shape[:2]
        if self.shared:
            out = self.nets[0](xs.reshape(b * p, *xs.shape[2:]))
            return out.reshape(b, p, *out.shape[1:])
        return torch.stack([self.nets[k](xs[:, i]) for i, k in enumerate(which)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mac.shuffle(self.run_pieces(self.piece_inputs(x)), self.factors)


class NeuralStaggerStepper(nn.Module):
    """The time stepper: ``s_t`` frames of (a, p) and a scene -> the next ``s_t`` frames.

    ``forward(a, p, scene_channels)``: a, p ``(B, s_t, H, W)`` (oldest first), scene channels
    ``(B, scene_channels(2), H, W)`` -> new a, p ``(B, s_t, H, W)``. On a 3D layout the potential
    has three components, a ``(B, s_t, 3, X, Y, Z)`` (:mod:`pdekit.problems.mac3d`), p
    ``(B, s_t, X, Y, Z)``, and the pieces split three axes.
    """

    def __init__(self, grid, config: NeuralStaggerConfig):
        super().__init__()
        self.grid = grid
        self.config = config
        self.dim = d = grid.dim
        self.potentials = POTENTIAL_COMPONENTS[d]
        st = config.stagger.temporal
        factors = config.stagger.factors(d)
        self.net = PieceNetworks(
            frame_channels(d) * st + scene_channels(d),
            (self.potentials + 1) * st,
            config.stagger,
            config.network,
            d,
        )
        coarse = [n // s for n, s in zip(grid.n, factors)]
        f = 2**config.network.depth
        if any(n % s for n, s in zip(grid.n, factors)) or any(c % f for c in coarse):
            raise ParameterError(
                f"a layout of {grid.n} cells does not split into pieces "
                f"{factors} whose grids are multiples of 2**depth = {f} "
                "(change scenes.cells, stagger.spatial or network.depth)"
            )

    def _components(self, a: torch.Tensor) -> torch.Tensor:
        """``a`` with its component axis: ``(B, s_t, P, *grid)``."""
        return a[:, :, None] if self.dim == 2 else a

    def inputs(self, a, p, scene_channels) -> torch.Tensor:
        vel = velocity_of(a, self.grid)
        frames = torch.cat([self._components(a), p[:, :, None], torch.stack(vel, dim=2)], dim=2)
        return torch.cat([frames.flatten(1, 2), scene_channels], dim=1)

    def advance(self, x, a, p) -> tuple[torch.Tensor, torch.Tensor]:
        """New frames from the network's output ``x`` ``(B, (P + 1) s_t, *grid)`` (P potential
        components) and the last input frame: saturated increments, re-centred to zero mean."""
        net = self.config.network
        st = self.config.stagger.temporal
        k = self.potentials
        x = x.reshape(x.shape[0], st, k + 1, *x.shape[2:])
        a0, p0 = self._components(a)[:, -1:], p[:, -1:]
        a1 = net.a_bound * torch.tanh((a0 + x[:, :, :k]) / net.a_bound)
        p1 = net.p_bound * torch.tanh((p0 + x[:, :, k]) / net.p_bound)
        space = tuple(range(-self.dim, 0))
        a1 = a1 - a1.mean(dim=space, keepdim=True)
        p1 = p1 - p1.mean(dim=space, keepdim=True)
        return (a1[:, :, 0] if self.dim == 2 else a1), p1

    def forward(self, a, p, scene_channels):
        return self.advance(self.net(self.inputs(a, p, scene_channels)), a, p)

    def piece_outputs(self, a, p, scene_channels, which: list[int]) -> torch.Tensor:
        """The outputs ``(B, len(which), C, h, w)`` of the pieces ``which`` alone (what one
        process computes when the pieces are spread over processes)."""
        xs = self.net.piece_inputs(self.inputs(a, p, scene_channels))
        return self.net.run_pieces(xs[:, which], which)

    def assemble(self, outputs: torch.Tensor, a, p):
        """New frames from every piece's outputs ``(B, pieces, C, h, w)``."""
        return self.advance(mac.shuffle(outputs, self.net.factors), a, p)


# -- the physics loss --------------------------------------------------------------------------
def physics_terms(
    problem: Problem,
    grid,
    scenes: SceneBatch,
    a_prev: torch.Tensor,
    a_new: torch.Tensor,
    p_new: torch.Tensor,
    dt: float,
    mirror: bool = False,
    moving_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Per-sample, per-pair ``nav`` and ``bound`` terms ``(B, s_t)`` of the step from the last
    input frame ``a_prev`` ``(B, H, W)`` to the new frames ``a_new``, ``p_new`` ``(B, s_t, H,
    W)`` (3D: a ``(B, [s_t,] 3, X, Y, Z)``): mean squared momentum residual on fluid samples,
    mean squared boundary residual on the others (module docstring), those with a non-zero
    target weighted ``moving_weight`` against the rest (a weighted mean)."""
    b, st = a_new.shape[:2]
    d = grid.dim
    comps = VELOCITY[d]
    space = tuple(range(-d, 0))
    a_all = torch.cat([a_prev[:, None], a_new], dim=1)
    vel = velocity_of(a_all, grid)  # each (B, s_t + 1, *grid)
    pairs = {
        c: torch.stack([f[:, :-1], f[:, 1:]], dim=2).flatten(0, 1)  # (B s_t, 2, *grid)
        for c, f in zip(comps, vel)
    }
    pairs["p"] = torch.stack([p_new, p_new], dim=2).flatten(0, 1)  # the new level's pressure
    res = grid_residual(
        problem,
        pairs,
        grid,
        outputs=OUTPUTS[d],
        times=np.array([0.0, dt]),
        locations=LOCATIONS[d],
        time_scheme="cn",
        order=2,
        boundary=False,
    )
    roles = {k: r[:, None] for k, r in scenes.roles.items()}
    targets = {k: t[:, None] for k, t in scenes.targets.items()}
    rs = [res[f"momentum_{'xyz'[k]}"][:, 0].reshape(b, st, *grid.n) for k in range(d)]
    fluid = [(roles[c] == mac.FLUID).to(rs[0]) for c in comps]
    nav = sum(((r * f) ** 2).sum(space) for r, f in zip(rs, fluid)) / sum(
        f.sum(space) for f in fluid
    )
    new = [f[:, 1:] for f in vel]
    if d == 2:
        cond = mac.boundary_residuals(roles, targets, *new, mirror)
    else:
        cond = mac3d.boundary_residuals(roles, targets, new, mirror)
    weights = [1.0 + (moving_weight - 1.0) * (targets[c] != 0).to(rs[0]) for c in comps]
    nb = sum(((1 - f) * w).sum(space) for f, w in zip(fluid, weights))
    bound = sum((w * cond[c] ** 2).sum(space) for c, w in zip(comps, weights)) / nb
    return {"nav": nav, "bound": bound}


def stagger_loss(terms: dict[str, torch.Tensor], weight: float) -> torch.Tensor:
    """mean log(w_b L_bound + L_nav) over samples and pairs (Wandel et al.)."""
    return torch.log(weight * terms["bound"] + terms["nav"]).mean()


# -- training: the replay pool -----------------------------------------------------------------
class StaggerTask:
    """Training without solution data (Wandel et al.): a pool of scenes (drawn by the problem's
    ``mac_scene(cells, rng)``), each holding its last ``s_t`` frames. Every step advances a
    batch of them through the network, scores the step by the physics loss, and writes the new
    frames back; each advanced scene is replaced by a fresh one at rest with probability
    1 / :meth:`SceneConfig.life`. Under ``torchrun`` each rank has its own pool (its own
    generator)."""

    ddp_find_unused_parameters = False
    average_gradients = False

    def __init__(self, problem, model, config: NeuralStaggerConfig, cells, dt, rng, device):
        self.problem, self.model, self.net = problem, model, model
        self.config, self.cells, self.dt = config, cells, dt
        self.rng = rng
        self.grid = model.grid
        self.dtype = next(model.parameters()).dtype
        self.device = device
        sc = config.scenes
        self.seeds = self.rng.integers(2**62, size=sc.pool)
        self.scene_list = [self._scene(int(s)) for s in self.seeds]
        st = config.stagger.temporal
        self.a = torch.zeros(
            (sc.pool, st, *potential_shape(self.grid)), dtype=self.dtype, device=device
        )
        self.p = torch.zeros((sc.pool, st, *self.grid.n), dtype=self.dtype, device=device)
        for i, scene in enumerate(self.scene_list):
            self.a[i] = self._start(scene)
        self.uses = np.zeros(sc.pool, dtype=np.int64)
        self._refresh_batch()
        self.idx = None
        self._pending = None

    def _scene(self, seed: int) -> mac.MacScene:
        scene = self.problem.mac_scene(self.cells, rng=np.random.default_rng(seed))
        scene.check_curl_layout()
        if scene.grid.n != self.grid.n:
            raise ParameterError(
                f"{self.problem.name}.mac_scene drew a layout of {scene.grid.n} cells; the "
                f"model's is {self.grid.n}"
            )
        return scene

    def _start(self, scene: mac.MacScene) -> torch.Tensor:
        u_targets = scene.targets["u"].to(self.device, self.dtype)
        return start_potential(u_targets, scene.roles["u"], scene.grid, self.config.scenes.start)

    def _refresh_batch(self) -> None:
        self.pool_scenes = SceneBatch.of(self.scene_list, self.device, self.dtype)

    def next_batch(self, step: int) -> None:
        sc = self.config.scenes
        self.idx = torch.as_tensor(np.sort(self.rng.choice(sc.pool, sc.batch, replace=False)))

    def loss(self):
        idx = self.idx.to(self.device)
        scenes = self.pool_scenes.index(idx)
        a, p = self.a[idx], self.p[idx]
        a1, p1 = self.model(a, p, scenes.channels())
        terms = physics_terms(
            self.problem, self.grid, scenes, a[:, -1], a1, p1, self.dt,
            self.config.loss.mirror_walls, self.config.loss.moving_weight,
        )  # fmt: skip
        loss = stagger_loss(terms, self.config.loss.boundary_weight)
        self._pending = (idx, a1.detach(), p1.detach())
        return loss, {"nav": terms["nav"].mean().detach(), "bound": terms["bound"].mean().detach()}

    def after_step(self, step: int, terms: dict[str, float]) -> bool:
        if self._pending is None:
            return False
        idx, a1, p1 = self._pending
        self._pending = None
        self.a[idx], self.p[idx] = a1, p1
        chosen = idx.cpu().numpy()
        self.uses[chosen] += 1
        life = self.config.scenes.life(self.config.stagger.temporal)
        fresh = chosen[self.rng.random(chosen.size) < 1.0 / life]
        for i in fresh:
            self.seeds[i] = self.rng.integers(2**62)
            self.scene_list[i] = self._scene(int(self.seeds[i]))
            self.a[i] = self._start(self.scene_list[i])
            self.p[i] = 0
            self.uses[i] = 0
        if fresh.size:
            self._refresh_batch()
        return False

    def status(self) -> dict[str, float]:
        return {"mean_age": float(self.uses.mean())}

    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "seeds": self.seeds.copy(),
            "a": self.a.detach().cpu(),
            "p": self.p.detach().cpu(),
            "uses": self.uses.copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.seeds = np.asarray(state["seeds"], dtype=np.int64)
        self.scene_list = [self._scene(int(s)) for s in self.seeds]
        self._refresh_batch()
        self.a = torch.as_tensor(state["a"]).to(self.device, self.dtype)
        self.p = torch.as_tensor(state["p"]).to(self.device, self.dtype)
        self.uses = np.asarray(state["uses"], dtype=np.int64)

    def finished(self) -> bool:
        return True

    def new_problem(self) -> bool:
        return False


# -- inference ---------------------------------------------------------------------------------
@dataclass
class Rollout:
    """Frames of a rollout on one scene: ``u``, ``v``, ``p``, ``a`` ``(frames, H, W)`` at
    ``times``; ``wall_s`` the seconds the network steps took. On a 3D scene also ``w``, all
    ``(frames, X, Y, Z)``, and ``a`` ``(frames, 3, X, Y, Z)``."""

    scene: Any
    times: np.ndarray
    u: np.ndarray
    v: np.ndarray
    p: np.ndarray
    a: np.ndarray
    wall_s: float
    w: np.ndarray | None = None

    @property
    def velocity(self) -> tuple[np.ndarray, ...]:
        return (self.u, self.v) if self.w is None else (self.u, self.v, self.w)

    def max_divergence(self) -> float:
        """``max |div v|`` on fluid cells over the frames (round-off for a curl)."""
        vel = [torch.as_tensor(f) for f in self.velocity]
        ops = mac if self.w is None else mac3d
        div = ops.divergence(*vel, self.scene.grid)
        return float(div[:, self.scene.fluid].abs().max())

    def boundary_rms(self, mirror: bool = False) -> float:
        """Root mean square of the boundary conditions' residuals (walls mirrored or not:
        :func:`~pdekit.problems.mac.boundary_residuals`) over the frames after the first (the
        first is the state at rest, before the boundaries move)."""
        vel = [torch.as_tensor(f[1:]) for f in self.velocity]
        if self.w is None:
            c = self.scene.conditions(*vel, mirror)
        else:
            c = self.scene.conditions(vel, mirror)
        n = sum(int((self.scene.roles[k] != mac.FLUID).sum()) for k in c)
        return float(math.sqrt(sum(float((r**2).sum()) for r in c.values()) / (n * len(c["u"]))))


def _spread_step(model: NeuralStaggerStepper, dist, a, p, chans):
    """One block with the pieces spread over the processes of ``dist``: piece k runs on process
    k mod world size; the outputs are gathered (every process then holds the full new state)."""
    pieces, world = model.net.pieces, dist.world_size
    mine = [k for k in range(pieces) if k % world == dist.rank]
    per = -(-pieces // world)  # pieces per process, padded to the same count for all_gather
    out = model.piece_outputs(a, p, chans, mine)
    if len(mine) < per:
        out = torch.cat([out, out.new_zeros(out.shape[0], per - len(mine), *out.shape[2:])], 1)
    gathered = [torch.empty_like(out) for _ in range(world)]
    tdist.all_gather(gathered, out.contiguous())
    full = torch.empty(out.shape[0], pieces, *out.shape[2:], dtype=out.dtype, device=out.device)
    for r in range(world):
        ks = [k for k in range(pieces) if k % world == r]
        full[:, ks] = gathered[r][:, : len(ks)]
    return model.assemble(full, a, p)


@torch.no_grad()
def rollout(
    model: NeuralStaggerStepper,
    scene: mac.MacScene,
    dt: float,
    t_end: float,
    dist=None,
    start: str | None = None,
) -> Rollout:
    """Advance ``scene`` from ``start`` (:func:`start_potential`: at rest, or the inflow
    carried through; default: the model's ``scenes.start``, what it was trained from) to (at
    least) ``t_end`` in blocks of ``s_t`` steps of ``dt``: the pieces batched on one device,
    or, given ``dist`` (a :class:`~pdekit.solvers.distributed.Distributed` of several
    processes, e.g. under ``torchrun``), spread over its processes (:func:`_spread_step`);
    every process returns the whole rollout."""
    spread = dist is not None and dist.enabled
    scene.check_curl_layout()
    st = model.config.stagger.temporal
    param = next(model.parameters())
    dtype, device = param.dtype, param.device
    blocks = max(1, math.ceil(t_end / (dt * st) - 1e-9))
    start = model.config.scenes.start if start is None else start
    a = start_potential(scene.targets["u"].to(device, dtype), scene.roles["u"], scene.grid, start)
    a = a.expand((1, st, *potential_shape(scene.grid))).clone()
    p = torch.zeros((1, st, *scene.grid.n), dtype=dtype, device=device)
    chans = SceneBatch.of([scene], device, dtype).channels()
    frames_a, frames_p = [a[:, -1]], [p[:, -1]]
    was = model.training
    model.eval()
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(blocks):
            a, p = _spread_step(model, dist, a, p, chans) if spread else model(a, p, chans)
            frames_a += list(a.unbind(1))
            frames_p += list(p.unbind(1))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
    finally:
        model.train(was)
    a_all = torch.cat(frames_a).double().cpu()
    p_all = torch.cat(frames_p).double().cpu()
    vel = [f.numpy() for f in velocity_of(a_all, scene.grid)]
    times = dt * np.arange(len(a_all))
    w = vel[2] if len(vel) == 3 else None
    return Rollout(scene, times, vel[0], vel[1], p_all.numpy(), a_all.numpy(), wall, w)


class StepperSolution(Solution):
    """The problem answered by a rollout of its own scene (``mac_scene(cells)``) from the
    configured start (``scenes.start``: at rest by default) to its final time, interpolated in
    space and time (cubic Lagrange, :class:`~pdekit.problems.references.grid.GridReference`)
    from the values at the nodes of the MAC layout inside the problem's box
    (:func:`~pdekit.problems.mac.to_nodes`).
    ``extras["rollout"]``: the rollout's wall time, steps, maximum divergence and the rms of
    its boundary conditions' residuals."""

    def __init__(self, problem, solver, config, model, *, cells: int, dt: float, **kwargs):
        super().__init__(problem, solver, config, self._evaluate, model=model, **kwargs)
        self.cells, self.dt = cells, dt
        self._rollout: Rollout | None = None
        self._interpolant: GridReference | None = None

    def rollout(self) -> Rollout:
        """The rollout of the problem's scene (computed once)."""
        if self._rollout is None:
            scene = self.problem.mac_scene(self.cells)
            t_end = self.problem.domain().time.t1
            r = rollout(self.model, scene, self.dt, t_end)
            self.extras["rollout"] = {
                "wall_s": r.wall_s,
                "steps": len(r.times) - 1,
                "dt": self.dt,
                "max_divergence": r.max_divergence(),
                "boundary_rms": r.boundary_rms(self.config.loss.mirror_walls),
            }
            self._rollout = r
        return self._rollout

    @property
    def interpolant(self) -> GridReference:
        if self._interpolant is None and self.problem.domain().space.dim == 3:
            self._interpolant = _interpolant_3d(self.problem, self.rollout())
        if self._interpolant is None:
            r = self.rollout()
            lo, hi = self.problem.domain().space.bounds
            sx, sy = mac.box_nodes(r.scene.grid, lo, hi)
            nodes = mac.to_nodes(r.scene, r.u, r.v, r.p)
            axes = {
                "x": r.scene.grid.axis(0, "node")[sx],
                "y": r.scene.grid.axis(1, "node")[sy],
                "t": r.times,
            }
            values = {k: np.moveaxis(v[:, sx, sy], 0, -1) for k, v in nodes.items()}
            coords = self.problem.coordinates
            order = [("x", "y", "t").index(c) for c in coords]
            self._interpolant = GridReference(
                {c: axes[c] for c in coords},
                {k: np.transpose(v, order) for k, v in values.items()},
                [False] * len(coords),
                description=f"neural_stagger rollout on {r.scene.name}",
                accuracy="the trained network's",
            )
        return self._interpolant

    def _evaluate(self, points: np.ndarray) -> dict[str, np.ndarray]:
        return self.interpolant(points)


def _interpolant_3d(problem, r: Rollout) -> GridReference:
    """A 3D rollout as a :class:`GridReference` on the layout's nodes inside the problem's box
    (:func:`~pdekit.problems.mac3d.to_nodes`); the scene's periodic axes stay periodic (all
    their nodes)."""
    scene = r.scene
    lo, hi = problem.domain().space.bounds
    nodes = mac3d.to_nodes(scene, r.u, r.v, r.w, r.p)
    axes, index = {}, []
    for k, c in enumerate("xyz"):
        x = scene.grid.axis(k, "node")
        if scene.periodic[k]:
            keep = np.arange(x.size)
        else:
            tol = 1e-9 * float(scene.grid.spacing[k])
            keep = np.nonzero((x >= lo[k] - tol) & (x <= hi[k] + tol))[0]
        axes[c] = x[keep]
        index.append(keep)
    axes["t"] = r.times
    values = {k: np.moveaxis(v[(slice(None), *np.ix_(*index))], 0, -1) for k, v in nodes.items()}
    coords = problem.coordinates
    order = [("x", "y", "z", "t").index(c) for c in coords]
    return GridReference(
        {c: axes[c] for c in coords},
        {k: np.transpose(v, order) for k, v in values.items()},
        [c in "xyz" and scene.periodic["xyz".index(c)] for c in coords],
        description=f"neural_stagger rollout on {scene.name}",
        accuracy="the trained network's",
    )


# -- the solver --------------------------------------------------------------------------------
@register_solver("neural_stagger")
class NeuralStaggerSolver(NetworkSolver):
    """NeuralStagger on the base solver of Wandel et al. (module docstring)."""

    Config = NeuralStaggerConfig
    reads_mac_scene = True
    description = (
        "physics-constrained neural time stepper on a MAC grid (vector potential, no solution "
        "data), split into coarse interleaved pieces in space and blocks in time (NeuralStagger)"
    )
    paper = "Huang et al., ICML 2023; base solver: Wandel, Weinmann & Klein, ICLR 2021"

    def supports(self, problem: Problem) -> str | None:
        if not callable(getattr(problem, "mac_scene", None)):
            return "it needs a flow scene on a MAC grid (the problem has no mac_scene)"
        if not problem.time_dependent or set(problem.fields) not in (
            {"u", "v", "p"},
            {"u", "v", "w", "p"},
        ):
            return "it steps 2D or 3D incompressible flows (u, v[, w], p) in time"
        return None

    def layout(self, problem: Problem, config: NeuralStaggerConfig) -> tuple[int, float, Any]:
        """(cells, dt, layout grid) of ``problem`` under ``config``."""
        cells = config.scenes.cells or int(problem.stepper_cells)
        dt = config.scenes.dt or float(problem.stepper_dt)
        return cells, dt, problem.mac_scene(cells).grid

    def build_model(self, problem: Problem, config: NeuralStaggerConfig) -> NeuralStaggerStepper:
        return NeuralStaggerStepper(self.layout(problem, config)[2], config)

    def build_task(self, problem, config, model, rng, device) -> StaggerTask:
        cells, dt, _ = self.layout(problem, config)
        return StaggerTask(problem, model, config, cells, dt, rng, device)

    # -- the model store ---------------------------------------------------------------------
    def fit(self, problem: Problem, config: NeuralStaggerConfig, run) -> Solution:
        """The Solution from a stored model of this problem (same parameters but ``t_end``,
        same layout, step and network) when there is one, else from training (which saves the
        model into the user store)."""
        if run.resume is None and not config.retrain:
            found = self._stored(problem, config)
            if found is not None:
                _note(f"using the {found.place} model {found.line()}", run.verbose, self.name)
                ckpt = store.load(found)
                stored = from_dict(NeuralStaggerConfig, ckpt.solver_config)
                return self.restore(problem, stored, ckpt)
        sol = super().fit(problem, config, run)
        if distributed.current().is_writer:
            command = (
                f"pdekit.solve({problem.name!r}, solver={self.name!r}, "
                f"overrides={_overrides(config)!r}, **{problem.params()!r})"
            )
            saved = store.save(sol, command=command, name=self._store_name(problem, config))
            sol.extras["store_path"] = str(saved.path)
            _note(f"saved the model to the user store: {saved.path}", run.verbose, self.name)
        return sol

    def _store_name(self, problem: Problem, config) -> str:
        cells, dt, _ = self.layout(problem, config)
        pieces = "x".join(str(s) for s in config.stagger.spatial)
        tag = "_".join(f"{k}{v:g}" for k, v in sorted(_answer_params(problem).items()))
        name = problem.name.split("/")[-1]
        return f"neural_stagger_{name}_{tag}_{cells}c_s{pieces}t{config.stagger.temporal}"

    def _stored(self, problem: Problem, config: NeuralStaggerConfig):
        if config.pretrained:
            found = store.describe(config.pretrained)
            if found.solver != self.name or found.problem != problem.name:
                raise CheckpointError(
                    f"{found.path} is a {found.solver!r} model of {found.problem!r}, not a "
                    f"{self.name!r} model of {problem.name!r}"
                )
            return found
        cells, dt, grid = self.layout(problem, config)
        want = _as_stored(config, grid.dim)
        for found in store.list(self.name, problem=problem.name):
            ckpt = store.load(found)
            saved = ckpt.solver_config
            params = {k: v for k, v in ckpt.problem_params.items() if k != "t_end"}
            if params != _answer_params(problem):
                continue
            stored = from_dict(NeuralStaggerConfig, saved)
            if self.layout(problem, stored)[:2] != (cells, dt):
                continue
            # compared as configs (keys added since the model was saved take their defaults);
            # the start state too: a model answers from the state it was trained from
            have = _as_stored(stored, grid.dim)
            same_start = stored.scenes.start == config.scenes.start
            if same_start and all(have[k] == want[k] for k in STORE_SECTIONS):
                return found
        return None

    def _stepper_solution(self, problem, config, model, **kwargs) -> StepperSolution:
        cells, dt, _ = self.layout(problem, config)
        return StepperSolution(problem, self.name, config, model, cells=cells, dt=dt, **kwargs)

    def _solution(self, problem, config, model, task, trainer, state=None) -> Solution:
        return self._stepper_solution(
            problem,
            config,
            model,
            trainer_state=state if state is not None else trainer.state_dict(),
            history=trainer.history,
            step=trainer.step,
        )

    def restore(self, problem: Problem, config, ckpt) -> Solution:
        model = self._model(problem, config, torch.device("cpu"))
        _load_model(model, ckpt)
        extras = dict(ckpt.extras)
        history = extras.pop("history", {})
        return self._stepper_solution(
            problem,
            config,
            model,
            trainer_state=ckpt.trainer,
            history=history,
            extras=extras,
            step=ckpt.step,
        )


def _as_stored(config: NeuralStaggerConfig, dim: int) -> dict[str, Any]:
    """``config`` as a dict for matching stored models: the pieces as the layout splits them
    (on a 3D problem (2, 2) and (2, 2, 2) are the same model) and the replay life as the pool
    used it (a model saved with ``mean_life`` 400 at s_t = 1 is the default's)."""
    out = to_dict(config)
    out["stagger"]["spatial"] = list(config.stagger.factors(dim))
    out["scenes"]["mean_life"] = config.scenes.life(config.stagger.temporal)
    return out


def _answer_params(problem: Problem) -> dict[str, Any]:
    """The problem's parameters that a trained stepper depends on (all but the horizon)."""
    return {k: v for k, v in problem.params().items() if k != "t_end"}


def _overrides(config: NeuralStaggerConfig) -> dict[str, Any]:
    """The dotted keys where ``config`` differs from the default config."""
    out: dict[str, Any] = {}

    def walk(a: dict, b: dict, prefix: str) -> None:
        for k, v in a.items():
            if isinstance(v, dict):
                walk(v, b.get(k, {}), f"{prefix}{k}.")
            elif b.get(k) != v:
                out[prefix + k] = v

    walk(to_dict(config), to_dict(NeuralStaggerConfig()), "")
    return out


# -- optimal control through a rollout (the paper's last experiment, after Wandel et al.) -------
@dataclass
class ControlResult:
    """:func:`optimise_control`'s answer: the parameter ``theta`` found, and per iteration the
    parameter and the objective (``history``)."""

    theta: float
    objective: float
    history: dict[str, list[float]]


def differentiable_rollout(
    model: NeuralStaggerStepper, scenes: SceneBatch, blocks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``a``, ``p`` ``(B, 1 + blocks s_t, H, W)`` from the model's start state
    (``scenes.start``), with the graph kept: the scenes' targets may depend on a parameter that
    gradients reach through every step (and through the start state)."""
    if model.dim != 2:
        raise ParameterError(
            "differentiable_rollout and optimise_control take 2D models; this one steps a "
            f"{model.dim}D layout"
        )
    st = model.config.stagger.temporal
    ref = next(model.parameters())
    shape = (scenes.fluid.shape[0], st, *scenes.fluid.shape[1:])
    u_targets = scenes.targets["u"].to(ref.device, ref.dtype)
    start = start_potential(u_targets, scenes.roles["u"], model.grid, model.config.scenes.start)
    a = start[:, None].expand(shape)
    p = torch.zeros(shape, dtype=ref.dtype, device=ref.device)
    chans = scenes.channels()
    frames_a, frames_p = [a[:, -1:]], [p[:, -1:]]
    for _ in range(blocks):
        a, p = model(a, p, chans)
        frames_a.append(a)
        frames_p.append(p)
    return torch.cat(frames_a, 1), torch.cat(frames_p, 1)


def optimise_control(
    model: NeuralStaggerStepper,
    scenes_of,
    theta0: float,
    objective,
    blocks: int,
    *,
    iterations: int = 30,
    lr: float = 0.05,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> ControlResult:
    """Tune a scalar input of a flow by gradients through a rollout of the trained stepper
    (Wandel et al.'s control experiment, which NeuralStagger repeats): Adam on ``theta``,
    minimising ``objective(u, v, p)`` of the rollout's velocity and pressure frames
    ``(B, frames, H, W)``.

    Parameters
    ----------
    scenes_of:
        ``theta`` (a 0-d tensor) -> :class:`SceneBatch` whose targets depend differentiably on
        it (e.g. the targets of a scene times a lid or inflow speed ``theta``).
    objective:
        ``(u, v, p) -> 0-d tensor``.
    blocks:
        Rollout length in network calls (``blocks * s_t`` steps).
    bounds:
        ``theta`` is clipped into them after each step.
    """
    ref = next(model.parameters())
    theta = torch.tensor(float(theta0), dtype=ref.dtype, device=ref.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    hist: dict[str, list[float]] = {"theta": [], "objective": []}
    was = model.training
    model.eval()
    for prm in model.parameters():
        prm.requires_grad_(False)
    try:
        for _ in range(iterations):
            opt.zero_grad()
            a, p = differentiable_rollout(model, scenes_of(theta), blocks)
            u, v = mac.velocity_from_potential(a, model.grid)
            value = objective(u, v, p)
            hist["theta"].append(float(theta.detach()))
            hist["objective"].append(float(value.detach()))
            value.backward()
            opt.step()
            with torch.no_grad():
                theta.clamp_(*bounds)
        with torch.no_grad():
            a, p = differentiable_rollout(model, scenes_of(theta), blocks)
            u, v = mac.velocity_from_potential(a, model.grid)
            final = float(objective(u, v, p))
    finally:
        for prm in model.parameters():
            prm.requires_grad_(True)
        model.train(was)
    return ControlResult(float(theta.detach()), final, hist)


def scaled_scenes(scene: mac.MacScene, dtype=torch.float32, device=None):
    """``theta -> SceneBatch`` of ``scene`` with every prescribed velocity times ``theta`` (a
    lid or inflow speed), for :func:`optimise_control`."""
    base = SceneBatch.of([scene], device, dtype)

    def make(theta: torch.Tensor) -> SceneBatch:
        return SceneBatch(base.roles, {k: t * theta for k, t in base.targets.items()}, base.fluid)

    return make
