"""The Attentive Neural Process (Kim et al., ICLR 2019), as the base model of ProbConserv.

Architecture and sizes follow Hansen et al. (ICML 2023), Sec. 4 and App. D (the
``deep_pdes/attentive_neural_process`` module of their code):

* an attention block is multi-head scaled dot-product attention (``heads`` heads of
  ``hidden / heads`` dims) with dropout on the weights, followed by ``Linear([query, attn])``,
  dropout, a residual connection to the query and a LayerNorm;
* the latent encoder embeds the context pairs ``(x, y)``, applies ``self_attention_blocks``
  self-attention blocks, averages over the set, and gives the mean and log-variance of
  q(z | set) (dimension ``latent``);
* the deterministic encoder embeds the context pairs, applies the self-attention blocks, then
  ``cross_attention_blocks`` blocks in which embedded target inputs attend to embedded context
  inputs (keys) and encoded pairs (values), giving one representation r per target;
* the decoder maps ``[r, z, embed(x)]`` through ``decoder_layers`` ReLU layers of width
  ``decoder_width`` to a mean mu and a scale sigma = softplus(.) + ``sigma_floor``.

Training minimises, per function,

    - sum_targets log N(y | mu, sigma)  +  KL( q(z | targets) || q(z | contexts) ),

with z drawn from q(z | targets) by reparameterisation. At prediction time z is drawn from
q(z | contexts); S draws give the mixture moments mean_s mu_s and
mean_s sigma_s^2 + Var_s mu_s (:func:`mixture_moments`).

Inputs are the problem's coordinates mapped affinely to [0, 1] by the domain bounds (the
``lo``/``hi`` buffers), so one architecture serves domains of any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pdekit.errors import ParameterError
from pdekit.solvers.config import check


@dataclass
class ANPConfig:
    """Sizes of the Attentive Neural Process (defaults: Hansen et al. 2023)."""

    #: width of every embedding and attention block
    hidden: int = 128
    #: attention heads (each of hidden / heads dims)
    heads: int = 4
    #: dimension of the global latent z
    latent: int = 128
    #: self-attention blocks in the latent and in the deterministic encoder
    self_attention_blocks: int = 2
    #: cross-attention blocks in the deterministic encoder
    cross_attention_blocks: int = 2
    #: width of the decoder's hidden layers
    decoder_width: int = 384
    #: number of decoder hidden layers (ReLU)
    decoder_layers: int = 3
    #: dropout on attention weights and attention outputs (off in eval mode)
    dropout: float = 0.1
    #: added to softplus for the predicted standard deviation
    sigma_floor: float = 1e-3

    def __post_init__(self):
        check(self, "hidden", self.hidden, low=1, high=4096, kind=int)
        check(self, "heads", self.heads, low=1, high=64, kind=int)
        if self.hidden % self.heads:
            raise ParameterError(
                f"ANPConfig.hidden ({self.hidden}) must be divisible by ANPConfig.heads "
                f"({self.heads})"
            )
        check(self, "latent", self.latent, low=1, high=4096, kind=int)
        check(self, "self_attention_blocks", self.self_attention_blocks, low=0, high=16, kind=int)
        check(self, "cross_attention_blocks", self.cross_attention_blocks, low=1, high=16, kind=int)
        check(self, "decoder_width", self.decoder_width, low=1, high=8192, kind=int)
        check(self, "decoder_layers", self.decoder_layers, low=1, high=16, kind=int)
        check(self, "dropout", self.dropout, low=0.0, high=0.9)
        check(self, "sigma_floor", self.sigma_floor, low=0.0, high=1.0)


class AttentionBlock(nn.Module):
    """Multi-head attention with a residual connection and LayerNorm (Kim et al. 2019)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(2 * hidden, hidden)
        self.attn_drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def _split(self, a: torch.Tensor) -> torch.Tensor:  # (..., n, h) -> (..., heads, n, d)
        return a.unflatten(-1, (self.heads, self.head_dim)).transpose(-2, -3)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
        q, k, v = self._split(self.q(query)), self._split(self.k(key)), self._split(self.v(value))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)
        attn = (self.attn_drop(weights) @ v).transpose(-2, -3).flatten(-2)
        out = self.out_drop(self.out(torch.cat([query, attn], dim=-1)))
        return self.norm(out + query)


