"""``moe_hard``'s experts placed across torchrun ranks: two gloo processes, each with one sample of
a batch of two and one half of the four experts, wrapped in DistributedDataParallel, give the
prediction and the (averaged) parameter gradients of one training step that one process gives
on the whole batch (float64, to round-off); a partition the ranks cannot share out is refused
on every rank with one named error (PI-HC's single expert on two ranks); the same for
Navier-Stokes (2 x 2 spatial experts, the initial condition built in); the placement's two
data moves are each other's adjoints; and ``torchrun -m pdekit train`` trains as one process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import two_ranks

from pdekit.errors import ParameterError
from pdekit.geometries import Grid
from pdekit.problems import registry
from pdekit.solvers import distributed
from pdekit.solvers.hard_constraint import ExpertPlacement
from pdekit.solvers.moe_hard import (
    BasisNetworkConfig,
    ConstraintConfig,
    PhysicsConfig,
    PhysicsFNO,
    physics_loss,
)

GRID = Grid([0.0], [1.0], 16)
TIMES = np.linspace(0.0, 50.0, 11)
#: the batch of two initial states (rank r of two takes sample r)
U0 = (0.05, 0.2)


def _model(experts=(1, 4)) -> PhysicsFNO:
    problem = registry.get("porous_medium/diffusion_sorption", seed=3)
    net = BasisNetworkConfig(basis=4, width=8, modes=3, layers=1, projection=8, padding=2)
    cons = ConstraintConfig(experts=experts, points=20, tol=1e-10, max_iter=200)
    torch.manual_seed(0)
    return PhysicsFNO(problem, GRID, TIMES, net, cons).double()


def _ns_model() -> PhysicsFNO:
    """Decaying turbulence on 8^2 x 5, experts 2 x 2 in space, the initial condition built in."""
    problem = registry.get("navier_stokes/decaying_turbulence", nu=1e-3, t_end=1.0)
    net = BasisNetworkConfig(basis=4, width=4, modes=2, layers=1, projection=4, padding=2)
    cons = ConstraintConfig(experts=(1, 2, 2), points=10, tol=1e-10, max_iter=200)
    torch.manual_seed(0)
    return PhysicsFNO(problem, problem.grid(8), np.linspace(0.0, 1.0, 5), net, cons,
                      PhysicsConfig(initial="built_in")).double()  # fmt: skip


def _ns_inputs(samples) -> torch.Tensor:
    problem = registry.get("navier_stokes/decaying_turbulence", nu=1e-3, t_end=1.0)
    w0 = torch.as_tensor(problem.initial_state(problem.grid(8))["w"])
    return torch.stack([(1.0 + i) * w0[None, ..., None] for i in samples])


def _inputs(samples) -> torch.Tensor:
    return torch.stack([torch.full((1, 16, 1), U0[i], dtype=torch.float64) for i in samples])


def _step(model: PhysicsFNO, call, x: torch.Tensor):
    """One training step's forward and backward: the prediction and every parameter's
    gradient, flattened."""
    model.train()
    u = call(x, generator=torch.Generator().manual_seed(3), full=True)
    loss = sum(physics_loss(model, u, x[:, 0, ..., 0]).values())
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return u.detach(), grads


def _worker(out: Path) -> None:
    with distributed.launched(device="cpu") as dist:
        assert dist.world_size == 2
        model = _model()
        u, grads = _step(model, dist.wrap(model), _inputs([dist.rank]))
        np.save(out / f"u{dist.rank}.npy", u.numpy())
        np.save(out / f"iters{dist.rank}.npy", model.last_solve["iterations"].numpy())
        np.save(out / f"grads{dist.rank}.npy", grads.numpy())
        ns = _ns_model()  # Navier-Stokes: 3D partition, the initial condition an offset column
        u, grads = _step(ns, dist.wrap(ns), _ns_inputs([dist.rank]))
        np.save(out / f"ns_u{dist.rank}.npy", u.numpy())
        np.save(out / f"ns_grads{dist.rank}.npy", grads.numpy())
        try:  # one expert (PI-HC) cannot be shared out by two ranks: refused on every rank
            one = _model((1, 1))
            _step(one, dist.wrap(one), _inputs([dist.rank]))
        except ParameterError as exc:
            (out / f"error{dist.rank}.txt").write_text(str(exc))


def test_experts_on_two_gloo_ranks_equal_one_process(tmp_path):
    two_ranks.run([__file__, "ranks", str(tmp_path)], tmp_path)
    model = _model()
    u, grads = _step(model, model, _inputs([0, 1]))
    assert model.last_solve["iterations"].shape == (2, 4)
    assert bool(model.last_solve["converged"].all())
    assert float(u.abs().max()) > 0 and float(grads.abs().max()) > 0
    ns = _ns_model()
    ns_one = _step(ns, ns, _ns_inputs([0, 1]))
    assert ns.last_solve["iterations"].shape == (2, 4) and float(ns_one[1].abs().max()) > 0
    for r in range(2):
        spread = np.load(tmp_path / f"u{r}.npy")
        assert spread.shape == (1, 11, 16)
        np.testing.assert_allclose(spread[0], u[r].numpy(), rtol=0, atol=1e-12)
        # the LM iterations of this rank's sample, every expert, as one process counts them
        iters = np.load(tmp_path / f"iters{r}.npy")
        np.testing.assert_array_equal(iters[0], model.last_solve["iterations"][r].numpy())
        # DDP's averaged gradient is the one-process gradient of the mean loss of the batch
        spread_grads = np.load(tmp_path / f"grads{r}.npy")
        np.testing.assert_allclose(spread_grads, grads.numpy(), rtol=1e-9, atol=1e-12)
        ns_u = np.load(tmp_path / f"ns_u{r}.npy")
        np.testing.assert_allclose(ns_u[0], ns_one[0][r].numpy(), rtol=0, atol=1e-12)
        ns_grads = np.load(tmp_path / f"ns_grads{r}.npy")
        np.testing.assert_allclose(ns_grads, ns_one[1].numpy(), rtol=1e-9, atol=1e-12)
        message = (tmp_path / f"error{r}.txt").read_text()
        assert "constraint.experts = [1, 1] make 1 expert(s), which 2 ranks cannot" in message
        assert "multiple of the 2 ranks (2, 4, 6, ...)" in message


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "ranks":
    torch.set_num_threads(1)
    _worker(Path(sys.argv[2]))
    sys.stderr.flush()
    os._exit(0)


class _Ranks:
    """A stand-in process group for the placement's arithmetic (no collective is made)."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size


