"""Causal weights and the epsilon-annealing schedule of the causal PINN.

Wang, Sankaran & Perdikaris, "Respecting causality is all you need for training physics-informed
neural networks", arXiv:2203.07404 (2022), eqs. (3.1)-(3.5) and Algorithm 1.  With the temporal
losses L_1..L_N of N time chunks in increasing time (and optionally an initial-condition term
L_0 = lambda_ic L_ic standing for t_0 = 0, eq. 3.4), the weight of chunk i is

    w_i = exp(-eps * (L_0 + sum_{k < i} L_k)),        w_1 = exp(-eps L_0)  (= 1 without L_0)

an *exclusive* cumulative sum (the inclusive sum of some third-party code gives w_1 < 1 and is
not the paper's method), computed without gradient.  Training runs through a list of eps values;
a stage ends when ``min_i w_i > delta`` or when its budget is spent (Alg. 1).

Deviations, labelled (reasons and settings in :mod:`pdekit.solvers.causal_pinn`): L_0 in the
exponent is eq. 3.4 as the paper reads; of the authors' code, the KS and NS scripts put it there
too, while the Allen-Cahn notebook and jaxpi leave it out (``initial=0`` here).  Weights below
:data:`WEIGHT_FLOOR` are returned as exactly 0, which the paper does not do.  Stage budgets are
shared out of one total budget unless ``stage_steps`` gives each stage its own S, as Alg. 1.

Everything here is a pure function or a small state machine without torch modules, so it is
tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: weights below this are set to exactly zero: exp(-eps S) underflows to subnormal floats, which
#: slow CPU arithmetic several-fold, and contribute nothing a float32 update could resolve
WEIGHT_FLOOR = 1e-30


def exclusive_cumsum(losses: torch.Tensor) -> torch.Tensor:
    """``out[i] = sum_{k < i} losses[k]`` along the last axis (so ``out[0] = 0``).

    Summed directly rather than as ``cumsum - losses``, which cancels catastrophically in
    float32 when a chunk's loss dwarfs the sum before it."""
    zero = torch.zeros_like(losses[..., :1])
    return torch.cat([zero, torch.cumsum(losses[..., :-1], dim=-1)], dim=-1)


def causal_weights(
    chunk_losses: torch.Tensor,
    eps: float,
    initial: torch.Tensor | float = 0.0,
    floor: float = WEIGHT_FLOOR,
) -> torch.Tensor:
    """Causal weights of time-ordered chunk losses (paper eq. 3.5, with eq. 3.4's L_0).

    Parameters
    ----------
    chunk_losses:
        (N,) temporal losses L_1..L_N of the time chunks, in increasing time.
    eps:
        causality parameter epsilon > 0.
    initial:
        the t_0 term L_0 = lambda_ic L_ic heading the chain (0: no initial term in the chain).
    floor:
        weights below ``floor`` are returned as exactly 0 (no subnormal floats).

    Returns
    -------
    (N,) weights in [0, 1], non-increasing, detached from the graph (no gradient flows
    through them: paper §3, remark 2).
    """
    with torch.no_grad():
        losses = chunk_losses.detach()
        offset = initial.detach() if isinstance(initial, torch.Tensor) else initial
        w = torch.exp(-eps * (exclusive_cumsum(losses) + offset))
        return torch.where(w < floor, torch.zeros_like(w), w)


