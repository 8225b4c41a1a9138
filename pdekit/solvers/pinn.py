"""Vanilla physics-informed neural network (Raissi, Perdikaris & Karniadakis, JCP 378, 2019).

Minimises, over the network u_theta, ::

    L = w_r sum_eq mean |R_eq[u_theta]|^2  +  w_ic sum_fields mean |u_theta(x, t0) - u0(x)|^2
        + w_bc sum_bc mean |B[u_theta] - g|^2

on collocation points redrawn every step. The residual R is the problem's own, evaluated by the
core's fields engine. Periodic axes are exact through the periodic embedding of the network
(Dong & Ni 2021) unless ``network.periodic_harmonics = 0``, in which case a periodicity loss
on values and first derivatives is added.

With ``exact_dirichlet`` (an option beyond Raissi et al.'s method, off by default) the
problem's Dirichlet conditions are built into the network, f = lift + distance * N (Lagaris,
Likas & Fotiadis 1998; Sukumar & Srivastava 2022), and leave the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.problems.base import ExactDirichlet, Problem
from pdekit.problems.registry import get_class
from pdekit.problems.registry import names as problem_names
from pdekit.solvers.base import NetworkSolver
from pdekit.solvers.config import check
from pdekit.solvers.networks import ExactDirichletNetwork, NetworkConfig, build_mlp
from pdekit.solvers.physics import (
    ENGINES,
    AdaptiveSamplingTask,
    PhysicsLoss,
    SamplingConfig,
    WeightsConfig,
    resolve_engine,
)
from pdekit.solvers.registry import register_solver
from pdekit.solvers.training import SampledTask, TrainConfig


@dataclass
class PINNConfig:
    """Configuration of the vanilla PINN."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: derivative engine of the core for residuals: auto (see
    #: :func:`~pdekit.solvers.physics.resolve_engine`: Taylor where the network supports it
    #: and the residual has second derivatives, compiled for runs of 2000 steps or more, else
    #: autograd), taylor, taylor_compiled (Taylor under torch.compile: a compile of seconds on
    #: the first step, faster steps after), or autograd
    engine: str = "auto"
    #: satisfy the problem's Dirichlet conditions exactly, by the network's form
    #: f = lift + distance * N (Lagaris et al. 1998; Sukumar & Srivastava 2022) with the lift
    #: and distance the problem offers (:meth:`~pdekit.problems.base.Problem.exact_dirichlet`);
    #: those conditions leave the loss. Not in Raissi et al.'s PINN: an option, off by default
    exact_dirichlet: bool = False

    def __post_init__(self):
        check(self, "engine", self.engine, choices=ENGINES)
        if not isinstance(self.exact_dirichlet, bool):
            raise ParameterError(
                f"exact_dirichlet must be true or false; got {self.exact_dirichlet!r}"
            )


def exact_forms(problem: Problem, wanted: bool) -> ExactDirichlet | None:
    """The problem's exact Dirichlet forms when ``wanted`` (None when not); a clear refusal
    naming the problems that offer them when it has none."""
    if not wanted:
        return None
    exact = problem.exact_dirichlet()
    if exact is None:
        offering = [
            n
            for n in problem_names()
            if get_class(n).exact_dirichlet is not Problem.exact_dirichlet  # overridden
        ]
        raise ParameterError(
            f"exact_dirichlet=true: {problem.name} offers no exact form of its Dirichlet "
            f"conditions; problems that do: {offering}"
        )
    return exact


class PINNTask(AdaptiveSamplingTask, SampledTask):
    """Training task of the vanilla PINN (also the base of other PINN-type tasks)."""

    def __init__(self, problem: Problem, config, model, rng: np.random.Generator, device):
        self.problem, self.config, self.model, self.rng = problem, config, model, rng
        self.physics = PhysicsLoss(
            problem,
            config.sampling,
            rng,
            device=device,
            dtype=config.train.torch_dtype,
            periodic_by_loss=config.network.periodic_harmonics == 0,
            engine=resolve_engine(
                config.engine, problem, model, config.train.steps, config.train.time_budget_s
            ),
            auto=config.engine == "auto",
            exact=exact_forms(problem, getattr(config, "exact_dirichlet", False)),
        )

    def draw_batch(self):
        return self.physics.sample()

    def pointwise_error(self, points: torch.Tensor) -> torch.Tensor:
        """Root sum of squares of the residual equations at each point (they enter the loss with
        one weight); evaluated on the bare network, outside any DistributedDataParallel
        wrapper, since no gradient of it is taken."""
        net = getattr(self.model, "module", self.model)
        res = self.physics.residuals(net, points, compiled=False)
        return torch.sqrt(sum(r.detach().square() for r in res.values()))

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Mean-square terms: ``residual/<eq>``, ``initial/<field>``, ``boundary/<bc>/<field>``."""
        b, m = self.batch, self.model
        terms = {}
        for k, r in self.physics.residuals(m, b.interior).items():
            terms[f"residual/{k}"] = r.square().mean()
        if b.initial is not None:
            for k, r in self.physics.initial_misfit(m, b.initial).items():
                terms[f"initial/{k}"] = r.square().mean()
        for k, r in self.physics.boundary_misfit(m, b).items():
            terms[f"boundary/{k}"] = r.square().mean()
        return terms

    def loss(self):
        terms = self.loss_terms()
        w = self.config.weights
        weight = {"residual": w.residual, "initial": w.initial, "boundary": w.boundary}
        total = sum(weight[k.split("/")[0]] * v for k, v in terms.items())
        return total, terms


@register_solver("pinn")
class PINN(NetworkSolver):
    """Vanilla PINN on pdekit's residual core."""

    Config = PINNConfig
    description = "vanilla physics-informed neural network on pdekit's residual core"
    paper = "Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378 (2019)"

    def supports(self, problem: Problem) -> str | None:
        dom = problem.domain()
        if not hasattr(dom, "sample_interior"):
            return f"{problem.name}'s domain cannot be sampled for collocation points"
        return None

    def build_model(self, problem: Problem, config: PINNConfig) -> torch.nn.Module:
        dom = problem.domain()
        net = build_mlp(config.network, dom.bounds, dom.periodic, len(problem.fields))
        exact = exact_forms(problem, config.exact_dirichlet)
        return net if exact is None else ExactDirichletNetwork(net, exact, problem.fields)

    def build_task(self, problem, config, model, rng, device) -> PINNTask:
        return PINNTask(problem, config, model, rng, device)
