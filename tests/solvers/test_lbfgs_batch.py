"""The batch full-batch L-BFGS trains on after Adam (``sampling.lbfgs_n_interior``): drawn at
its own size when L-BFGS begins, re-drawn at that size when a run resumes inside the L-BFGS
phase (bit-identical to the uninterrupted run), refused where it cannot apply.

Oracles: the sizes of the batches drawn (counted); an uninterrupted run for resume."""

from __future__ import annotations

import pytest
import torch

import pdekit
from pdekit.errors import ParameterError
from pdekit.solvers import physics
from pdekit.solvers.physics import AdaptiveSampling, SamplingConfig

CASES = {
    "pinn": ("porous_medium/heat", {"k": 1.0}, {"network.width": 16, "network.depth": 2}),
    "lagrangian_pinn": (
        "convection_diffusion/burgers",
        {},
        {"characteristic.width": 8, "state.width": 16, "state.depth": 2},
    ),
}


@pytest.fixture
def drawn(monkeypatch):
    """The interior sizes of the batches the physics loss draws, in order."""
    sizes = []
    sample = physics.PhysicsLoss.sample

    def counted(self):
        batch = sample(self)
        sizes.append(batch.interior.shape[0])
        return batch

    monkeypatch.setattr(physics.PhysicsLoss, "sample", counted)
    return sizes


@pytest.mark.parametrize("solver", sorted(CASES))
@pytest.mark.parametrize("lbfgs_points, want", [(256, 256), (0, 64)])
def test_lbfgs_draws_one_batch_of_its_own_size(solver, lbfgs_points, want, drawn):
    name, params, net = CASES[solver]
    cfg = {
        **net,
        "train.steps": 3,
        "train.lbfgs_steps": 2,
        "sampling.n_interior": 64,
        "sampling.lbfgs_n_interior": lbfgs_points,
    }
    sol = pdekit.solve(name, solver=solver, overrides=cfg, verbose=False, **params)
    assert sol.step == 5
    assert drawn == [64, 64, 64, want]  # one per Adam step (resample_every 1), one for L-BFGS


def test_resume_inside_the_lbfgs_phase_matches_the_uninterrupted_run(tmp_path):
    """The checkpoint at step 8 falls in L-BFGS (Adam's 6 steps, then 6 iterations): the
    resumed run must re-draw L-BFGS's batch at its size from the saved generator state."""
    name, params, net = CASES["pinn"]
    cfg = {
        **net,
        "train.steps": 6,
        "train.lbfgs_steps": 6,
        "train.checkpoint_every": 8,
        "sampling.n_interior": 64,
        "sampling.lbfgs_n_interior": 256,
    }
    kw = dict(solver="pinn", overrides=cfg, verbose=False, **params)
    full = pdekit.solve(name, checkpoint_dir=tmp_path, **kw)
    ckpt = tmp_path / "checkpoint_00000008.h5"
    assert pdekit.load(ckpt).trainer_state["task"]["lbfgs_batch"]
    resumed = pdekit.solve(name, resume=ckpt, **kw)
    assert resumed.step == full.step == 12
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert resumed.history["loss"] == full.history["loss"]


def test_bad_lbfgs_batch_settings_are_refused():
    with pytest.raises(ParameterError, match="lbfgs_n_interior"):
        SamplingConfig(lbfgs_n_interior=-1)
    with pytest.raises(ParameterError, match=r"lbfgs_n_interior must be in \[0, 512"):
        SamplingConfig(
            n_interior=256, lbfgs_n_interior=1024, adaptive=AdaptiveSampling(method="rad", pool=512)
        )
    with pytest.raises(ParameterError, match="DeepXDE's L-BFGS"):
        pdekit.solve(
            "porous_medium/heat",
            solver="deepxde",
            k=1.0,
            overrides={"sampling.lbfgs_n_interior": 256},
            verbose=False,
        )
