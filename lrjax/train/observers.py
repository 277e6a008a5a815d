"""What watches the loop without being its job (`lrjax.train.trainer.Observer`):

* `ProgressLine`: the one-line progress display and a line per epoch;
* `ForkExports`: hands each fork (a run that continues from this one at a step) this run's
  checkpoint and records there.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from lrjax.files.run_dir import RunDir
from lrjax.train.checkpoint import Checkpoints
from lrjax.train.progress import RunProgress
from lrjax.train.storage import Sums
from lrjax.train.trainer import Moment, Observer, Stop, Trainer


class ProgressLine(Observer):
  """The run's progress line (`lrjax.train.progress.RunProgress`), members labelled by
  `labels`."""

  def __init__(self, labels: list[str] | None = None):
    self.labels = labels
    self.progress = None

  def start(self, trainer: Trainer, step: int) -> None:
    exp = trainer.run.experiment
    enabled = exp.progress and jax.process_index() == 0
    self.progress = RunProgress(
      exp.num_epochs, trainer.run.steps_per_epoch, enabled=enabled, start_step=step
    )

  def see(self, trainer: Trainer, moment: Moment) -> Stop | None:
    if moment.epoch_end:
      for i, history in enumerate(moment.history):
        if i not in moment.diverged:
          label = self.labels[i] if self.labels and trainer.k > 1 else None
          self.progress.epoch_done(history[-1], label=label)
      return None
    epoch, i = trainer.run.epochs.locate(moment.step - 1)
    i += 1
    losses = np.atleast_1d(moment.fetched[-1][1]["loss"])
    finite = losses[np.isfinite(losses)]  # the members' mean loss, over those still finite
    latest = {
      "last_loss": float(finite.mean()) if finite.size else float(losses[0]),
      "last_lr": float(np.atleast_1d(moment.fetched[-1][1]["lr"])[0]),
    }
    seconds = moment.partial["seconds"]
    self.progress.update(epoch, i, latest, seconds, trainer.run.epochs.batch_size(epoch))
    return None


class ForkExports(Observer):
  """`exports` maps a step to the folders of runs that fork off this one (one member) there."""

  def __init__(self, exports: dict[int, list[str]], keep: int):
    self.exports = exports
    self.keep = keep

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    return step in self.exports

  def see(self, trainer: Trainer, moment: Moment) -> Stop | None:
    at_epoch_end = trainer.run.epochs.locate(moment.step)[1] == 0
    if moment.epoch_end == at_epoch_end:  # a step inside an epoch, or an epoch just evaluated
      partial = moment.partial if not at_epoch_end else Sums.zero(trainer.k).to_dict()
      for folder in self.exports.get(moment.step, []):
        self._export(folder, moment, partial)
    return None

  def _export(self, folder: str, moment: Moment, partial: dict) -> None:
    os.makedirs(folder, exist_ok=True)
    fork = Checkpoints(folder, keep=self.keep)
    try:
      if fork.latest_step() is None:  # a fork that has started keeps what it has
        RunDir(folder).write_records(list(moment.history[0]))
        meta = {"step": moment.step, "partial": dict(partial), "members": ["."], "diverged": {}}
        fork.save(moment.step, moment.train_state.checkpoint_items(), meta)
    finally:
      fork.close()