def chunk_means(values: torch.Tensor, chunk: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """Mean of ``values`` (n,) over the points of each chunk; chunks without points give 0.

    ``chunk`` (n,) holds each point's chunk index in [0, n_chunks).
    """
    sums = values.new_zeros(n_chunks).index_add(0, chunk, values)
    counts = torch.bincount(chunk, minlength=n_chunks).to(values.dtype)
    return sums / counts.clamp(min=1)


def grad_norm_weights(
    terms: dict[str, torch.Tensor], params: Sequence[torch.Tensor]
) -> dict[str, float]:
    """Loss weights that equalise the gradient norms of the terms (Wang et al. 2023, "An
    expert's guide to training physics-informed neural networks", eq. 5.1)::

        lambda_k = (sum_j ||grad L_j||) / ||grad L_k||

    so every weighted term has the same gradient norm.  A term whose gradient is zero keeps
    weight 1.
    """
    norms = {}
    for key, term in terms.items():
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        sq = sum(float(g.detach().square().sum()) for g in grads if g is not None)
        norms[key] = math.sqrt(sq)
    total = sum(norms.values())
    return {k: (total / n if n > 0 else 1.0) for k, n in norms.items()}


class AnnealingSchedule:
    """Which epsilon, stage and time window training is in, and when to move on (Alg. 1).

    Stage s of window k trains with ``eps[s]``.  A stage ends when the minimum causal weight of a
    step exceeds ``delta`` (checked every ``check_every`` steps of the stage) or when its budget
    is spent; the last stage of a window ends by the criterion only when ``early_stop``.  When a
    window's last stage ends, the next window starts at the first epsilon; after the last
    window, training is finished.

    Budgets: with ``stage_steps > 0`` each stage has at most that many steps (the paper's S).
    Otherwise the budget ``total`` (on the clock passed to :meth:`update`: steps or seconds) is
    shared out as training goes: a window gets an equal share of what is left for the windows
    not yet trained, a stage an equal share of what is left of its window, so time a stage
    saves by meeting the criterion goes to the later stages and windows.
    """

    def __init__(
        self,
        eps: Sequence[float],
        delta: float,
        *,
        windows: int = 1,
        total: float,
        stage_steps: int = 0,
        early_stop: bool = True,
        check_every: int = 1,
    ):
        self.eps = tuple(float(e) for e in eps)
        self.delta = float(delta)
        self.windows = int(windows)
        self.total = float(total)
        self.stage_steps = int(stage_steps)
        self.early_stop = bool(early_stop)
        self.check_every = int(check_every)
        self.window = 0
        self.stage = 0
        self.stage_start_step = 0
        self.window_end = 0.0
        self.stage_end = 0.0
        self.finished = False
        #: the clock of the last update, and whether training finished by spending the budget
        #: (not by the stopping criterion): a resumed run with a larger budget goes on from there
        self.clock = 0.0
        self.budget_spent = False
        self._plan_window(0.0)

    @property
    def epsilon(self) -> float:
        return self.eps[self.stage]

    def _plan_window(self, clock: float) -> None:
        self.window_end = clock + (self.total - clock) / (self.windows - self.window)
        self._plan_stage(clock)

    def _plan_stage(self, clock: float) -> None:
        self.stage_end = clock + (self.window_end - clock) / (len(self.eps) - self.stage)

    def update(self, step: int, clock: float, min_weight: float) -> str:
        """Advance after training step ``step`` (global count) whose weights had ``min_weight``.

        ``clock`` is the budget spent so far (steps or seconds, as ``total``).  Returns
        ``"stage"`` (next epsilon), ``"window"`` (next time window, first epsilon),
        ``"finished"`` or ``""`` (nothing changed).
        """
        if self.finished:
            return "finished"
        self.clock = float(clock)
        in_stage = step - self.stage_start_step
        last_stage = self.stage == len(self.eps) - 1
        met = in_stage % self.check_every == 0 and min_weight > self.delta
        if last_stage and not self.early_stop:
            met = False
        if self.stage_steps > 0:
            spent = in_stage >= self.stage_steps
        else:
            spent = clock >= self.stage_end
        if clock >= self.total:  # the whole budget is gone, whatever the plan said
            self.finished = self.budget_spent = True
            return "finished"
        if not (met or spent):
            return ""
        self.stage_start_step = step
        if not last_stage:
            self.stage += 1
            self._plan_stage(clock)
            return "stage"
        if self.window < self.windows - 1:
            self.window += 1
            self.stage = 0
            self._plan_window(clock)
            return "window"
        self.finished = True
        self.budget_spent = not met
        return "finished"

    def state_dict(self) -> dict:
        return {
            "window": self.window,
            "stage": self.stage,
            "stage_start_step": self.stage_start_step,
            "window_end": self.window_end,
            "stage_end": self.stage_end,
            "finished": self.finished,
            "total": self.total,
            "clock": self.clock,
            "budget_spent": self.budget_spent,
        }

    def load_state_dict(self, state: dict) -> None:
        self.window = int(state["window"])
        self.stage = int(state["stage"])
        self.stage_start_step = int(state["stage_start_step"])
        self.window_end = float(state["window_end"])
        self.stage_end = float(state["stage_end"])
        self.finished = bool(state["finished"])
        if "total" not in state:  # written before budgets were kept: the plan stands
            return
        self.clock = float(state["clock"])
        self.budget_spent = bool(state["budget_spent"])
        if float(state["total"]) != self.total:
            self._rebudget()

    def _rebudget(self) -> None:
        """Share a changed budget (a resumed run given more or fewer steps or seconds) out
        again from the clock of the last step, as :meth:`_plan_window` would have: the current
        window gets its share of what is left, its current stage a share of that. A run that
        finished by spending its old budget goes on; one stopped by the criterion stays
        finished."""
        if self.finished and not (self.budget_spent and self.clock < self.total):
            return
        self.finished = self.budget_spent = False
        self._plan_window(self.clock)
