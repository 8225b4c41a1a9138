"""The ``probconserv`` solver: an ANP trained on a family of solutions, conditioned on the
integral conservation law (Hansen, Maddix, Alizadeh, Gupta & Mahoney, ICML 2023).

Five models share the machinery (``config.model``):

* ``anp``: the plain Attentive Neural Process;
* ``softc``: SoftC-ANP, the ANP trained with the PDE residual of its mean as a penalty;
* ``hardc``: HardC-ANP, the ANP mean projected orthogonally onto the conservation constraint,
  variance unchanged;
* ``probconserv``: ProbConserv-ANP, the ANP's Gaussian conditioned on the constraint
  (sigma_G = 0 by default: exact conservation, uncertainty reshaped);
* ``physnp``: ProbConserv trained end to end, the likelihood taken after the conservation
  update with a learned sigma_G (:mod:`.physnp`, the paper code's ``PhysNP`` training path).

``anp``, ``hardc`` and ``probconserv`` use the same trained network (the constraint is applied
after training, as in the paper); ``softc`` and ``physnp`` train their own (``physnp`` may start
from a plain ANP: ``init``). Options of the conserving models: ``diff_prior`` (ProbConserv
"w/ diff": second differences as further rows before the conservation row, :mod:`.update`),
``postprocess`` (the nearest non-negative and/or monotone field of the same mass in the
predictive-covariance metric, :mod:`.postprocess`), and for every model ``mc_dropout``.

By default ``fit`` loads the small pretrained family model of the problem from the model store
(:mod:`pdekit.store`: the user's models first, then those shipped in ``pdekit/model_store/``;
the files record the command that trained them); ``retrain=True`` trains from scratch on the
family ``config.family`` (Adam, lr 1e-4, fresh functions every step).

Deviations from the paper's released code (github.com/amazon-science/probconserv), each where
that code departs from the method as the paper states it, or where a choice was needed:

* **Eval mode at prediction** (dropout off). Their ``analyze.py`` never calls ``eval()``, so
  its reported numbers come with attention dropout on: an implicit MC-dropout ensemble.
  ``mc_dropout=True`` does the same, seeded and repeatable; it is what calibrates the shipped
  ``probconserv_stefan_anp_mcdropout`` out of its range (README, ProbConserv section).
* **Samples and the reported covariance include the between-draw term**: the S conditioned
  Gaussians are mixed exactly (mean_s Sigma~_s + Cov_s(mu~_s)), so ``sample`` and
  :meth:`~.solution.ProbConservSolution.covariance` agree with ``u_std``; their code reports
  the between-draw variance in the standard deviation but samples shock positions from
  mean_s Sigma~_s alone.
* **sigma^2 on the baselines' diagonal**: the ANP, SoftC and HardC predictive covariance is
  diag(sigma^2); their shock sampler puts sigma itself on the diagonal (``_get_loc_and_cov``),
  which widens the baselines' sampled fronts for sigma < 1.
* The PhysNP loss is averaged over the batch (their code sums it), the post-processing imposes
  the mass exactly and in the full predictive metric (:mod:`.postprocess`), both labelled
  where they are implemented.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pdekit import store
from pdekit.checkpoints import Checkpoint, load_checkpoint
from pdekit.checkpoints.hdf5 import open_checkpoint_file
from pdekit.errors import CheckpointError, ParameterError
from pdekit.problems.base import Problem
from pdekit.solvers.base import NetworkSolver, RunOptions
from pdekit.solvers.config import check, from_dict
from pdekit.solvers.probconserv import postprocess
from pdekit.solvers.probconserv.anp import ANP, ANPConfig
from pdekit.solvers.probconserv.family import FamilyConfig, problem_family, registered_range
from pdekit.solvers.probconserv.mass import mass_source
from pdekit.solvers.probconserv.physnp import PhysNP
from pdekit.solvers.probconserv.solution import (
    ProbConservSolution,
    observations,
    training_kind,
)
from pdekit.solvers.probconserv.task import ANPTask
from pdekit.solvers.registry import register_solver
from pdekit.solvers.training import TrainConfig

MODELS = ("anp", "softc", "hardc", "probconserv", "physnp")
#: the models that condition on the conservation law (and so take diff_prior / postprocess)
CONSERVING = ("probconserv", "physnp")
#: where the shipped models are (the model store's shipped folder)
PRETRAINED_DIR = store.SHIPPED_DIR
#: extras of a pretrained checkpoint carried into the solutions built from it
PROVENANCE = ("training_command", "training_wall_s", "training_note")


@dataclass
class ANPTrainConfig(TrainConfig):
    """Optimisation of the ANP (paper: Adam, lr 1e-4, 500 epochs of 40 batches)."""

    steps: int = 20000
    lr: float = 1e-4
    lr_decay: float = 1.0
    log_every: int = 100


@dataclass
class ProbConservConfig:
    """Configuration of the ProbConserv solver (defaults: Hansen et al. 2023)."""

    #: anp, softc, hardc, probconserv or physnp
    model: str = "probconserv"
    anp: ANPConfig = field(default_factory=ANPConfig)
    family: FamilyConfig = field(default_factory=FamilyConfig)
    train: ANPTrainConfig = field(default_factory=ANPTrainConfig)
    #: SoftC-ANP: weight lambda of the mean-square PDE residual of the ANP mean
    softc_weight: float = 1.0
    #: latent draws z_s mixed at prediction (paper: 100)
    z_samples: int = 100
    #: standard deviation of the constraint noise (0: exact conservation, ProbConserv-ANP)
    sigma_g: float = 0.0
    #: physnp: initial constraint precision 1 / sigma_G^2 (paper code: 1e2, trained; their
    #: Stefan run: 1e5, fixed)
    physnp_precision: float = 1e2
    #: physnp: train the constraint precision (false: keep ``physnp_precision``)
    physnp_train_precision: bool = True
    #: physnp: predict with sigma_G = 0 (exact conservation; the paper's limiting_mode
    #: "physnp") instead of the learned sigma_G
    physnp_limit: bool = False
    #: ProbConserv "w/ diff" (probconserv, physnp): condition on the second differences
    #: u_{i-1} - 2 u_i + u_{i+1} = 0 (noisy) before the conservation row
    diff_prior: bool = False
    #: "w/ diff": correlation of neighbouring values in the difference variances (paper: 0.9)
    diff_alpha: float = 0.9
    #: replace each conserving slice's mean by its projection onto "nonneg", "monotone"
    #: (non-increasing in x) or "monotone_nonneg", same mass, predictive-covariance metric
    #: ("": none; probconserv, hardc, physnp)
    postprocess: str = ""
    #: keep dropout on at prediction, each latent draw with its own masks (the paper's
    #: analyze.py never calls eval(): an implicit MC-dropout ensemble); seeded, repeatable
    mc_dropout: bool = False
    #: floor on the updated variance (the paper code's min_var_sample)
    min_var: float = 1e-8
    #: seed of this solution's context draw and latent draws
    context_seed: int = 0
    #: train the family model from scratch instead of loading the shipped pretrained one
    retrain: bool = False
    #: pretrained checkpoint to load: a file, or the name of a stored model ("": the first
    #: one the store holds for the problem; e.g. "probconserv_stefan_anp_mcdropout", the
    #: Stefan ANP trained with dropout, calibrated out of its range with ``mc_dropout``)
    pretrained: str = ""
    #: with ``retrain``: start from the network of this checkpoint instead of a random one
    #: (fine-tuning; the optimiser and its schedule start afresh, the ANP sizes must match;
    #: not read when resuming or loading, whose network comes from their checkpoint)
    init: str = ""

    def __post_init__(self):
        check(self, "model", self.model, choices=MODELS)
        check(self, "softc_weight", self.softc_weight, low=0.0)
        check(self, "z_samples", self.z_samples, low=1, high=100000, kind=int)
        check(self, "sigma_g", self.sigma_g, low=0.0)
        check(self, "min_var", self.min_var, low=0.0)
        check(self, "physnp_precision", self.physnp_precision, low=1e-12, high=1e16)
        check(self, "diff_alpha", self.diff_alpha, low=-1.0, high=1.0)
        check(self, "postprocess", self.postprocess, choices=("",) + postprocess.MODES)
        for name in ("physnp_train_precision", "physnp_limit", "diff_prior", "mc_dropout"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(
                    f"ProbConservConfig.{name} must be true or false; got {getattr(self, name)!r}"
                )
        if self.diff_prior and self.model not in CONSERVING:
            raise ParameterError(
                f"ProbConservConfig.diff_prior conditions the ProbConserv update; model "
                f"{self.model!r} has none (use one of {list(CONSERVING)})"
            )
        if self.postprocess and self.model not in CONSERVING + ("hardc",):
            raise ParameterError(
                f"ProbConservConfig.postprocess keeps the conserved mass of a conserving "
                f"prediction; model {self.model!r} does not conserve (use probconserv, hardc "
                "or physnp)"
            )
        check(self, "context_seed", self.context_seed, low=0, kind=int)
        if not isinstance(self.retrain, bool):
            raise ParameterError(
                f"ProbConservConfig.retrain must be true or false; got {self.retrain!r}"
            )
        if self.init and not self.retrain:
            raise ParameterError(
                "ProbConservConfig.init (a checkpoint to fine-tune) needs retrain=True"
            )


def shipped_checkpoints(problem: Problem, directory: Path | None = None) -> list[Path]:
    """ProbConserv checkpoints for ``problem`` in ``directory``, else in the model store (the
    user's models, then the shipped ones in ``PRETRAINED_DIR``); damaged or unsealed files are
    skipped with a one-line warning, never parsed."""
    places = [directory] if directory is not None else ["user", PRETRAINED_DIR]
    return [m.path for m in store.list("probconserv", problem=problem.name, places=places)]


def _pretrained_path(name: str) -> Path:
    """``ProbConservConfig.pretrained``: a checkpoint file, or the file name (``.h5`` optional)
    of a model in the store (the user's models first, then the shipped ones)."""
    path = Path(name)
    if path.exists() or len(path.parts) > 1:
        return path
    for directory in (store.user_dir(), PRETRAINED_DIR):
        for candidate in (directory / name, directory / f"{name}.h5"):
            if candidate.exists():
                return candidate
    return path  # reported as missing by the checkpoint check


def find_checkpoint(problem: Problem, kind: str, directory: Path | None = None) -> Path | None:
    """The first checkpoint for ``problem`` in ``directory`` holding a ``kind`` network
    (``"anp"``, ``"softc"`` or ``"physnp"``), or None."""
    for path in shipped_checkpoints(problem, directory):
        with open_checkpoint_file(path) as f:
            model = json.loads(f.attrs["solver_config"]).get("model", "probconserv")
        if training_kind(model) == kind:
            return path
    return None


@register_solver("probconserv")
class ProbConserv(NetworkSolver):
    """ProbConserv-ANP and its baselines (ANP, SoftC-ANP, HardC-ANP) for 1D conservation laws."""

    Config = ProbConservConfig
    description = "Attentive Neural Process conditioned on the integral conservation law"
    paper = "Hansen, Maddix, Alizadeh, Gupta & Mahoney, ICML 2023"

    def supports(self, problem: Problem) -> str | None:
        coords = problem.coordinates
        if "t" not in coords or len(coords) != 2:
            return "it needs one spatial coordinate and time (a 1D conservation law)"
        if len(problem.fields) != 1:
            return "it models one scalar field"
        try:
            problem.reference()
        except NotImplementedError:
            return "the training family needs a reference solution"
        try:
            mass_source(problem)
        except ValueError as exc:
            return f"no conserved mass b(t): {exc}"
        return None

    # -- network training (NetworkSolver hooks) ------------------------------------------------
    def build_model(self, problem: Problem, config: ProbConservConfig) -> ANP:
        b = problem.domain().bounds
        if training_kind(config.model) == "physnp":
            model = PhysNP(
                config.anp, b[0], b[1], config.physnp_precision, config.physnp_train_precision
            )
        else:
            model = ANP(config.anp, b[0], b[1])
        if config.init:
            state = dict(self._checked(Path(config.init), problem, config).model)
            if isinstance(model, PhysNP) and "log_constraint_precision" not in state:
                # a plain ANP warm-starts PhysNP: sigma_G starts at physnp_precision
                state["log_constraint_precision"] = model.state_dict()["log_constraint_precision"]
            model.load_state_dict(state)
        return model

    def build_task(self, problem, config, model, rng, device) -> ANPTask:
        return ANPTask(problem, config, model, rng, device)

    def fit(self, problem: Problem, config: ProbConservConfig, run: RunOptions):
        if run.resume is not None:  # the network comes from the resumed checkpoint
            return super().fit(problem, self._with_family(problem, self._no_init(config)), run)
        if config.retrain:
            return super().fit(problem, self._with_family(problem, config), run)
        path = (
            _pretrained_path(config.pretrained)
            if config.pretrained
            else self._shipped(problem, config)
        )
        ckpt = self._checked(path, problem, config)
        stored = from_dict(ProbConservConfig, ckpt.solver_config)
        cfg = dataclasses.replace(config, anp=stored.anp, family=stored.family, train=stored.train)
        model = self.build_model(problem, cfg)
        model.load_state_dict(ckpt.model)
        extras = {k: ckpt.extras[k] for k in PROVENANCE if k in ckpt.extras}
        extras["pretrained"] = str(path)
        run.stats["wall_s"] = 0.0
        return self._make_solution(
            problem,
            cfg,
            model,
            history=ckpt.extras.get("history", {}),
            step=ckpt.step,
            extras=extras,
        )

    def _checked(self, path: Path, problem: Problem, config: ProbConservConfig) -> Checkpoint:
        """The checkpoint at ``path``, verified to hold a network ``config`` can use for
        ``problem`` (its solver, problem and training kind; for ``init``, also its ANP sizes)."""
        ckpt = load_checkpoint(path, with_trainer=False)
        if ckpt.problem != problem.name or ckpt.solver != self.name:
            raise CheckpointError(
                f"{path} is a {ckpt.solver!r} checkpoint of {ckpt.problem!r}; "
                f"need a probconserv checkpoint of {problem.name!r}"
            )
        stored = from_dict(ProbConservConfig, ckpt.solver_config)
        kinds = (training_kind(stored.model), training_kind(config.model))
        warm_start = bool(config.init) and kinds == ("anp", "physnp")
        if kinds[0] != kinds[1] and not warm_start:
            raise CheckpointError(
                f"{path} holds a {training_kind(stored.model)!r} network; model "
                f"{config.model!r} needs a {training_kind(config.model)!r} one"
            )
        # dropout has no parameters: a network may be fine-tuned with another rate
        if (
            config.init
            and dataclasses.replace(stored.anp, dropout=config.anp.dropout) != config.anp
        ):
            raise ParameterError(
                f"ProbConservConfig.init: {path} holds an ANP of sizes {stored.anp}; the "
                f"configured anp is {config.anp} (set anp to the checkpoint's sizes)"
            )
        return ckpt

    def _shipped(self, problem: Problem, config: ProbConservConfig) -> Path:
        kind = training_kind(config.model)
        path = find_checkpoint(problem, kind)
        if path is None:
            raise CheckpointError(
                f"no pretrained {kind!r} ProbConserv checkpoint is shipped for {problem.name} in "
                f"{PRETRAINED_DIR}; set retrain=True (with family.param/low/high) to train one, "
                "or pretrained=<path>"
            )
        return path

    def _with_family(self, problem: Problem, config: ProbConservConfig) -> ProbConservConfig:
        """Fill an unset family (param "") from the registered family ``family.name``, else the
        checkpoint being fine-tuned (``init``), else the shipped checkpoint of the problem, else
        the problem's registered ProbConserv family."""
        if config.family.param:
            return config
        if config.family.name:
            param, low, high = registered_range(config.family.name, problem)
            family = dataclasses.replace(config.family, param=param, low=low, high=high)
            return dataclasses.replace(config, family=family)
        stored = None
        if config.init:
            stored = load_checkpoint(config.init, with_trainer=False).solver_config
        elif shipped := shipped_checkpoints(problem):
            with open_checkpoint_file(shipped[0]) as f:
                stored = json.loads(f.attrs["solver_config"])
        if stored is None and (name := problem_family(problem)) is not None:
            family = dataclasses.replace(config.family, name=name)
            return self._with_family(problem, dataclasses.replace(config, family=family))
        if stored is None:
            names = [f.name for f in dataclasses.fields(problem)]
            raise ParameterError(
                f"ProbConservConfig.family.param must name the parameter of {problem.name} "
                f"varied across the training family (one of {names}), with family.low < "
                "family.high"
            )
        fam = stored["family"]
        family = dataclasses.replace(
            config.family, param=fam["param"], low=fam["low"], high=fam["high"]
        )
        return dataclasses.replace(config, family=family)

    # -- solutions -----------------------------------------------------------------------------
    def _make_solution(
        self,
        problem,
        config,
        model,
        *,
        history,
        step,
        extras,
        trainer_state=None,
        contexts=None,
        eps=None,
    ):
        if contexts is None or eps is None:
            contexts, eps = observations(problem, config)
        return ProbConservSolution(
            problem,
            self.name,
            config,
            model,
            contexts,
            eps,
            trainer_state=trainer_state,
            history=history,
            extras=extras,
            step=step,
        )

    def _solution(self, problem, config, model, task, trainer, state=None):
        return self._make_solution(
            problem,
            config,
            model,
            history=trainer.history,
            step=trainer.step,
            extras={},
            trainer_state=state if state is not None else trainer.state_dict(),
        )

    @staticmethod
    def _no_init(config: ProbConservConfig) -> ProbConservConfig:
        """``config`` without its fine-tuning start (for a network read from a checkpoint:
        the file ``init`` names need not exist where the checkpoint is read)."""
        return dataclasses.replace(config, init="")

    def restore(self, problem: Problem, config: ProbConservConfig, ckpt: Checkpoint):
        model = self._model(problem, self._no_init(config), torch.device("cpu"))
        model.load_state_dict(ckpt.model)
        extras = dict(ckpt.extras)
        history = extras.pop("history", {})
        contexts = eps = None
        if "contexts_points" in extras:
            contexts = (extras.pop("contexts_points"), extras.pop("contexts_values"))
            eps = extras.pop("latent_eps")
        return self._make_solution(
            problem,
            config,
            model,
            history=history,
            step=ckpt.step,
            extras=extras,
            trainer_state=ckpt.trainer,
            contexts=contexts,
            eps=eps,
        )
