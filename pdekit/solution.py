"""Solution: a trained model of one problem, evaluated anywhere, scored, exported and saved."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pdekit.checkpoints import Checkpoint, save_checkpoint
from pdekit.errors import ParameterError
from pdekit.geometries.grid import TensorGrid
from pdekit.metrics import field_errors, match_gauge
from pdekit.problems.base import Problem

Predictor = Callable[[np.ndarray], Mapping[str, np.ndarray]]


class ExtrapolationWarning(UserWarning):
    """A solution evaluated outside its problem's domain."""


class Solution:
    """The answer of a solver for one problem.

    Called as ``sol(points)`` with points (n, len(problem.coordinates)) in the problem's
    coordinate order, it returns ``{field: array (n,)}`` like the problem's reference.

    Parameters
    ----------
    problem: the solved problem.
    solver: the solver's registered name.
    config: the solver's config (a dataclass).
    predict: function points (n, d) -> {field: (n,)} (numpy in, numpy out).
    model: the trained network (torch module), if any; its state is saved in checkpoints.
    trainer_state: optimizer/scheduler/sampler/RNG state to resume training exactly.
    history: loss history, ``{"step": [...], "loss": [...], "loss/<term>": [...], ...}``.
    extras: solver-specific state kept with the solution (e.g. causal weight history).
    step: number of training steps taken.
    """

    def __init__(
        self,
        problem: Problem,
        solver: str,
        config: Any,
        predict: Predictor,
        *,
        model=None,
        trainer_state: dict | None = None,
        history: dict | None = None,
        extras: dict | None = None,
        step: int = 0,
    ):
        self.problem = problem
        self.solver = solver
        self.config = config
        self._predict = predict
        self.model = model
        self.trainer_state = trainer_state
        self.history = history or {}
        self.extras = extras or {}
        self.step = step

    # -- evaluation ----------------------------------------------------------------------------
    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        pts = np.asarray(points, dtype=float)
        ncols = len(self.problem.coordinates)
        if pts.ndim == 1 and ncols == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != ncols:
            raise ValueError(
                f"points must have shape (n, {ncols}) with columns {self.problem.coordinates}; "
                f"got {pts.shape}"
            )
        self._warn_outside(pts)
        return {k: np.asarray(v).reshape(-1) for k, v in self._predict(pts).items()}

    def _warn_outside(self, pts: np.ndarray) -> None:
        """Warn once per solution when points lie outside the domain's bounds on a bounded
        axis (the answer there is an extrapolation; periodic axes wrap and are not judged)."""
        if getattr(self, "_warned_outside", False) or not len(pts):
            return
        try:
            dom = self.problem.domain()
            lo, hi = np.asarray(dom.bounds, dtype=float)
            periodic = np.asarray(tuple(dom.periodic) or (False,) * len(lo), dtype=bool)
        except Exception:  # a domain without bounds: nothing to judge
            return
        if lo.shape != (pts.shape[1],) or periodic.shape != lo.shape:
            return
        tol = 1e-9 * np.maximum(hi - lo, 1.0)
        out = ((pts < lo - tol) | (pts > hi + tol)) & ~periodic
        if out.any():
            self._warned_outside = True
            axes = [c for c, o in zip(self.problem.coordinates, out.any(axis=0)) if o]
            warnings.warn(
                f"{int(out.any(axis=1).sum())} of {len(pts)} points lie outside the domain of "
                f"{self.problem.name} in {', '.join(axes)} (bounds {lo.tolist()} to "
                f"{hi.tolist()}): the values there are extrapolated (warned once per solution)",
                ExtrapolationWarning,
                stacklevel=3,
            )

    def on(
        self, grid: TensorGrid | None = None, *, time_first: bool = False
    ) -> dict[str, np.ndarray]:
        """Fields on a tensor grid (default: the problem's evaluation grid), grid-shaped.

        Axes in the grid's coordinate order (the problem's: ``(x, t)``, ``(x, y, t)``), or with
        ``time_first`` the time axis first, ``(t, x)``, ``(t, x, y)``: the order of
        :meth:`to_hdf5`'s ``fields.h5`` (PDEBench's layout).
        """
        grid = grid or self.problem.evaluation_grid()
        values = {k: v.reshape(grid.shape) for k, v in self(grid.points()).items()}
        coords = list(grid.coordinates)
        if time_first and "t" in coords:
            values = {k: np.moveaxis(v, coords.index("t"), 0) for k, v in values.items()}
        return values

    def reference_on(self, grid: TensorGrid | None = None) -> dict[str, np.ndarray]:
        """The reference solution on the same grid, grid-shaped."""
        grid = grid or self.problem.evaluation_grid()
        ref = self.problem.reference()(grid.points())
        return {k: np.asarray(v).reshape(grid.shape) for k, v in ref.items()}

    def errors(self, grid: TensorGrid | None = None) -> dict[str, float]:
        """rel_l2, max_abs and nrmse against the problem's reference, joint and per field.

        Evaluated on ``grid`` (default: the problem's evaluation grid), at its points inside
        the domain where the domain is a mesh (points in its holes are left out; a reference
        that is not finite at a point in the domain is an error). Fields the problem fixes only
        up to a constant
        (``problem.gauge_fields``, e.g. the pressure on a periodic box) are compared after
        shifting the prediction, at each time, to the reference's mean over the grid
        (:func:`pdekit.metrics.match_gauge`).
        """
        grid = grid or self.problem.evaluation_grid()
        pts = grid.points()
        ref = self.problem.reference()(pts)
        inside = _in_mesh(self.problem, pts)
        if not inside.all():  # outside a mesh domain (in a hole): not part of the problem
            pts = pts[inside]
            ref = {k: np.asarray(v)[inside] for k, v in ref.items()}
        bad = ~np.logical_and.reduce([np.isfinite(np.asarray(v)) for v in ref.values()])
        if bad.any():
            raise ValueError(
                f"the reference of {self.problem.name} is not finite at {int(bad.sum())} of "
                f"{len(pts)} evaluation points in the domain, first {pts[bad][0].tolist()}"
            )
        return field_errors(self.gauged(self(pts), ref, pts), ref)

    # -- quantities of interest ------------------------------------------------------------------
    def quantities(self) -> dict[str, dict[str, float]]:
        """The problem's quantities of interest (drag, lift, pressure difference, ...) of this
        solution beside the reference's: ``{name: {"value", "reference", "rel_error"}}``;
        empty for problems that define none (:meth:`Problem.quantities`)."""
        values = self.problem.quantities(self)
        if not values:
            return {}
        ref = self.problem.reference_quantities()
        out = {}
        for name, value in values.items():
            r = float(ref[name])
            out[name] = {
                "value": float(value),
                "reference": r,
                "rel_error": abs(float(value) - r) / max(abs(r), 1e-300),
            }
        return out

    def forces(self, tag: str, **options) -> dict[str, float]:
        """Forces of the flow on the boundary part ``tag`` (drag and lift coefficients and
        the force components), as the problem defines them (:meth:`Problem.forces`)."""
        return self.problem.forces(self, tag, **options)

    def pressure_difference(self, a, b) -> float:
        """``p(a) - p(b)`` at two points (each a sequence of len(coordinates) numbers)."""
        if "p" not in self.problem.fields:
            raise ParameterError(f"{self.problem.name} has no pressure field 'p'")
        pts = np.array([a, b], dtype=float)
        p = self(pts)["p"]
        return float(p[0] - p[1])

    def gauged(self, pred, ref, points: np.ndarray) -> dict[str, np.ndarray]:
        """``pred`` at grid ``points`` with its gauge fields shifted to ``ref``'s constant."""
        fields = getattr(self.problem, "gauge_fields", ())
        if not fields:
            return dict(pred)
        times = np.asarray(points)[:, -1] if self.problem.time_dependent else None
        return match_gauge(pred, ref, fields, times)

    # -- output --------------------------------------------------------------------------------
    def to_vtk(self, path: str | os.PathLike, grid: TensorGrid | None = None) -> Path:
        """Write the solution for ParaView: ``.pvd`` time series (or one ``.vts`` when steady).

        Prediction, reference and pointwise error (``u``, ``u_reference``, ``u_error``) are
        written as named point arrays; velocity components also as one vector ``U``.
        """
        from pdekit.io.vtk import write_solution

        return write_solution(self, path, grid)

    def to_hdf5(self, path: str | os.PathLike, grid: TensorGrid | None = None) -> Path:
        """Fields on a grid in the PDEBench-style layout of :mod:`pdekit.io.hdf5`."""
        from pdekit.io.hdf5 import write_fields

        return write_fields(self, path, grid)

    def plot(self, path: str | os.PathLike, grid: TensorGrid | None = None) -> Path:
        """PNG: prediction, reference and error side by side, and the loss history."""
        from pdekit.io.plot import plot_solution

        return plot_solution(self, path, grid)

    # -- persistence ---------------------------------------------------------------------------
    def to_checkpoint(self) -> Checkpoint:
        from pdekit.solvers.config import to_dict

        return Checkpoint(
            problem=self.problem.name,
            problem_params=self.problem.params(),
            solver=self.solver,
            solver_config=to_dict(self.config),
            step=self.step,
            model=self.model.state_dict() if self.model is not None else {},
            trainer=self.trainer_state,
            extras={"history": self.history, **self.extras},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """HDF5 checkpoint: ``pdekit.load(path)`` restores this solution (and can resume it)."""
        return save_checkpoint(path, self.to_checkpoint())

    def __repr__(self) -> str:
        return f"Solution(problem={self.problem.name!r}, solver={self.solver!r}, step={self.step})"


def _in_mesh(problem: Problem, points: np.ndarray) -> np.ndarray:
    """Bool (n,): the points whose spatial part lies in the problem's mesh domain (all True
    for other domains)."""
    from pdekit.geometries.mesh import MeshGeometry

    domain = problem.domain()
    space = getattr(domain, "space", domain)
    if not isinstance(space, MeshGeometry):
        return np.ones(len(points), dtype=bool)
    return np.asarray(space.contains(np.asarray(points)[:, : space.dim]), dtype=bool)
