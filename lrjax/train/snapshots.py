"""Snapshot ensembles (Huang et al. 2017): test-set predictions kept at the end of every cycle.

With cyclic cosine annealing every cycle ends at a learning rate near zero, in a different local
minimum; averaging the softmax outputs of those snapshots is an ensemble "for free". A run with
`config.snapshot_ensemble = True` and a schedule with cycles saves the test probabilities at the
end of the epoch in which each cycle ends (`snapshots/epoch_<e>.npy`) and reports the ensemble.
"""

from __future__ import annotations

import glob
import math
import os
from typing import Any

import numpy as np

from lrjax.schedules.base import Schedule


def cycle_end_epochs(schedule: Schedule, steps_per_epoch: int, total_steps: int) -> list[int]:
  """The 0-based epochs at whose end a cycle of `schedule` has ended ([] if it has no cycles).

  The schedule says where its cycles end (`Schedule.cycle_ends`), so compositions such as
  `repeat` or a `per_epoch` cosine annealing get snapshots too; a cycle that ends inside an
  epoch is taken at that epoch's end, and the last epoch ends the last (possibly short) cycle.
  """
  ends = schedule.cycle_ends(total_steps)
  last = total_steps // steps_per_epoch - 1
  epochs = {min(math.ceil(end / steps_per_epoch) - 1, last) for end in ends if end > 0}
  return sorted(e for e in epochs if e >= 0)


def save_snapshot(workdir: str, epoch: int, probs: np.ndarray) -> str:
  folder = os.path.join(workdir, "snapshots")
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, f"epoch_{epoch:05d}.npy")
  tmp = path + ".tmp.npy"
  np.save(tmp, probs.astype(np.float32))
  os.replace(tmp, path)  # atomic: a crash never leaves a truncated snapshot
  return path


def ensemble_report(workdir: str, labels: np.ndarray) -> dict[str, Any] | None:
  """Accuracy and loss of the averaged softmax of all snapshots, and of the last one alone."""
  paths = sorted(glob.glob(os.path.join(workdir, "snapshots", "epoch_*.npy")))
  paths = [p for p in paths if not p.endswith(".tmp.npy")]
  if not paths:
    return None
  probs = [np.load(p) for p in paths]
  mean = np.mean(probs, axis=0)
  rows = np.arange(len(labels))

  def nll(p):
    return float(-np.mean(np.log(np.maximum(p[rows, labels], 1e-12))))

  return {
    "num_snapshots": len(paths),
    "ensemble_accuracy": float(np.mean(mean.argmax(-1) == labels)),
    "ensemble_loss": nll(mean),
    "last_snapshot_accuracy": float(np.mean(probs[-1].argmax(-1) == labels)),
    "last_snapshot_loss": nll(probs[-1]),
  }
