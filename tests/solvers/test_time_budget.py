"""The Trainer's wall-clock budget (``TrainConfig.time_budget_s``).

Oracle: a task whose every loss evaluation sleeps a known time, so the number of steps that fit
in a budget is known up to the clock's jitter; the budget is a lower bound on the time spent and
at most one step (Adam) or one L-BFGS iteration (up to ``max_eval`` evaluations) beyond it.
"""

from __future__ import annotations

import time

import pytest
import torch

from pdekit.errors import ParameterError
from pdekit.solvers.training import TrainConfig, Trainer, TrainingTask

SLEEP = 0.01  # seconds per loss evaluation


class SleepyTask(TrainingTask):
    """Least squares for a linear model; each loss evaluation sleeps SLEEP seconds."""

    def __init__(self):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1)
        self.x = torch.randn(64, 3)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def next_batch(self, step):
        pass

    def loss(self):
        time.sleep(SLEEP)
        loss = (self.model(self.x) - self.y).square().mean()
        return loss, {"fit": loss}


def test_adam_stops_when_the_budget_is_spent():
    budget = 0.5
    trainer = Trainer(SleepyTask(), TrainConfig(steps=10**6, time_budget_s=budget), verbose=False)
    t0 = time.monotonic()
    trainer.run()
    wall = time.monotonic() - t0
    assert trainer.out_of_time
    # the budget is a lower bound; one step (SLEEP + a few ms of compute) may run past it
    assert budget <= trainer.elapsed_s <= budget + 10 * SLEEP
    assert wall >= budget
    # every step sleeps SLEEP, so no more than budget / SLEEP steps fit
    assert 5 <= trainer.step <= budget / SLEEP + 1


def test_lbfgs_gets_its_share_of_the_budget():
    budget, share = 0.6, 0.5
    cfg = TrainConfig(
        steps=10**6, lbfgs_steps=10**6, time_budget_s=budget, lbfgs_budget_share=share
    )
    trainer = Trainer(SleepyTask(), cfg, verbose=False)
    trainer.run()
    assert trainer.out_of_time and trainer.adam_cut is not None
    assert trainer.lbfgs is not None  # L-BFGS ran
    # Adam handed over once (1 - share) of the budget was spent: each step sleeps SLEEP, so at
    # most that many steps fit (upper bound exact); on a loaded machine steps take longer, so the
    # lower bound only says that Adam ran for a good part of its share
    adam_fit = (1 - share) * budget / SLEEP
    assert adam_fit / 3 <= trainer.adam_cut <= adam_fit + 1
    assert trainer.step > trainer.adam_cut
    # an L-BFGS iteration evaluates the loss up to max_eval = 25 times
    assert budget <= trainer.elapsed_s <= budget + 26 * SLEEP + 0.1


def test_without_budget_the_step_count_rules():
    trainer = Trainer(SleepyTask(), TrainConfig(steps=7, lbfgs_steps=2), verbose=False)
    trainer.run()
    assert trainer.step == 9 and not trainer.out_of_time and trainer.adam_cut is None


def test_a_resumed_run_continues_the_budget():
    """The time spent is part of the saved state: resuming with the same budget stops at once,
    and a larger budget adds only the difference."""
    cfg = TrainConfig(steps=10**6, time_budget_s=0.3)
    first = Trainer(SleepyTask(), cfg, verbose=False)
    first.run()
    state = first.state_dict()
    assert state["elapsed_s"] == first.elapsed_s >= 0.3

    again = Trainer(SleepyTask(), cfg, verbose=False)
    again.load_state_dict(state)
    again.run()
    assert again.step == first.step + 1  # the one step that finds the budget spent

    more = Trainer(SleepyTask(), TrainConfig(steps=10**6, time_budget_s=0.6), verbose=False)
    more.load_state_dict(state)
    t0 = time.monotonic()
    more.run()
    assert 0.6 - first.elapsed_s <= time.monotonic() - t0 <= 0.6 - first.elapsed_s + 10 * SLEEP
    assert more.elapsed_s >= 0.6


@pytest.mark.parametrize("field, value", [("time_budget_s", -1.0), ("lbfgs_budget_share", 1.5)])
def test_bad_budget_settings_are_refused(field, value):
    with pytest.raises(ParameterError, match=field):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("value", [0.0, -1.0, 11.0])
def test_the_learning_rate_range_is_stated_once(value):
    """lr is in (0, 10]; the message says so for every value outside it."""
    with pytest.raises(ParameterError, match=r"TrainConfig.lr must be in \(0, 10\]"):
        TrainConfig(lr=value)
