"""Episodic training of the ANP on a family of solutions, as a TrainingTask of the shared Trainer.

Each step draws ``family.batch`` fresh functions (parameter, contexts, targets) and minimises the
ANP loss (:func:`~pdekit.solvers.probconserv.anp.anp_loss`). For SoftC-ANP (Hansen et al. 2023,
Sec. 4: the "PINP" baseline of their ``softc.py``) the loss adds

    lambda * mean_targets R[mu](x, t)^2,

the problem's own PDE residual R evaluated on the ANP mean through the core's autograd engine,
each function with its own parameter value. Target means depend on their own input only (the
latent is drawn from a posterior computed on detached inputs), so autograd derivatives with
respect to the target points are pointwise derivatives of the mean field.

For the end-to-end ProbConserv (``model="physnp"``) the likelihood is taken after the
conservation update of each target time slice, with the learned sigma_G
(:func:`~pdekit.solvers.probconserv.physnp.physnp_loss`); the targets are a time-major tensor
grid (``family.target_t`` times x ``family.target_x`` sorted positions), so each slice is one
reshaped row.
"""

from __future__ import annotations

import numpy as np

from pdekit.core.fields import AutogradFields
from pdekit.problems.base import Problem
from pdekit.solvers.probconserv.anp import anp_loss
from pdekit.solvers.probconserv.family import FamilyBatch, axes, sample_batch
from pdekit.solvers.probconserv.physnp import physnp_loss
from pdekit.solvers.training import SampledTask


def residual_penalty(problem_members: list[Problem], tx_flat, mu_flat, n_per_function: int):
    """Mean square of every member's PDE residuals on the mean field (one shared autograd graph)."""
    first = problem_members[0]
    f = AutogradFields(tx_flat, {first.fields[0]: mu_flat}, first.coordinates, first.derivatives)
    total = 0.0
    count = 0
    for i, p in enumerate(problem_members):
        rows = slice(i * n_per_function, (i + 1) * n_per_function)
        for r in p.residual(f).values():
            total = total + r[rows].square().sum()
            count += n_per_function
    return total / count


class ANPTask(SampledTask):
    """TrainingTask: fresh family batches, ANP loss (+ SoftC residual penalty)."""

    def __init__(self, problem: Problem, config, model, rng: np.random.Generator, device):
        self.problem, self.config, self.model, self.rng = problem, config, model, rng
        self.device = device
        self.dtype = config.train.torch_dtype
        self.softc = config.model == "softc"
        self.physnp = config.model == "physnp"

    resample_every = 1  # a fresh batch of family members every step

    def draw_batch(self) -> FamilyBatch:
        return sample_batch(
            self.problem, self.config.family, self.rng, dtype=self.dtype, device=self.device
        )

    def loss(self):
        b = self.batch
        if self.physnp:
            mu, sigma, kl = self.model(b.cx, b.cy, b.tx, b.ty)
            fam = self.config.family
            shape = (len(b.ty), fam.target_t, fam.target_x)
            x = b.tx[..., axes(self.problem)[0]].reshape(shape)
            y = b.ty.reshape(shape)
            return physnp_loss(
                mu.reshape(shape), sigma.reshape(shape), y, x, kl, self.model.sigma_g2
            )
        if not self.softc:
            mu, sigma, kl = self.model(b.cx, b.cy, b.tx, b.ty)
            return anp_loss(mu, sigma, b.ty, kl)
        nfun, m, d = b.tx.shape
        tx_flat = b.tx.reshape(-1, d).detach().requires_grad_(True)
        mu, sigma, kl = self.model(b.cx, b.cy, tx_flat.view(nfun, m, d), b.ty)
        total, terms = anp_loss(mu, sigma, b.ty, kl)
        penalty = residual_penalty(b.members, tx_flat, mu.reshape(-1), m)
        terms["residual"] = penalty
        return total + self.config.softc_weight * penalty, terms
