"""What a training run keeps on disk, for the loop (`lrjax.train.trainer`): its claims, its
checkpoints (where it resumes from, and its cadence of saves) and its members' files.

* Claims: one process per folder (`lrjax.files.claim`), held while the loop runs.
* Checkpoints: in the group's folder (a member's own for K = 1), every `checkpoint_every_epochs`
  epochs, every `checkpoint_every_steps` steps, at the end, and where a stop asks; a resume takes
  the newest intact one, if it holds the same members and was trained under the same numerics.
* Files (`lrjax.files.run_dir.RunDir`): each member's `config.json` when it starts,
  `metrics.jsonl` after every epoch, TensorBoard events, snapshots, and `summary.json` at the end.
  A multi-process run writes them from process 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from lrjax.files.claim import Claim
from lrjax.files.run_dir import RunDir
from lrjax.runtime.spec import NUMERICS, RuntimeMismatch
from lrjax.train import snapshots
from lrjax.train.checkpoint import Checkpoints


@dataclasses.dataclass
class Sums:
  """Each member's loss and accuracy summed over the current epoch's steps so far, and the
  seconds of the epoch's earlier processes (a resumed epoch's)."""

  loss: list[float]
  correct: list[float]
  seconds: float = 0.0

  @classmethod
  def zero(cls, k: int) -> Sums:
    return cls([0.0] * k, [0.0] * k)

  def add(self, losses: np.ndarray, accuracies: np.ndarray) -> None:
    for i in range(len(self.loss)):
      self.loss[i] += float(losses[i])
      self.correct[i] += float(accuracies[i])

  def here(self, seconds: float) -> dict[str, Any]:
    """The sums so far (copies: a checkpoint is written while later steps add to them), with
    `seconds` of this process's part of the epoch added."""
    return {**self.to_dict(), "seconds": self.seconds + seconds}

  def to_dict(self) -> dict[str, Any]:
    return {"loss_sum": list(self.loss), "correct_sum": list(self.correct), "seconds": self.seconds}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> Sums:
    return cls(list(d["loss_sum"]), list(d["correct_sum"]), float(d["seconds"]))


def _meta(step: int, sums: dict, names: list[str], diverged: dict) -> dict:
  return {
    "step": step,
    "partial": sums,
    "members": names,
    "diverged": {str(k): v for k, v in diverged.items()},
  }


