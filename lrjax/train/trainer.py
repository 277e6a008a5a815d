"""The engine's loop: one `Trainer` trains K >= 1 members that share their data order.

A member is a built run (`lrjax.train.build.Run`) and the folder its files go to. The members of
one trainer share their model, data, batch size and seed (so their initial weights and batches
are the same) and differ only in their per-member leaves, today the schedule. K = 1 is a plain
training run; for K > 1 the members train as one vmapped program (their states stacked, one batch
transfer, K updates a step).

`fit` reads top to bottom, as the Flax examples' `train_and_evaluate` does: it restores where the
members' folders say they stand (`lrjax.train.storage`), then steps through the epochs; every
`log_every_steps` steps (and where something asks) it fetches the metrics, records members whose
loss stopped being finite, and saves a checkpoint on its cadence; at each epoch's end it
evaluates, writes the records and checkpoints; at the end it writes each member's summary. A
run with a plateau gets its validation metric where one is due (`lrjax.train.feed`), before the
checkpoint there.
SIGTERM or SIGINT stop it after the current step (at an epoch's end, after evaluating), with a
checkpoint there. What is not the loop's own job (the progress line, a fork's start, the range
test's curve) is an `Observer`: it sees each `Moment` read-only and may return a `Stop`; no
observer depends on another's order, and none changes the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.runtime.preemption import Preempted, StopSignal
from lrjax.train import build, feed, records
from lrjax.train.storage import Storage, Sums


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or infinite; the last good checkpoint is kept.

  Args:
    message: what happened, where, and what to do.
    step: the update whose loss was not finite (kept as `self.step`; -1 if unknown).
    lr: that update's learning rate (kept as `self.lr`; nan if unknown).
  """

  def __init__(self, message: str, step: int = -1, lr: float = math.nan):
    super().__init__(message)
    self.step = step
    self.lr = lr


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a `Trainer`: what to train and where its files go.

  Attributes:
    run: the built run (`lrjax.train.build.build(experiment, runtime)`).
    workdir: the run's folder (its config, metrics, summary and, for one member, checkpoints).
  """

  run: build.Run
  workdir: str


@dataclasses.dataclass(frozen=True)
class Stop:
  """Why the loop stops early. `save`: checkpoint where it stopped; `error`: raised once the loop
  has closed everything it opened."""

  reason: str
  save: bool = False
  error: Exception | None = None


@dataclasses.dataclass(frozen=True)
class Moment:
  """What an observer sees, after a sync inside an epoch or after an epoch's evaluation.

  Attributes:
    step: updates done.
    epoch_end: whether an epoch has just been evaluated (its records are in `history`).
    fetched: (step, metrics) of the steps since the last sync; metrics have a leading axis of K
      for a vmapped population.
    train_state: the members' train state (stacked for a population): read it, never donate it.
    history: each member's epoch records so far.
    diverged: member index -> where its loss stopped being finite.
    partial: the epoch's sums so far (`Sums.to_dict`), as a mid-epoch checkpoint keeps them.
  """

  step: int
  epoch_end: bool
  fetched: tuple[tuple[int, dict], ...]
  train_state: Any
  history: tuple[tuple[dict, ...], ...]
  diverged: Mapping[int, dict]
  partial: Mapping[str, Any]


class Observer:
  """Sees the loop's moments (see the module docstring); may return a `Stop`."""

  def start(self, trainer: Trainer, step: int) -> None:
    """Once, before the first step; `step`: where the loop starts (a resume's step)."""

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    """Whether the loop must fetch the metrics after update `step` (1-based)."""
    return False

  def see(self, trainer: Trainer, moment: Moment) -> Stop | None:
    """After a sync inside an epoch, and after each epoch's evaluation."""
    return None

  def close(self) -> None:
    """Always, once the loop has ended: release what `start` took."""


@dataclasses.dataclass(frozen=True)
class Result:
  """What `Trainer.fit` returns: the final train state and step, each member's epoch records,
  where members diverged, and each member's summary (none after a stop that raises)."""

  train_state: Any
  step: int
  history: list[list[dict]]
  diverged: dict[int, dict]
  summaries: list[dict]


