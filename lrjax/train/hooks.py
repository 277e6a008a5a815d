"""What happens at the loop's boundaries, each written once (see `lrjax.train.trainer.Hook`).

* `Claims`: one process per folder (`lrjax.files.claim`).
* `Preemption`: SIGTERM/SIGINT stop the loop at the next step, with a checkpoint there.
* `StopOnDivergence`: a member whose loss is not finite is recorded as diverged (step, lr) and
  left out; the loop stops when all have diverged.
* `Checkpointing`: resumes from the group's newest intact checkpoint (same members, same
  numerics) and saves every `checkpoint_every_epochs` epochs, every `checkpoint_every_steps`
  steps, at the end, and where a stop asks.
* `ForkExports`: hands each fork (a run that continues from this one at a step) this run's
  checkpoint and records there.
* `RunFiles`: each member's `config.json`, `metrics.jsonl`, TensorBoard events, snapshots and
  `summary.json`.
* `ProgressLine`: the one-line progress display and a line per epoch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any

import jax
import numpy as np

from lrjax.files.atomic import read_json, write_json
from lrjax.files.claim import Claim
from lrjax.runtime.preemption import Preempted, StopSignal
from lrjax.runtime.spec import NUMERICS, RuntimeMismatch
from lrjax.train import records, snapshots
from lrjax.train.checkpoint import Checkpoints
from lrjax.train.progress import Progress
from lrjax.train.trainer import Hook, LoopState, Member, Stop, Sums, Trainer


class Claims(Hook):
  """Holds `folders` while the loop runs; raises ClaimedError at start if one is held."""

  def __init__(self, folders: list[str]):
    self.folders, self._stack = list(dict.fromkeys(folders)), contextlib.ExitStack()

  def start(self, trainer: Trainer, loop: LoopState) -> None:
    if jax.process_count() == 1:  # see `lrjax.files.claim.Claim`
      for folder in self.folders:
        self._stack.enter_context(Claim(folder))

  def close(self, trainer: Trainer, loop: LoopState | None) -> None:
    self._stack.close()


class Preemption(Hook):
  """SIGTERM or SIGINT: stop after the current step, save a checkpoint there, raise Preempted."""

  def __init__(self):
    self._signal = StopSignal()

  def start(self, trainer: Trainer, loop: LoopState) -> None:
    self._signal.__enter__()

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    return self._signal.signum is not None

  def _stop(self, loop: LoopState) -> None:
    if self._signal.signum is not None and loop.stop is None:
      loop.stop = Stop("preempted", save=True, error=Preempted(loop.step, self._signal.signum))

  def after_sync(self, trainer: Trainer, loop: LoopState) -> None:
    if loop.step % trainer.run.steps_per_epoch:  # at an epoch's end: evaluate it first
      self._stop(loop)

  def after_epoch(self, trainer: Trainer, loop: LoopState) -> None:
    self._stop(loop)

  def close(self, trainer: Trainer, loop: LoopState | None) -> None:
    self._signal.__exit__(None, None, None)


class StopOnDivergence(Hook):
  """The one NaN policy (see the module docstring)."""

  def after_sync(self, trainer: Trainer, loop: LoopState) -> None:
    for step, m in loop.fetched:
      losses, lrs = np.atleast_1d(m["loss"]), np.atleast_1d(m["lr"])
      for k in range(trainer.k):
        if not np.isfinite(losses[k]) and k not in loop.diverged:
          loop.diverged[k] = {
            "step": int(step),
            "lr": float(lrs[k]),
            "message": f"the training loss became {float(losses[k])} at step {step} "
            f"(learning rate {float(lrs[k]):.6g})",
          }
    if len(loop.diverged) == trainer.k and loop.stop is None:
      loop.stop = Stop("diverged")


def _meta(step: int, sums: dict, names: list[str], diverged: dict) -> dict:
  return {
    "step": step,
    "partial": sums,
    "members": names,
    "diverged": {str(k): v for k, v in diverged.items()},
  }


def _sums_here(loop: LoopState) -> dict:
  """The epoch's sums so far, with the seconds of this process's part of it."""
  return {**loop.sums.to_dict(), "seconds": loop.sums.seconds + loop.seconds}


class Checkpointing(Hook):
  """Resume and save (see the module docstring); `names`: the members' folders relative to the
  group's, which a checkpoint records so that another study's members never resume from it."""

  def __init__(self, group_dir: str, members: list[Member]):
    cfg = members[0].run.config
    self.group_dir, self.members = group_dir, members
    self.names = [os.path.relpath(m.workdir, group_dir) for m in members]
    self.keep, self.every_steps = cfg.keep_checkpoints, cfg.checkpoint_every_steps
    self.every_epochs = cfg.checkpoint_every_epochs
    self.checkpoints: Checkpoints | None = None

  def start(self, trainer: Trainer, loop: LoopState) -> None:
    self.checkpoints = Checkpoints(self.group_dir, keep=self.keep)
    found = self.checkpoints.restore_intact(None)
    if found is not None and found[1].get("members", self.names) != self.names:
      # Other members (the study changed): these checkpoints do not apply.
      self.checkpoints.close()
      shutil.rmtree(self.checkpoints.directory)
      self.checkpoints = Checkpoints(self.group_dir, keep=self.keep)
    elif found is not None:
      _check_runtime(self.members)
      items, meta = self.checkpoints.restore_intact(loop.train_state.checkpoint_items())
      loop.train_state = loop.train_state.replace(**items)
      loop.step, loop.sums = int(meta["step"]), Sums.from_dict(meta["partial"])
      loop.diverged = {int(k): v for k, v in meta.get("diverged", {}).items()}

  def _save(self, loop: LoopState, sums: dict) -> None:
    meta = _meta(loop.step, sums, self.names, loop.diverged)
    self.checkpoints.save(loop.step, loop.train_state.checkpoint_items(), meta)

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    return bool(self.every_steps) and step % self.every_steps == 0

  def after_sync(self, trainer: Trainer, loop: LoopState) -> None:
    mid_epoch = loop.step % trainer.run.steps_per_epoch != 0
    every = self.every_steps and loop.step % self.every_steps == 0
    if mid_epoch and (every or (loop.stop is not None and loop.stop.save)):
      self._save(loop, _sums_here(loop))

  def after_epoch(self, trainer: Trainer, loop: LoopState) -> None:
    epochs = loop.step // trainer.run.steps_per_epoch
    last = epochs == trainer.run.config.num_epochs
    stop = loop.stop is not None and loop.stop.save
    if epochs % self.every_epochs == 0 or last or stop:
      self._save(loop, Sums.zero(trainer.k).to_dict())

  def close(self, trainer: Trainer, loop: LoopState | None) -> None:
    if self.checkpoints is not None:
      self.checkpoints.close()


def _check_runtime(members: list[Member]) -> None:
  """A checkpoint resumes only under the numerics it was trained with."""
  for m in members:
    path = os.path.join(m.workdir, "config.json")
    recorded = read_json(path).get("runtime") if os.path.exists(path) else None
    if not recorded:  # written before runs recorded their runtime
      continue
    now = m.run.runtime.record()
    for field in NUMERICS:
      if field in recorded and recorded[field] != now[field]:
        raise RuntimeMismatch(
          f"{m.workdir} was trained with config.runtime.{field}={recorded[field]!r}; this "
          f"process runs {now[field]!r}, whose results would differ: resume with "
          f"--config.runtime.{field}={recorded[field]} (or delete the folder to start afresh)"
        )


class ForkExports(Hook):
  """`exports` maps a step to the folders of runs that fork off this one there (one member)."""

  def __init__(self, exports: dict[int, list[str]], keep: int):
    self.exports, self.keep = exports, keep

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    return step in self.exports

  def _export(self, loop: LoopState, sums: dict) -> None:
    for folder in self.exports.get(loop.step, []):
      os.makedirs(folder, exist_ok=True)
      fork = Checkpoints(folder, keep=self.keep)
      try:
        if fork.latest_step() is None:  # a fork that has started keeps what it has
          records.write_records(folder, loop.history[0])
          fork.save(
            loop.step, loop.train_state.checkpoint_items(), _meta(loop.step, sums, ["."], {})
          )
      finally:
        fork.close()

  def after_sync(self, trainer: Trainer, loop: LoopState) -> None:
    if loop.step % trainer.run.steps_per_epoch:
      self._export(loop, _sums_here(loop))

  def after_epoch(self, trainer: Trainer, loop: LoopState) -> None:
    self._export(loop, Sums.zero(trainer.k).to_dict())


class RunFiles(Hook):
  """Each member's files (see the module docstring); `summary.json` marks a run as finished."""

  def __init__(self, members: list[Member]):
    self.members, self.writers = members, [None] * len(members)
    self.main = jax.process_index() == 0

  def start(self, trainer: Trainer, loop: LoopState) -> None:
    epoch = loop.step // trainer.run.steps_per_epoch
    for i, m in enumerate(self.members):
      loop.history[i] = records.read_records(m.workdir, epoch)
      if self.main:
        write_json(os.path.join(m.workdir, "config.json"), m.run.resolved_config())
        records.write_records(m.workdir, loop.history[i])  # drops epochs it will redo
        if m.run.config.tensorboard:
          self.writers[i] = _tensorboard(m.workdir)

  def after_epoch(self, trainer: Trainer, loop: LoopState) -> None:
    if not self.main:
      return
    epoch = loop.step // trainer.run.steps_per_epoch - 1
    for i, m in enumerate(self.members):
      if i in loop.diverged:
        continue
      records.write_records(m.workdir, loop.history[i])
      _to_tensorboard(self.writers[i], loop.history[i][-1])
      if i in loop.predictions:
        snapshots.save_snapshot(m.workdir, epoch, loop.predictions[i])

  def end(self, trainer: Trainer, loop: LoopState) -> None:
    for i, m in enumerate(self.members):
      summary = records.summary(
        loop.history[i], m.run.schedule.to_config(), m.run.runtime.record(), loop.diverged.get(i)
      )
      if i not in loop.diverged:
        summary["params_sha256"] = records.digest(trainer.member_state(loop.train_state, i).params)
        if trainer.vmapped and trainer.k > 1:
          summary["population"] = trainer.k
        if m.run.snapshot_epochs:
          summary["snapshot_ensemble"] = snapshots.ensemble_report(
            m.workdir, m.run.dataset.test_labels
          )
      if self.main:
        write_json(os.path.join(m.workdir, "summary.json"), summary)
      loop.summaries.append(summary)

  def close(self, trainer: Trainer, loop: LoopState | None) -> None:
    for w in self.writers:
      if w is not None:
        w.close()


