"""Snapshot ensembles (Huang et al. 2017): test-set predictions kept at the end of every cycle.

With cyclic cosine annealing every cycle ends at a learning rate near zero, in a different local
minimum; averaging the softmax outputs of those snapshots is an ensemble "for free". A run with
`config.snapshot_ensemble = True` and a cyclic schedule saves the test probabilities at the end of
the epoch in which each cycle ends (`snapshots/epoch_<e>.npy`) and reports the ensemble.
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

  Cycles are read from the schedule: `cosine_annealing` (period ceil(T / M)), `sgdr` and
  `repeat` with a constant period; the last epoch always ends the last (possibly short) cycle.
  """
  fields = schedule.fields()
  name = type(schedule).config_name
  if name == "cosine_annealing":
    period = math.ceil(int(fields["total_steps"]) / int(fields["num_cycles"]))
  elif name == "sgdr" and float(fields.get("period_mult", 1.0)) == 1.0:
    period = int(fields["first_period"])
  elif name == "repeat":
    period = int(fields["period"])
  else:
    return []
  ends = range(period, total_steps + period, period)
  epochs = {
    min(math.ceil(min(end, total_steps) / steps_per_epoch), total_steps // steps_per_epoch) - 1
    for end in ends
  }
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