class ANP(nn.Module):
    """Attentive Neural Process for scalar fields on (space, time) points.

    Parameters
    ----------
    config: sizes.
    lo, hi: lower and upper bounds of each input coordinate (inputs are mapped to [0, 1]).
    """

    def __init__(self, config: ANPConfig, lo, hi):
        super().__init__()
        c = config
        self.config = c
        dx = len(lo)
        self.register_buffer("lo", torch.as_tensor(lo, dtype=torch.float32))
        self.register_buffer("hi", torch.as_tensor(hi, dtype=torch.float32))
        h = c.hidden

        def blocks(n):
            return nn.ModuleList(AttentionBlock(h, c.heads, c.dropout) for _ in range(n))

        # latent path
        self.lat_embed = nn.Linear(dx + 1, h)
        self.lat_self = blocks(c.self_attention_blocks)
        self.lat_hidden = nn.Linear(h, h)
        self.lat_mu = nn.Linear(h, c.latent)
        self.lat_logvar = nn.Linear(h, c.latent)
        # deterministic path
        self.det_embed = nn.Linear(dx + 1, h)
        self.det_self = blocks(c.self_attention_blocks)
        self.det_query = nn.Linear(dx, h)
        self.det_key = nn.Linear(dx, h)
        self.det_cross = blocks(c.cross_attention_blocks)
        # decoder
        self.dec_x = nn.Linear(dx, h)
        layers: list[nn.Module] = []
        width_in = 2 * h + c.latent
        for _ in range(c.decoder_layers):
            layers += [nn.Linear(width_in, c.decoder_width), nn.ReLU()]
            width_in = c.decoder_width
        layers.append(nn.Linear(width_in, 2))
        self.decoder = nn.Sequential(*layers)

    # -- pieces --------------------------------------------------------------------------------
    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates mapped to [0, 1] by the domain bounds."""
        return (x - self.lo.to(x.dtype)) / (self.hi - self.lo).to(x.dtype)

    def latent(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | {(x, y)}): x (..., n, dx), y (..., n)."""
        s = self.lat_embed(torch.cat([self.scale(x), y[..., None]], dim=-1))
        for block in self.lat_self:
            s = block(s, s, s)
        s = torch.relu(self.lat_hidden(s.mean(dim=-2)))
        return self.lat_mu(s), self.lat_logvar(s)

    def context_encoding(self, cx: torch.Tensor, cy: torch.Tensor):
        """What the deterministic path needs from the contexts: (keys, values)."""
        v = self.det_embed(torch.cat([self.scale(cx), cy[..., None]], dim=-1))
        for block in self.det_self:
            v = block(v, v, v)
        return self.det_key(self.scale(cx)), v

    def representation(self, keys_values, tx: torch.Tensor) -> torch.Tensor:
        """Deterministic representation r of each target input: tx (..., m, dx) -> (..., m, h)."""
        keys, values = keys_values
        q = self.det_query(self.scale(tx))
        for block in self.det_cross:
            q = block(q, keys, values)
        return q

    def decode(self, r: torch.Tensor, z: torch.Tensor, tx: torch.Tensor):
        """mu and sigma at targets from r (..., m, h), z (..., latent) and tx (..., m, dx)."""
        zz = z[..., None, :].expand(*r.shape[:-1], z.shape[-1])
        out = self.decoder(torch.cat([r, zz, self.dec_x(self.scale(tx))], dim=-1))
        mu, raw = out.unbind(-1)
        return mu, F.softplus(raw) + self.config.sigma_floor

    # -- training ------------------------------------------------------------------------------
    def forward(self, cx, cy, tx, ty=None):
        """Batched pass: (B, n, dx), (B, n), (B, m, dx)[, (B, m)] -> mu, sigma, KL (B,).

        With target values ``ty`` (training) z is drawn from q(z | targets) and KL is that of
        q(z | targets) from q(z | contexts); without, z is drawn from q(z | contexts), KL = 0.
        """
        prior_mu, prior_lv = self.latent(cx, cy)
        if ty is not None:
            # detached inputs: each target's mean then depends on its own input only, so
            # input derivatives (SoftC residuals) are pointwise; parameter gradients are unchanged
            post_mu, post_lv = self.latent(tx.detach(), ty)
            kl = gaussian_kl(post_mu, post_lv, prior_mu, prior_lv)
        else:
            post_mu, post_lv = prior_mu, prior_lv
            kl = torch.zeros(prior_mu.shape[:-1], dtype=prior_mu.dtype, device=prior_mu.device)
        z = post_mu + torch.randn_like(post_mu) * torch.exp(0.5 * post_lv)
        r = self.representation(self.context_encoding(cx, cy), tx)
        mu, sigma = self.decode(r, z, tx)
        return mu, sigma, kl