def _tensorboard(workdir: str):
  try:
    from tensorboardX import SummaryWriter
  except ImportError:
    return None
  return SummaryWriter(os.path.join(workdir, "tb"))


def _to_tensorboard(writer: Any, record: dict) -> None:
  if writer is None:
    return
  for key, value in record.items():
    if key not in ("epoch", "step"):
      writer.add_scalar(key, value, record["step"])
  writer.flush()


class ProgressLine(Hook):
  """The run's progress line (`lrjax.train.progress.Progress`), members labelled by `labels`."""

  def __init__(self, labels: list[str] | None):
    self.labels, self.progress = labels, None

  def start(self, trainer: Trainer, loop: LoopState) -> None:
    cfg = trainer.run.config
    enabled = cfg.progress and jax.process_index() == 0
    self.progress = Progress(
      cfg.num_epochs, trainer.run.steps_per_epoch, enabled=enabled, start_step=loop.step
    )

  def after_sync(self, trainer: Trainer, loop: LoopState) -> None:
    spe = trainer.run.steps_per_epoch
    epoch, i = (loop.step - 1) // spe, (loop.step - 1) % spe + 1
    losses = np.atleast_1d(loop.fetched[-1][1]["loss"])
    finite = losses[np.isfinite(losses)]  # the members' mean loss, over those still finite
    latest = {
      "last_loss": float(finite.mean()) if finite.size else float(losses[0]),
      "last_lr": float(np.atleast_1d(loop.fetched[-1][1]["lr"])[0]),
    }
    self.progress.update(epoch, i, latest, loop.seconds, trainer.run.config.batch_size)

  def after_epoch(self, trainer: Trainer, loop: LoopState) -> None:
    for i, history in enumerate(loop.history):
      if i not in loop.diverged:
        label = self.labels[i] if self.labels and trainer.k > 1 else None
        self.progress.epoch_done(history[-1], label=label)


def standard(
  members: list[Member],
  group_dir: str,
  *,
  quiet: bool = False,
  exports: dict[int, list[str]] | None = None,
) -> list[Hook]:
  """The hooks of a training run or a study's cell, in the order they must run."""
  # A population's folder is <root>/_population/<group>: members are labelled from <root> on.
  root = os.path.dirname(os.path.dirname(group_dir))
  labels = [os.path.relpath(m.workdir, root) for m in members]
  hooks: list[Hook] = [
    Claims([group_dir, *(m.workdir for m in members)]),
    Preemption(),
    StopOnDivergence(),
    Checkpointing(group_dir, members),
    RunFiles(members),
  ]
  if exports:
    hooks.append(ForkExports(exports, members[0].run.config.keep_checkpoints))
  if not quiet:
    hooks.append(ProgressLine(labels))
  return hooks
