"""``sampling.density = "mesh"``: interior points as dense as a problem's mesh, refused where the
domain is not a mesh and by the solvers that draw their own points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.problems.registry import get
from pdekit.solvers.causal_pinn import CausalPINNConfig
from pdekit.solvers.deepxde_baseline import DeepXDEConfig
from pdekit.solvers.physics import PhysicsLoss, SamplingConfig

CPU = {"device": torch.device("cpu"), "dtype": torch.float64}


def near_cylinder(points: np.ndarray) -> float:
    """Share of the points within 0.1 of the DFG cylinder's centre (0.2, 0.2)."""
    return float(np.mean(np.hypot(points[:, 0] - 0.2, points[:, 1] - 0.2) < 0.1))


def test_the_mesh_density_follows_the_dfg_mesh():
    """The shipped DFG mesh is refined toward the cylinder: there, the share of the points is
    the share of the mesh's triangles (not of the area), on the steady problem and, through
    the space-time domain, on the unsteady one."""
    for name in ("navier_stokes/cylinder_steady", "navier_stokes/cylinder"):
        problem = get(name)
        dom = problem.domain()
        space = getattr(dom, "space", dom)
        centres = space.points[space.simplices].mean(axis=1)
        share_cells = near_cylinder(centres)
        share_area = float(
            space.simplex_volume[np.hypot(*(centres - 0.2).T) < 0.1].sum() / space.volume()
        )
        assert share_cells > 3 * share_area  # the mesh is refined there
        for density, share in (("uniform", share_area), ("mesh", share_cells)):
            loss = PhysicsLoss(
                problem,
                SamplingConfig(n_interior=20000, n_boundary=0, n_initial=0, density=density),
                np.random.default_rng(0),
                **CPU,
            )
            pts = loss.sample().interior.numpy()
            assert abs(near_cylinder(pts) - share) < 0.02, (name, density)


def test_the_mesh_density_needs_a_mesh():
    with pytest.raises(ParameterError, match="density='mesh' needs a domain that is a mesh"):
        PhysicsLoss(
            get("navier_stokes/kovasznay"),
            SamplingConfig(density="mesh"),
            np.random.default_rng(0),
            **CPU,
        )
    with pytest.raises(ParameterError, match="density must be one of"):
        SamplingConfig(density="fine")


def test_solvers_drawing_their_own_points_refuse_it():
    with pytest.raises(ParameterError, match="causal PINN draws its own points"):
        CausalPINNConfig(sampling=SamplingConfig(n_interior=4096, density="mesh"))
    with pytest.raises(ParameterError, match="deepxde baseline draws its points uniformly"):
        DeepXDEConfig(sampling=SamplingConfig(density="mesh"))