class Storage:
  """The claims, checkpoints and files of a trainer's `members` (`lrjax.train.trainer.Member`:
  a built run and its folder), whose checkpoints live in `group_dir` (see the module docstring);
  a context manager: entering claims the folders and opens the checkpoints, leaving releases and
  closes them. A `stop` handed to it is the loop's (`Stop`: its `save` asks for a checkpoint)."""

  def __init__(self, members: Sequence[Any], group_dir: str):
    self.group_dir = group_dir
    self.members = list(members)
    self.dirs = [RunDir(m.workdir) for m in self.members]
    # What a checkpoint records of its members, so that another study's members never resume
    # from it.
    self.names = [os.path.relpath(m.workdir, group_dir) for m in self.members]
    run = self.members[0].run
    self.experiment = run.experiment
    self.epochs = run.epochs
    self.main = jax.process_index() == 0
    self._stack = contextlib.ExitStack()
    self.checkpoints: Checkpoints | None = None
    self.writers: list[Any] = [None] * len(self.members)

  def __enter__(self) -> Storage:
    if jax.process_count() == 1:  # see `lrjax.files.claim.Claim`
      for folder in dict.fromkeys([self.group_dir, *(m.workdir for m in self.members)]):
        self._stack.enter_context(Claim(folder))
    self.checkpoints = Checkpoints(self.group_dir, keep=self.experiment.keep_checkpoints)
    self._stack.callback(lambda: self.checkpoints.close())
    return self

  def __exit__(self, *exc) -> None:
    for w in self.writers:
      if w is not None:
        w.close()
    self._stack.close()

  # ------------------------------------------------------------------------- resuming

  def restore(self, state: Any, sums: Sums) -> tuple[Any, int, Sums, dict[int, dict]]:
    """(train state, step, the epoch's sums, diverged members) where the group's newest intact
    checkpoint stands; `state` and `sums` as given where there is none (or it holds other
    members: then it is deleted)."""
    ours = lambda meta: meta.get("members", self.names) == self.names
    found = self.checkpoints.restore_intact(state.checkpoint_items(), accept=ours)
    if found is None:
      return state, 0, sums, {}
    items, meta = found
    if items is None:  # other members (the study changed): these checkpoints do not apply
      self.checkpoints.close()
      shutil.rmtree(self.checkpoints.directory)
      self.checkpoints = Checkpoints(self.group_dir, keep=self.experiment.keep_checkpoints)
      return state, 0, sums, {}
    self._check_runtime()
    diverged = {int(k): v for k, v in meta.get("diverged", {}).items()}
    return state.replace(**items), int(meta["step"]), Sums.from_dict(meta["partial"]), diverged

  def _check_runtime(self) -> None:
    """A checkpoint resumes only under the numerics it was trained with."""
    for m, folder in zip(self.members, self.dirs):
      recorded = folder.recorded_runtime()
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

  def begin(self, epoch: int) -> list[list[dict]]:
    """Each member's records before `epoch` (where the loop starts); writes its `config.json`
    and drops the records of epochs it will train again."""
    history = [folder.records(epoch) for folder in self.dirs]
    if self.main:
      for i, (m, folder) in enumerate(zip(self.members, self.dirs)):
        folder.write_config(m.run.resolved_config())
        folder.write_records(history[i])
        if m.run.experiment.tensorboard:
          self.writers[i] = _tensorboard(m.workdir)
    return history

  # ------------------------------------------------------------------------- saving

  def wants_sync(self, step: int) -> bool:
    every = self.experiment.checkpoint_every_steps
    return bool(every) and step % every == 0

  def save_mid_epoch(self, step: int, state: Any, partial: dict, diverged: dict, stop: Any) -> None:
    """Inside an epoch: every `checkpoint_every_steps` steps, and where a stop asks."""
    if self.wants_sync(step) or (stop is not None and stop.save):
      self._save(step, state, partial, diverged)

  def save_epoch_end(self, step: int, state: Any, diverged: dict, stop: Any) -> None:
    """At an epoch's end: every `checkpoint_every_epochs` epochs, the last, and where a stop
    asks."""
    epochs = self.epochs.locate(step)[0]
    every = epochs % self.experiment.checkpoint_every_epochs == 0
    if every or epochs == self.experiment.num_epochs or (stop is not None and stop.save):
      self._save(step, state, Sums.zero(len(self.members)).to_dict(), diverged)

  def _save(self, step: int, state: Any, sums: dict, diverged: dict) -> None:
    self.checkpoints.save(step, state.checkpoint_items(), _meta(step, sums, self.names, diverged))

  # ------------------------------------------------------------------------- files

  def epoch_done(
    self, epoch: int, history: list[list[dict]], predictions: dict, diverged: dict
  ) -> None:
    """The epoch's records, TensorBoard events and snapshots of each live member."""
    if not self.main:
      return
    for i, (m, folder) in enumerate(zip(self.members, self.dirs)):
      if i in diverged:
        continue
      folder.write_records(history[i])
      _to_tensorboard(self.writers[i], history[i][-1])
      if i in predictions:
        snapshots.save_snapshot(m.workdir, epoch, predictions[i])

  def finish(self, summaries: list[dict]) -> list[dict]:
    """Each member's summary, with its snapshot ensemble where it kept snapshots, written to its
    folder: the mark that the run has finished."""
    out = []
    for m, folder, summary in zip(self.members, self.dirs, summaries):
      if m.run.snapshot_epochs and not summary.get("diverged"):
        labels = m.run.dataset.test_labels
        summary = {**summary, "snapshot_ensemble": snapshots.ensemble_report(m.workdir, labels)}
      if self.main:
        folder.write_summary(summary)
      out.append(summary)
    return out


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
