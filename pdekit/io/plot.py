"""Matplotlib figures: prediction / reference / error side by side, and the loss history.

* 1D in space + time: each field as an image over (x, t);
* 2D steady: each field as an image over (x, y);
* 2D or 3D with time, or 3D steady: the final time (the middle z-slice in 3D).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pdekit.geometries.grid import TensorGrid
from pdekit.io.grids import solution_arrays


def _plane(grid: TensorGrid, values: np.ndarray) -> tuple[np.ndarray, str, str, np.ndarray]:
    """Reduce a grid array to a 2D image and its axes (first two coordinates kept)."""
    coords = list(grid.coordinates)
    v = values
    while v.ndim > 2:  # drop the last axis: final time, then middle z
        idx = -1 if coords[-1] == "t" else v.shape[-1] // 2
        v = v[..., idx]
        coords.pop()
    if v.ndim == 1:
        v = v[:, None]
        coords.append("")
    return v, coords[0], coords[1], np.array([0])


def plane_inside(problem, grid: TensorGrid) -> np.ndarray | None:
    """Which pixels of the plotted plane lie in the problem's spatial domain, when the plane is
    two space axes (the others at the plotted slice: middle z; time does not matter); None when
    every pixel does, or the plane holds time. A domain with a hole (a channel around a
    cylinder, a mesh) is drawn as itself, not over its bounding box."""
    coords = list(grid.coordinates)
    space = [c for c in coords if c != "t"]
    if len(space) < 2 or coords[:2] != space[:2]:
        return None
    dom = problem.domain()
    geometry = getattr(dom, "space", dom)
    axes = [np.asarray(grid.axes[c], dtype=float) for c in space]
    X, Y = np.meshgrid(axes[0], axes[1], indexing="ij")
    cols = [X.ravel(), Y.ravel()] + [np.full(X.size, a[len(a) // 2]) for a in axes[2:]]
    inside = np.asarray(geometry.contains(np.column_stack(cols)), dtype=bool).reshape(X.shape)
    return None if inside.all() else inside


def color_limits(prediction: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """One colour scale for the prediction and reference panels, spanning both: a prediction
    outside the reference's range shows as such (it was clamped to the reference's range)."""
    values = np.concatenate([np.ravel(prediction), np.ravel(reference)])
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    return float(values.min()), float(values.max())


def loss_scale(series) -> tuple[str, dict]:
    """``("log", {})`` for positive losses; ``("symlog", {"linthresh": ...})`` when one is zero
    or negative (a negative log-likelihood, ProbConserv's): a log axis would drop them."""
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in series] or [[1.0]])
    values = values[np.isfinite(values)]
    if not values.size or values.min() > 0:
        return "log", {}
    nonzero = np.abs(values[values != 0])
    return "symlog", {"linthresh": float(nonzero.min()) if nonzero.size else 1.0}


def plot_solution(solution, path: str | os.PathLike, grid: TensorGrid | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = grid or solution.problem.evaluation_grid()
    arrays = solution_arrays(solution, grid)
    fields = list(solution.problem.fields)
    has_ref = all(f"{k}_reference" in arrays for k in fields)
    ncols = 3 if has_ref else 1
    history = solution.history or {}
    nrows = len(fields) + (1 if history.get("loss") else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    ax_names = list(grid.coordinates)
    a0, a1 = grid.axes[ax_names[0]], grid.axes[ax_names[1]] if len(ax_names) > 1 else None
    extent = None
    if a1 is not None:
        extent = [a0.min(), a0.max(), a1.min(), a1.max()]
    # a plane of two space axes keeps its proportions (a 2.2 x 0.41 channel is not a square);
    # a space-time plane fills the panel
    aspect = "equal" if a1 is not None and "t" not in ax_names[:2] else "auto"
    suffix = ""
    if len(ax_names) > 2:
        suffix = " (final time)" if ax_names[-1] == "t" else " (middle slice)"
    inside = plane_inside(solution.problem, grid)

    def plane(values: np.ndarray) -> np.ndarray:
        img = _plane(grid, values)[0]
        return img if inside is None else np.where(inside, img, np.nan)  # blank outside

    for row, k in enumerate(fields):
        panels = [(k, "prediction")]
        if has_ref:
            panels += [(f"{k}_reference", "reference"), (f"{k}_error", "error")]
        for col, (name, label) in enumerate(panels):
            img = plane(arrays[name])
            ax = axes[row, col]
            if label == "error":
                finite = np.abs(img[np.isfinite(img)])
                lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
                im = ax.imshow(
                    img.T,
                    origin="lower",
                    aspect=aspect,
                    extent=extent,
                    cmap="RdBu_r",
                    vmin=-lim,
                    vmax=lim,
                )
            else:
                im = ax.imshow(img.T, origin="lower", aspect=aspect, extent=extent, cmap="viridis")
                if has_ref:  # one scale for prediction and reference, spanning both
                    im.set_clim(*color_limits(img, plane(arrays[f"{k}_reference"])))
            ax.set_title(f"{k}: {label}{suffix}")
            ax.set_xlabel(ax_names[0])
            if len(ax_names) > 1:
                ax.set_ylabel(ax_names[1])
            fig.colorbar(im, ax=ax)
    if history.get("loss"):
        ax = axes[-1, 0]
        steps = history.get("step", range(len(history["loss"])))
        series = {n: v for n, v in history.items() if n == "loss" or n.startswith("loss/")}
        colors = plt.get_cmap("tab20" if len(series) > 10 else "tab10")
        for i, (name, values) in enumerate(series.items()):
            ax.plot(steps, values, label=name, lw=1.2 if name == "loss" else 0.8, color=colors(i),
                    marker="o" if len(values) < 3 else None, ms=3)  # fmt: skip
        scale, options = loss_scale(series.values())
        ax.set_yscale(scale, **options)
        ax.set_xlabel("step")
        ax.set_ylabel("loss" + (" (symlog: it goes negative)" if scale == "symlog" else ""))
        ax.set_title("training loss and its terms")
        ax.legend(fontsize=6, ncol=2 if len(series) > 5 else 1, loc="best", framealpha=0.6)
        for col in range(1, ncols):
            axes[-1, col].axis("off")
        if has_ref:
            errs = solution.errors(grid)
            text = "\n".join(f"{m}: {errs[m]:.3e}" for m in ("rel_l2", "max_abs", "nrmse"))
            axes[-1, 1].text(0.05, 0.5, text, fontsize=11, family="monospace", va="center")
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in solution.problem.params().items()
                       if isinstance(v, int | float | str) and not isinstance(v, bool))  # fmt: skip
    title = f"{solution.problem.name}" + (f" ({params})" if params and len(params) <= 60 else "")
    fig.suptitle(f"{title} — solver {solution.solver}, {solution.step} steps")
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Lay out, write (PNG, 110 dpi; the folder made if needed) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
