"""ProbConserv trained end to end: the ANP's likelihood taken after the conservation update.

Hansen et al. (ICML 2023), Sec. 3 and their ``PhysNP`` (``attentive_neural_process/
probconserv.py``: ``forward`` and ``_constrained_log_prob``). At each target time t the ANP
gives u ~ N(mu, diag(sigma^2)) at the sorted target positions; the trapezoid weights g over
those positions and the noisy constraint g^T u = b + N(0, sigma_G^2) condition it to
N(mu~, Sigma~) (:mod:`.update`). Training minimises, per function,

    - sum_t log N(y_t | mu~_t, Sigma~_t)  +  KL( q(z | targets) || q(z | contexts) ),

which by Bayes' rule is, per time slice,

    - [ sum_x log N(y | mu, sigma) + log N(b | g^T y, sigma_G)
        - log N(b | g^T mu, sqrt(g^T diag(sigma^2) g + sigma_G^2)) ],

the form the reference code evaluates (O(N) per slice, no matrix). As there, b is the
trapezoid mass of the training targets on their own nodes, b = g^T y (the targets' x's do not
span the domain, so the analytic b(t) over the whole domain is not the mass they carry); then
log N(b | g^T y, sigma_G) = -log(sqrt(2 pi) sigma_G).

sigma_G is a parameter: the constraint precision 1 / sigma_G^2 is stored as its logarithm
(``log_constraint_precision``), initial value 1e2 and trained by default (the reference's
``constraint_precision_train=1e2``, ``train_precision=True``; their Stefan run fixes it at 1e5).
Note, as in the reference: the loss above decreases without bound as sigma_G -> 0 (d loss /
d sigma_G^2 > 0 everywhere, because b is computed from the targets themselves), so a trained
sigma_G only drifts down at the optimiser's pace; its value after training reflects the step
budget (Adam, lr x steps in log-precision), not a fit. At prediction the update uses this
learned sigma_G with the problem's b(t), or sigma_G = 0 with ``physnp_limit`` (the paper's
``limiting_mode="physnp"``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pdekit.solvers.probconserv.anp import ANP, ANPConfig

LOG_2PI = math.log(2 * math.pi)


class PhysNP(ANP):
    """An ANP with a constraint precision 1 / sigma_G^2 (a parameter, or a fixed buffer)."""

    def __init__(self, config: ANPConfig, lo, hi, precision: float = 1e2, train: bool = True):
        super().__init__(config, lo, hi)
        log_prec = torch.tensor(math.log(precision), dtype=torch.float32)
        if train:
            self.log_constraint_precision = nn.Parameter(log_prec)
        else:
            self.register_buffer("log_constraint_precision", log_prec)

    @property
    def sigma_g2(self) -> torch.Tensor:
        """sigma_G^2 = 1 / precision."""
        return torch.exp(-self.log_constraint_precision)


def trapezoid_weights_torch(x: torch.Tensor) -> torch.Tensor:
    """Trapezoid weights over sorted nodes on the last axis (the reference's
    ``_get_riemman_delta``, ``riemann_type="trapezoid"``): (dx_{i-1} + dx_i) / 2, half gaps at
    the ends."""
    gaps = torch.diff(x, dim=-1)
    if torch.any(gaps < 0):
        raise ValueError("trapezoid weights need nodes sorted along the last axis")
    zero = torch.zeros_like(x[..., :1])
    return 0.5 * (torch.cat([gaps, zero], dim=-1) + torch.cat([zero, gaps], dim=-1))


def constrained_log_prob(y, mu, sigma, x, sigma_g2) -> torch.Tensor:
    """log N(y | mu~, Sigma~) of each function, summed over its time slices.

    y, mu, sigma, x: (..., nt, nx) values, ANP means and scales, and the sorted positions of
    each slice; sigma_g2: sigma_G^2 (a scalar tensor, > 0). Returns shape (...).
    """
    g = trapezoid_weights_torch(x)
    prior = torch.distributions.Normal(mu, sigma).log_prob(y).sum(dim=-1)
    mass = (g * y).sum(dim=-1)
    constraint = -0.5 * (LOG_2PI + torch.log(sigma_g2))  # log N(g^T y | g^T y, sigma_G)
    var_mass = (g**2 * sigma**2).sum(dim=-1) + sigma_g2
    normaliser = -0.5 * (LOG_2PI + torch.log(var_mass) + (mass - (g * mu).sum(-1)) ** 2 / var_mass)
    return (prior + constraint - normaliser).sum(dim=-1)


def physnp_loss(mu, sigma, y, x, kl, sigma_g2):
    """Batch mean of -log N(y | mu~, Sigma~) + KL per function (shapes (B, nt, nx), KL (B,))."""
    nll = -constrained_log_prob(y, mu, sigma, x, sigma_g2).mean()
    kl = kl.mean()
    return nll + kl, {"nll": nll, "kl": kl, "sigma_g": torch.sqrt(sigma_g2).detach()}
