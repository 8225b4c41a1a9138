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
    suffix = ""
    if len(ax_names) > 2:
        suffix = " (final time)" if ax_names[-1] == "t" else " (middle slice)"
    for row, k in enumerate(fields):
        panels = [(k, "prediction")]
        if has_ref:
            panels += [(f"{k}_reference", "reference"), (f"{k}_error", "error")]
        ref_img = None
        for col, (name, label) in enumerate(panels):
            img, _, _, _ = _plane(grid, arrays[name])
            ax = axes[row, col]
            if label == "error":
                lim = float(np.max(np.abs(img))) or 1.0
                im = ax.imshow(
                    img.T,
                    origin="lower",
                    aspect="auto",
                    extent=extent,
                    cmap="RdBu_r",
                    vmin=-lim,
                    vmax=lim,
                )
            else:
                kw = {}
                if ref_img is not None:
                    kw = dict(vmin=ref_img.min(), vmax=ref_img.max())
                im = ax.imshow(
                    img.T, origin="lower", aspect="auto", extent=extent, cmap="viridis", **kw
                )
                if label == "prediction" and has_ref:
                    ref_img, _, _, _ = _plane(grid, arrays[f"{k}_reference"])
                    im.set_clim(ref_img.min(), ref_img.max())
            ax.set_title(f"{k}: {label}{suffix}")
            ax.set_xlabel(ax_names[0])
            if len(ax_names) > 1:
                ax.set_ylabel(ax_names[1])
            fig.colorbar(im, ax=ax)
    if history.get("loss"):
        ax = axes[-1, 0]
        steps = history.get("step", range(len(history["loss"])))
        for name, values in history.items():
            if name == "loss" or name.startswith("loss/"):
                ax.semilogy(steps, values, label=name, lw=1.2 if name == "loss" else 0.8)
        ax.set_xlabel("step")
        ax.set_title("training loss")
        ax.legend(fontsize=7)
        for col in range(1, ncols):
            axes[-1, col].axis("off")
        if has_ref:
            errs = solution.errors(grid)
            text = "\n".join(f"{m}: {errs[m]:.3e}" for m in ("rel_l2", "max_abs", "nrmse"))
            axes[-1, 1].text(0.05, 0.5, text, fontsize=11, family="monospace", va="center")
    fig.suptitle(f"{solution.problem.name} — solver {solution.solver}, {solution.step} steps")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
