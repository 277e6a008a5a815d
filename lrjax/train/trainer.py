"""The engine: one `Trainer` trains K >= 1 members that share their data order.

A member is a built run (`lrjax.train.build.Run`) and the workdir its files go to. The members
of one trainer share their model, data, batch size and seed (so their initial weights and
batches are the same) and differ only in their per-member leaves, today the schedule. K = 1 is a
plain training run; for K > 1 the members train as one vmapped program (their states stacked,
one batch transfer, K updates a step) or one after another (`lrjax.train.strategy` chooses).

The loop itself only steps, sums each member's loss and accuracy, evaluates at each epoch's end
and keeps the typed `LoopState`; everything else is a hook called at step and epoch boundaries
(`lrjax.train.hooks`): claims, preemption, NaN stops, checkpoints and resuming, a fork's start,
the run's files and its progress line, each written once. It syncs with the device only at a
boundary some hook or `log_every_steps` asks for.

`lrjax.train.train_and_evaluate(config, workdir)` is one run with the standard hooks: what
`lrjax train` and the Python API call.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.train import build


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or infinite; the last good checkpoint is kept.

  Args:
    message: what happened, where, and what to do.
    step: the update whose loss was not finite (kept as `self.step`; -1 if unknown).
    lr: that update's learning rate (kept as `self.lr`; nan if unknown).
  """

  def __init__(self, message: str, step: int = -1, lr: float = math.nan):
    super().__init__(message)
    self.step, self.lr = step, lr


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a `Trainer`: what to train and where its files go.

  Attributes:
    run: the built run (`lrjax.train.build.build(config)`): model, data, schedule, steps.
    workdir: the run's folder (its config, metrics, summary and, for one member, checkpoints).
  """

  run: build.Run
  workdir: str


@dataclasses.dataclass
class Sums:
  """Each member's loss and accuracy summed over the current epoch's steps so far."""

  loss: list[float]
  correct: list[float]
  seconds: float = 0.0

  @classmethod
  def zero(cls, k: int) -> Sums:
    return cls([0.0] * k, [0.0] * k)

  def to_dict(self) -> dict[str, Any]:  # copies: a checkpoint is written after later steps
    return {"loss_sum": list(self.loss), "correct_sum": list(self.correct), "seconds": self.seconds}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> Sums:
    return cls(list(d["loss_sum"]), list(d["correct_sum"]), float(d["seconds"]))


@dataclasses.dataclass(frozen=True)
class Stop:
  """Why the loop stops early: a hook's decision. `save`: checkpoint where it stopped; `error`:
  raised once the hooks have closed."""

  reason: str
  save: bool = False
  error: Exception | None = None


@dataclasses.dataclass
class LoopState:
  """Where the loop stands; hooks read it and may set `stop`."""

  train_state: Any  # stacked on a leading axis for a vmapped population
  step: int  # updates done
  sums: Sums
  history: list[list[dict]]  # each member's epoch records
  diverged: dict[int, dict] = dataclasses.field(default_factory=dict)  # member -> where
  fetched: list[tuple[int, dict]] = dataclasses.field(default_factory=list)  # at the last sync
  predictions: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)  # this epoch's
  summaries: list[dict] = dataclasses.field(default_factory=list)  # when the run is done
  stop: Stop | None = None
  seconds: float = 0.0  # since this epoch (or this process's part of it) began


class Hook:
  """Called by `Trainer.fit` at its boundaries; every method may read and change the loop."""

  def start(self, trainer: Trainer, loop: LoopState) -> None:
    """Before the first step (a resume restores the loop here)."""

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    """Whether the loop must sync with the device after update `step` (1-based)."""
    return False

  def after_sync(self, trainer: Trainer, loop: LoopState) -> None:
    """After a sync inside an epoch: `loop.fetched` holds the steps' metrics since the last."""

  def after_epoch(self, trainer: Trainer, loop: LoopState) -> None:
    """After an epoch's evaluation: each live member's record is `loop.history[i][-1]`."""

  def end(self, trainer: Trainer, loop: LoopState) -> None:
    """After the last epoch (not after a stop that raises)."""

  def close(self, trainer: Trainer, loop: LoopState | None) -> None:
    """Always, last: release what `start` took."""