class Trainer:
  """Trains `members` together (see the module docstring); `fit()` returns the `Result`.

  Args:
    members: K >= 1 members sharing model, data, batch size and seed.
    group_dir: the folder of the group's checkpoints (a member's workdir for K = 1).
    vmapped: train K > 1 members as one vmapped program.
    observers: see each `Moment` (`lrjax.train.observers`).
    evaluate: evaluate each live member at each epoch's end.
    splits: the splits evaluated ("test", "validation"; a tuning run needs validation alone).
    every_epoch: evaluate at every epoch's end, else at the last alone (a tuning run reads its
      final validation metric, and draws no curve).
    max_steps: stop after this many updates (the range test), else after `num_epochs`.
    keep: claim the folders, resume from and save checkpoints, stop on SIGTERM/SIGINT, and write
      each member's files (`lrjax.train.storage`); False for a run that leaves nothing (the range
      test).

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
    observers: Sequence[Observer] = (),
    evaluate: bool = True,
    splits: tuple[str, ...] = ("test", "validation"),
    every_epoch: bool = True,
    max_steps: int | None = None,
    keep: bool = True,
  ):
    if not members:
      raise ValueError("members must hold at least one member, got none")
    if len(members) > 1 and not vmapped:
      raise ValueError(f"{len(members)} members train together only vmapped (vmapped=True)")
    r0 = members[0].run
    for m in members[1:]:
      r = m.run
      same = (r.epochs, r.experiment.seed, r.model)
      if same != (r0.epochs, r0.experiment.seed, r0.model):
        raise ValueError("a population's runs must share their model, data, batch size and seed")
    self.members = list(members)
    self.group_dir = group_dir
    self.vmapped = vmapped
    self.run = r0
    self.observers = list(observers)
    self.evaluate = evaluate
    self.splits = tuple(splits)
    self.every_epoch = every_epoch
    self.max_steps = max_steps
    self.keep = keep
    self.schedules = tuple(m.run.step_schedules for m in members)
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
    """A member's part of a train state (the state itself unless vmapped).

    Args:
      state: the trainer's train state.
      i: the member's index, in [0, K).
    """
    return jax.tree.map(lambda x: x[i], state) if self.vmapped else state

  def train_step(self, state: Any, batch: dict) -> tuple[Any, dict]:
    """One update of every member on a batch: the jitted step, vmapped for a population.

    Args:
      state: the train state before the update.
      batch: the step's batch (`Run.train_batch`), the same for every member.

    Returns:
      (the new state, the step's metrics `{"loss", "accuracy", "lr"}` and each scheduled
      hyperparameter's, e.g. "momentum", on the device, with a leading axis of K when vmapped).
    """
    if self.vmapped:
      return self.run.steps.train_members(state, batch, self.schedules, self.indices)
    return self.run.steps.train(state, batch, self.run.step_schedules)

  def fit(self) -> Result:
    """Trains to the end, or until SIGTERM/SIGINT, every member's divergence or an observer
    stops it.

    Raises:
      Preempted: SIGTERM or SIGINT stopped it; a checkpoint at the step it reached is saved.
      ClaimedError: another live process trains one of the folders.
    """
    run, exp, k = self.run, self.run.experiment, self.k
    clock = run.epochs  # each epoch's updates and batch size
    last = min(clock.start(exp.num_epochs), self.max_steps or math.inf)
    with contextlib.ExitStack() as stack:
      for observer in self.observers:
        stack.callback(observer.close)
      signal = stack.enter_context(StopSignal()) if self.keep else None
      storage = stack.enter_context(Storage(self.members, self.group_dir)) if self.keep else None
      # Where the members stand: restored before the loop, from the group's checkpoint.
      state, step, sums, diverged = self.init_state(), 0, Sums.zero(k), {}
      if storage is not None:
        state, step, sums, diverged = storage.restore(state, sums)
      history = storage.begin(clock.locate(step)[0]) if storage else [[] for _ in range(k)]
      for observer in self.observers:
        observer.start(self, step)
      stop: Stop | None = None
      while step < last and stop is None:
        epoch, first = clock.locate(step)
        spe, size = clock.steps_in(epoch), clock.batch_size(epoch)
        order, pending, t0 = run.epoch_order(epoch), [], time.perf_counter()
        for i in range(first, spe):
          state, metrics = self.train_step(state, run.train_batch(order, i, size))
          step += 1
          pending.append((step - 1, metrics))
          ends = i + 1 == spe or step >= last
          if not (ends or step % exp.log_every_steps == 0 or self._wants(step, signal, storage)):
            continue
          fetched = self._fetch(pending, sums)  # waits for every step dispatched: time them all
          pending, seconds = [], time.perf_counter() - t0
          diverged = {**diverged, **self._diverged(fetched, diverged)}
          mid = i + 1 < spe
          if mid:  # a plateau fed every N steps (at an epoch's end, after its evaluation)
            state = feed.feed(self, state, step, {}, diverged)
          # At an epoch's end a signal stops the loop after the epoch is evaluated, below.
          stop = self._stop(diverged, signal if mid else None, step)
          partial = sums.here(seconds)
          moment = Moment(step, False, tuple(fetched), state, _frozen(history), diverged, partial)
          told = self._tell(moment)  # every observer sees every moment, a stop's too
          stop = stop or told
          if storage is not None and mid:
            storage.save_mid_epoch(step, state, partial, diverged, stop)
          if stop is not None or ends:
            break
        if stop is not None or step < clock.start(epoch + 1):  # stopped inside the epoch
          break
        sums.seconds += seconds
        epoch_records, predictions = self._end_epoch(
          state, epoch, (spe - first) / seconds, sums, diverged
        )
        for i, record in epoch_records.items():
          history[i].append(record)
        state = feed.feed(self, state, step, epoch_records, diverged)
        if storage is not None:
          storage.epoch_done(epoch, history, predictions, diverged)
        stop = self._stop(diverged, signal, step)
        if storage is not None:
          storage.save_epoch_end(step, state, diverged, stop)
        sums = Sums.zero(k)
        moment = Moment(step, True, (), state, _frozen(history), diverged, sums.to_dict())
        told = self._tell(moment)  # a fork exported here must be, even where the loop stops
        stop = stop or told
      summaries = []
      if stop is None or stop.error is None:
        summaries = [self._summary(state, history, diverged, i) for i in range(k)]
        if storage is not None:
          summaries = storage.finish(summaries)
    if stop is not None and stop.error is not None:
      raise stop.error
    return Result(state, step, history, diverged, summaries)

  # ------------------------------------------------------------------------- the loop's parts

  def _wants(self, step: int, signal: StopSignal | None, storage: Storage | None) -> bool:
    if signal is not None and signal.signum is not None:
      return True
    if (storage is not None and storage.wants_sync(step)) or feed.due(self, step):
      return True
    return any(o.wants_sync(self, step) for o in self.observers)

  def _fetch(self, pending: list, sums: Sums) -> list[tuple[int, dict]]:
    got = jax.device_get([m for _, m in pending])
    fetched = [(step, m) for (step, _), m in zip(pending, got)]
    for _, m in fetched:
      sums.add(np.atleast_1d(m["loss"]), np.atleast_1d(m["accuracy"]))
    return fetched

  def _diverged(self, fetched: list, known: Mapping[int, dict]) -> dict[int, dict]:
    """The members whose loss first stopped being finite in `fetched`: the one NaN policy (a
    diverged member is recorded with its step and rate and left out; the others go on)."""
    out: dict[int, dict] = {}
    for step, m in fetched:
      losses, lrs = np.atleast_1d(m["loss"]), np.atleast_1d(m["lr"])
      for i in range(self.k):
        if not np.isfinite(losses[i]) and i not in known and i not in out:
          loss, lr = float(losses[i]), float(lrs[i])
          message = f"the training loss became {loss} at step {step} (learning rate {lr:.6g})"
          out[i] = {"step": int(step), "lr": lr, "message": message}
    return out

  def _stop(self, diverged: Mapping, signal: StopSignal | None, step: int) -> Stop | None:
    if signal is not None and signal.signum is not None:
      return Stop("preempted", save=True, error=Preempted(step, signal.signum))
    if len(diverged) == self.k:
      return Stop("diverged")
    return None

  def _tell(self, moment: Moment) -> Stop | None:
    stops = [o.see(self, moment) for o in self.observers]  # every observer sees every moment
    return next((s for s in stops if s is not None), None)

  def _end_epoch(
    self, state: Any, epoch: int, pace: float, sums: Sums, diverged: Mapping
  ) -> tuple[dict[int, dict], dict[int, np.ndarray]]:
    """Each live member's record of `epoch` (and its test predictions where a snapshot is due);
    `pace`: steps per second of this process's part of the epoch (after a resume, the rest)."""
    run, k, clock = self.run, self.k, self.run.epochs
    start, spe = clock.start(epoch), clock.steps_in(epoch)
    ips = pace * clock.batch_size(epoch) * k
    out, predictions = {}, {}
    for i, m in enumerate(self.members):
      if i in diverged:  # its state is not finite: nothing to evaluate
        continue
      record = {
        "epoch": epoch,
        "step": start + spe,
        "lr": float(m.run.schedule(start)),
        **{n: float(s(start)) for n, s in m.run.optimizer_schedules.items()},
        **records.group_rates(m.run.param_groups, float(m.run.schedule(start))),
        "train_loss": sums.loss[i] / spe,
        "train_accuracy": sums.correct[i] / spe,
        "seconds": sums.seconds / k,
        "images_per_second": ips,
        **feed.epoch_fields(m.run, self.member_state(state, i), epoch),
      }
      last = epoch + 1 == run.experiment.num_epochs
      if self.evaluate and (self.every_epoch or last):
        # Once per epoch: a schedule-free run recomputes its BatchNorm statistics here.
        member_state = m.run.eval_state(self.member_state(state, i))
        record.update(m.run.evaluate(member_state, prepared=True, splits=self.splits))
        if epoch in m.run.snapshot_epochs and "test" in self.splits:
          predictions[i] = m.run.predict(member_state, prepared=True)
      out[i] = record
    return out, predictions

  def _summary(self, state: Any, history: list, diverged: Mapping, i: int) -> dict:
    run = self.members[i].run
    extra: dict[str, Any] = {}
    if i not in diverged:
      extra["params_sha256"] = records.digest(self.member_state(state, i).params)
      if self.vmapped and self.k > 1:
        extra["population"] = self.k
    return records.summary(
      history[i], run.schedule.to_config(), run.runtime.record(), diverged.get(i), extra
    )


def _frozen(history: list[list[dict]]) -> tuple[tuple[dict, ...], ...]:
  return tuple(tuple(h) for h in history)
