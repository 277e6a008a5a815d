"""Your own training function in a study: the contract between it and lrjax, and its `TrainJob`.

`config.study.train_fn = "package.module:function"` replaces lrjax's engine in every run of the
study. lrjax calls the function once per run with a `TrainJob` and records what it returns as the
engine's runs are recorded (`summary.json`, `metrics.jsonl`, `config.json`), so arms, seeds,
budgets, tuning, claims, shards, executors, resume and the report work on it unchanged.

The contract:

* The function takes one argument, a `TrainJob`: the arm's name and overrides, the run's config
  (an `lrjax.config.experiment.Experiment`, frozen: the study's, with the arm's overrides,
  `seed`, `num_epochs` and, under `config.user`, fields of your own, read as `config.user.width`
  or `config.user.get("width", 32)`), the seed, the budget, the learning-rate schedule as an
  lrjax `Schedule` already resolved to steps (its durations in epochs turned into steps with
  `config.study.steps_per_epoch`) and scaled by the tuning point, the run's own `folder` for
  checkpoints, and `preempted()`.
* It returns a mapping of final metrics: numbers, at least `test_accuracy` and `test_loss` (and
  the tuning metric, `validation_accuracy` by default, in a tuned study); `train_loss` and any
  other numbers are kept too. Under `"curves"` it may return one mapping per epoch (`epoch` and
  any of `train_loss`, `test_loss`, `test_accuracy`, `validation_loss`, `validation_accuracy`),
  which the report's figures draw. A run that diverged returns `"diverged": step` instead of its
  metrics: the study records it as the engine records a diverged run (tuning never chooses it).
* Preemption: when SIGTERM or SIGINT arrives, `job.preempted()` turns True. The function saves
  its state in `job.folder` and calls `job.stop(step)`, which raises `Preempted` (the command exits
  with status 75); the same command later calls it again with the same folder, to resume.
* A failure (an exception, a metric missing or not a finite number, a return that is not a
  mapping) fails that run alone: it is recorded in the run's `failed.json` with a one-line reason
  naming the run and the function, the study goes on and its report lists it. Run the study again
  to retry it.

What lrjax cannot guarantee for code it does not control: arms are paired (the same
initialisation and data order for a seed) only as far as the function derives both from
`job.seed` alone, and a resumed run equals an uninterrupted one only as far as the function's own
checkpoints make it so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lrjax.runtime.preemption import Preempted, StopSignal
from lrjax.schedules.base import Schedule


class FunctionFailed(RuntimeError):
  """The training function failed on one run; the message names the run and the function.

  Args:
    what: the failure in one line, naming the function (kept as `self.what`).
    run: the run, such as "cosine seed 0" (kept as `self.run`; "" for none).

  Example:
    >>> from lrjax.function import FunctionFailed
    >>> str(FunctionFailed("mine:train raised ZeroDivisionError", run="broken seed 0"))
    'broken seed 0: mine:train raised ZeroDivisionError'
  """

  def __init__(self, what: str, run: str = ""):
    super().__init__(f"{run}: {what}" if run else what)
    self.what, self.run = what, run


@dataclasses.dataclass(frozen=True, eq=False)
class TrainJob:
  """One run of a study, as the user's training function receives it (see the module docstring).

  Attributes:
    arm: the arm's name.
    overrides: the arm's config overrides (and its tuning point's fields), as given.
    config: the run's `Experiment` (`seed`, `num_epochs`, `schedule`, `user`, ...).
    seed: the run's seed: derive the initialisation and the data order from it alone.
    budget: the run's budget in epochs, or None in a study without budgets.
    num_epochs: epochs to train.
    steps_per_epoch: optimizer updates per epoch (`config.study.steps_per_epoch`).
    total_steps: `steps_per_epoch * num_epochs`.
    schedule: the learning rate at each step (an lrjax `Schedule`; plug it into optax).
    lr_scale: the tuning point's factor of the schedule (1.0 outside tuning); already applied.
    folder: the run's own folder (write checkpoints here to be resumed).

  Example:
    A study builds the jobs; one built by hand tries a training function without a study
    (`_signal` is the run's preemption flag):

    >>> import jax
    >>> import numpy as np
    >>> import lrjax
    >>> from lrjax.function import TrainJob
    >>> from lrjax.runtime.preemption import StopSignal
    >>> def train(job):
    ...   lrs = jax.jit(job.schedule)(np.arange(job.total_steps))  # the rate of every update
    ...   return {"test_accuracy": 0.5, "test_loss": 1.0, "mean_lr": float(lrs.mean())}
    >>> job = TrainJob(
    ...   arm="linear", overrides={}, config=None, seed=0, budget=None, num_epochs=2,
    ...   steps_per_epoch=2, total_steps=4, schedule=lrjax.linear_decay(0.1, 4), lr_scale=1.0,
    ...   folder=".", _signal=StopSignal())
    >>> round(train(job)["mean_lr"], 4), job.preempted()
    (0.0625, False)
  """

  arm: str
  overrides: Mapping[str, Any]
  config: Any
  seed: int
  budget: int | None
  num_epochs: int
  steps_per_epoch: int
  total_steps: int
  schedule: Schedule
  lr_scale: float
  folder: str
  _signal: StopSignal = dataclasses.field(repr=False)

  def preempted(self) -> bool:
    """True once SIGTERM or SIGINT has arrived: save your state in `folder`, call `stop`."""
    return self._signal.signum is not None

  def stop(self, step: int) -> None:
    """Raises `Preempted` at `step` (after you saved your state): the study resumes you later.

    Args:
      step: the step the saved state has reached, for the message and the record.

    Raises:
      Preempted: always; the study's command exits with status 75.
    """
    raise Preempted(int(step), self._signal.signum or 15)