class Trainer:
  """Trains `members` together (see the module docstring); `fit()` returns the final loop.

  Args:
    members: K >= 1 members sharing model, data, batch size and seed.
    group_dir: the folder of the group's checkpoints (a member's workdir for K = 1).
    vmapped: train K > 1 members as one vmapped program (else one after another is not this
      class's job: give each member a trainer of its own).
    hooks: called in order at each boundary (`lrjax.train.hooks.standard`).
    evaluate: evaluate each live member on the test set at each epoch's end.
    max_steps: stop after this many updates (the range test), else after `num_epochs`.

  Raises:
    ValueError: for no members, several members without `vmapped`, or members that differ in
      model, data, batch size or seed.
  """

  def __init__(
    self,
    members: Sequence[Member],
    group_dir: str,
    *,
    vmapped: bool = False,
    hooks: Sequence[Hook] = (),
    evaluate: bool = True,
    max_steps: int | None = None,
  ):
    if not members:
      raise ValueError("members must hold at least one member, got none")
    if len(members) > 1 and not vmapped:
      raise ValueError(f"{len(members)} members train together only vmapped (vmapped=True)")
    r0 = members[0].run
    for m in members[1:]:
      r = m.run
      if (r.steps_per_epoch, r.config.seed, r.model) != (
        r0.steps_per_epoch,
        r0.config.seed,
        r0.model,
      ):
        raise ValueError("a population's runs must share their model, data, batch size and seed")
    self.members, self.group_dir, self.vmapped = list(members), group_dir, vmapped
    self.run, self.hooks, self.evaluate, self.max_steps = r0, list(hooks), evaluate, max_steps
    self.schedules = tuple(m.run.schedule for m in members)
    self.indices = jnp.arange(len(members), dtype=jnp.int32)

  @property
  def k(self) -> int:
    """The number of members K."""
    return len(self.members)

  def init_state(self) -> Any:
    """The members' initial train state: one for K = 1, stacked K times when vmapped."""
    state = self.run.init_state()  # the members share their seed: initialise once
    return jax.tree.map(lambda x: jnp.stack([x] * self.k), state) if self.vmapped else state

  def member_state(self, state: Any, i: int) -> Any:
    """Member `i`'s part of a train state (the state itself unless vmapped).

    Args:
      state: the trainer's train state (`init_state` or a later one).
      i: the member's index, in [0, K).
    """
    return jax.tree.map(lambda x: x[i], state) if self.vmapped else state

  def train_step(self, state: Any, batch: dict) -> tuple[Any, dict]:
    """One update of every member on `batch`: the jitted step, vmapped for a population.

    Args:
      state: the train state before the update.
      batch: the batch of this step (`run.train_batch`), the same for every member.

    Returns:
      (the new state, the step's metrics `{"loss", "accuracy", "lr"}` on the device, with a
      leading axis of K when vmapped).
    """
    if self.vmapped:
      return self.run.steps.train_members(state, batch, self.schedules, self.indices)
    return self.run.steps.train(state, batch, self.run.schedule)

  def fit(self) -> LoopState:
    """Trains to the end (or until a hook stops the loop), calling the hooks at each boundary.

    Returns:
      The final `LoopState`, with the train state, the step, each member's epoch records and, at
      the end of a run, its summaries.

    Raises:
      Exception: the error a hook's stop carries (a `NonFiniteLossError`, `Preempted`, ...),
        once every hook has closed.
    """
    loop = None
    try:
      loop = LoopState(self.init_state(), 0, Sums.zero(self.k), [[] for _ in self.members])
      for hook in self.hooks:
        hook.start(self, loop)
      self._epochs(loop)
      if loop.stop is None or loop.stop.error is None:
        for hook in self.hooks:
          hook.end(self, loop)
    finally:
      for hook in reversed(self.hooks):
        hook.close(self, loop)
    if loop.stop is not None and loop.stop.error is not None:
      raise loop.stop.error
    return loop

  def _epochs(self, loop: LoopState) -> None:
    run, cfg = self.run, self.run.config
    spe = run.steps_per_epoch
    last = min(cfg.num_epochs * spe, self.max_steps or math.inf)
    while loop.step < last and loop.stop is None:
      epoch, first = loop.step // spe, loop.step % spe
      order, pending, t0 = run.epoch_order(epoch), [], time.perf_counter()
      for i in range(first, spe):
        loop.train_state, metrics = self.train_step(loop.train_state, run.train_batch(order, i))
        loop.step += 1
        pending.append((loop.step - 1, metrics))
        done = i + 1 == spe or loop.step >= last
        if done or (i + 1) % cfg.log_every_steps == 0 or self._wanted(loop.step):
          self._absorb(loop, pending)  # waits for the steps dispatched so far: time them all
          loop.seconds = time.perf_counter() - t0
          pending = []
          for hook in self.hooks:
            hook.after_sync(self, loop)
          if loop.stop is not None or done:
            break
      if loop.stop is not None or loop.step < (epoch + 1) * spe:  # stopped inside the epoch
        return
      self._end_epoch(loop, epoch, spe - first)
      for hook in self.hooks:
        hook.after_epoch(self, loop)
      loop.sums, loop.seconds = Sums.zero(self.k), 0.0

  def _wanted(self, step: int) -> bool:
    return any(hook.wants_sync(self, step) for hook in self.hooks)

  def _absorb(self, loop: LoopState, pending: list) -> None:
    got = jax.device_get([m for _, m in pending])
    loop.fetched = [(step, m) for (step, _), m in zip(pending, got)]
    for _, m in loop.fetched:
      losses, accuracies = np.atleast_1d(m["loss"]), np.atleast_1d(m["accuracy"])
      for k in range(self.k):
        loop.sums.loss[k] += float(losses[k])
        loop.sums.correct[k] += float(accuracies[k])

  def _end_epoch(self, loop: LoopState, epoch: int, stepped: int) -> None:
    """The epoch's records; `stepped`: its steps this process ran (after a resume, the rest)."""
    cfg, k, spe = self.run.config, self.k, self.run.steps_per_epoch
    loop.sums.seconds += loop.seconds
    ips = stepped * cfg.batch_size * k / max(loop.seconds, 1e-9)
    loop.predictions = {}
    for i, m in enumerate(self.members):
      if i in loop.diverged:  # its state is not finite: nothing to evaluate
        continue
      record = {
        "epoch": epoch,
        "step": (epoch + 1) * spe,
        "lr": float(m.run.schedule(epoch * spe)),
        "train_loss": loop.sums.loss[i] / spe,
        "train_accuracy": loop.sums.correct[i] / spe,
        "seconds": loop.sums.seconds / k,
        "images_per_second": ips,
      }
      if self.evaluate:
        # Once per epoch: a schedule-free run recomputes its BatchNorm statistics here.
        state = m.run.eval_state(self.member_state(loop.train_state, i))
        record.update(m.run.evaluate(state, prepared=True))
        if epoch in m.run.snapshot_epochs:
          loop.predictions[i] = m.run.predict(state, prepared=True)
      loop.history[i].append(record)