def test_the_placement_refuses_what_the_ranks_cannot_share_out():
    place = ExpertPlacement(8, _Ranks(1, 4))
    assert (place.per, place.lo, place.hi) == (2, 2, 4)
    assert [place.owner(k) for k in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ParameterError, match=r"2 expert\(s\), which 4 ranks cannot share out"):
        ExpertPlacement(2, _Ranks(0, 4))  # fewer experts than ranks
    with pytest.raises(ParameterError, match="multiple of the 3 ranks"):
        ExpertPlacement(4, _Ranks(0, 3))
    with pytest.raises(ParameterError, match="placement"):
        ConstraintConfig(placement="spread")


def test_the_two_moves_are_each_others_adjoints(monkeypatch):
    """<to_owners(a), b> summed over the owners equals <a, from_owners(b)> summed over the
    ranks: the identity that makes each move's backward the other's forward. Three ranks,
    simulated by a gather over lists."""
    world, b, experts = 3, 2, 6
    gen = torch.Generator().manual_seed(0)
    a = [torch.randn(b, experts, 5, generator=gen, dtype=torch.float64) for _ in range(world)]
    c = [torch.randn(world * b, experts // world, 5, generator=gen, dtype=torch.float64)
         for _ in range(world)]  # fmt: skip
    places = [ExpertPlacement(experts, _Ranks(r, world)) for r in range(world)]

    def moved(name, inputs):
        out = []
        for place in places:
            monkeypatch.setattr(place, "_all_gather", lambda t, _i=inputs: list(_i))
            out.append(getattr(place, name)(inputs[place.rank]))
        return out

    owned, back = moved("to_owners", a), moved("from_owners", c)
    lhs = sum(float((o * ci).sum()) for o, ci in zip(owned, c))
    rhs = sum(float((ai * bi).sum()) for ai, bi in zip(a, back))
    assert lhs == pytest.approx(rhs, rel=1e-13)
    # expert k of rank r's sample i sits on k's owner at row r b + i, column k - lo
    for r in range(world):
        for k in range(experts):
            q = places[0].owner(k)
            torch.testing.assert_close(owned[q][r * b : (r + 1) * b, k - places[q].lo], a[r][:, k])


def test_torchrun_pdekit_train_matches_one_process(tmp_path):
    """End to end through the command line: ``torchrun --nproc_per_node=2 -m pdekit train
    diffusion_sorption --solver moe_hard`` (four experts placed across the two ranks, each rank
    its share of every batch) writes a model whose weights after 4 steps are those of the same
    command in one process on the whole batch: their distance is under a tenth of the last
    step's own move (one process, 3 steps against 4; measured: 1.2e-4 of the weights' norm
    against 4.1e-3 for the last step; float32, LM to tolerance 1e-4); the model records its
    command and placement."""
    import pdekit
    from pdekit import store

    args = [
        "train", "diffusion_sorption", "--solver", "moe_hard", "--quiet",
        "--config", "dataset.grid=32", "--config", "dataset.n_train=8",
        "--config", "dataset.n_valid=2", "--config", "dataset.eval_every=100",
        "--config", "constraint.experts=[1,4]",
        "--config", "constraint.points=64",
    ]  # fmt: skip
    weights = {}
    one = [sys.executable, "-m", "pdekit"]
    for name, launch, steps in (("ranks", two_ranks.TORCHRUN + ["-m", "pdekit"], 4),
                                ("one", one, 4), ("one_3", one, 3)):  # fmt: skip
        run = args + ["--config", f"train.steps={steps}"]
        two_ranks.run(run, tmp_path, 300, launch, PDEKIT_CACHE_DIR=str(tmp_path / name))
        (path,) = (tmp_path / name / "models").glob("moe_hard_diffusion_sorption_32*.h5")
        ckpt = store.load(store.describe(path))
        assert ckpt.step == steps
        assert ckpt.solver_config["constraint"]["placement"] == "ranks"
        assert "--solver moe_hard" in ckpt.extras["training_command"]
        weights[name] = pdekit.load(path).model.state_dict()

    def distance(a, b):
        return sum(float(((weights[a][k] - w) ** 2).sum()) for k, w in weights[b].items()) ** 0.5

    assert distance("ranks", "one") < 0.1 * distance("one_3", "one")