def gaussian_kl(mu1, logvar1, mu0, logvar0) -> torch.Tensor:
    """KL( N(mu1, e^logvar1) || N(mu0, e^logvar0) ), diagonal Gaussians, summed on the last axis.

    KL = 1/2 sum [ logvar0 - logvar1 + (e^logvar1 + (mu1 - mu0)^2) / e^logvar0 - 1 ].
    """
    kl = logvar0 - logvar1 + (torch.exp(logvar1) + (mu1 - mu0) ** 2) / torch.exp(logvar0) - 1.0
    return 0.5 * kl.sum(dim=-1)


def anp_loss(mu, sigma, y, kl) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Batch mean of -sum log N(y | mu, sigma) + KL per function; also its two terms."""
    nll = -torch.distributions.Normal(mu, sigma).log_prob(y).sum(dim=-1).mean()
    kl = kl.mean()
    return nll + kl, {"nll": nll, "kl": kl}


@torch.no_grad()
def predict_samples(
    model: ANP,
    cx: torch.Tensor,
    cy: torch.Tensor,
    tx: torch.Tensor,
    eps: torch.Tensor,
    rows: int = 2**17,
    mc_dropout: bool = False,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mu_s and sigma_s at targets for the latent draws z_s = m + eps_s * s of q(z | contexts).

    Parameters
    ----------
    cx, cy: contexts of one function, (n, dx) and (n,).
    tx: targets (m, dx).
    eps: standard normal draws (S, latent), fixed by the caller so predictions are repeatable.
    rows: decoder rows (targets x S) per chunk, bounding memory.
    mc_dropout: keep dropout on (train mode), each draw s with its own masks in the whole
        pass (encoders, attention, decoder), as the paper's evaluation does (it never calls
        ``eval()``); the masks come from a torch generator seeded with ``seed`` (the global
        RNG state is left as it was), so predictions are repeatable.

    Returns
    -------
    mu, sigma: (S, m). The model is evaluated in eval mode (no dropout) unless ``mc_dropout``,
    and its mode is restored after.
    """
    was_training = model.training
    model.train(mc_dropout)
    try:
        if mc_dropout:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                pairs = [
                    _decode_all(model, cx, cy, tx, eps[s : s + 1], rows) for s in range(len(eps))
                ]
            return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
        return _decode_all(model, cx, cy, tx, eps, rows)
    finally:
        model.train(was_training)


def _decode_all(model: ANP, cx, cy, tx, eps, rows: int):
    """mu, sigma (S, m) for the latent draws eps (S, latent), in chunks of ``rows``."""
    m_z, lv_z = model.latent(cx, cy)
    z = m_z + eps.to(m_z.dtype) * torch.exp(0.5 * lv_z)
    kv = model.context_encoding(cx, cy)
    mus, sigmas = [], []
    chunk = max(1, rows // len(z))
    for i in range(0, len(tx), chunk):
        part = tx[i : i + chunk]
        r = model.representation(kv, part)
        mu, sigma = model.decode(r.expand(len(z), *r.shape), z, part.expand(len(z), *part.shape))
        mus.append(mu)
        sigmas.append(sigma)
    empty = torch.zeros(len(z), 0, dtype=cx.dtype)
    return (
        torch.cat(mus, dim=-1) if mus else empty,
        torch.cat(sigmas, dim=-1) if sigmas else empty,
    )


def mixture_moments(mu, var):
    """Mean and variance of an equal-weight mixture over the first axis of (mu_s, var_s).

    mean = mean_s mu_s;  variance = mean_s var_s + Var_s mu_s (population variance over s).
    Works for numpy arrays and torch tensors.
    """
    mean = mu.mean(0)
    return mean, var.mean(0) + ((mu - mean) ** 2).mean(0)
