"""Fake study results with plausible curves, shared by the compare tests."""

from __future__ import annotations

import copy
import itertools
import re

import numpy as np

from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES as SCHEDULES
from lrjax.configs.chapter_schedules import LABELS


def _lr(name: str, epochs: int) -> np.ndarray:
  e = np.arange(epochs, dtype=float)
  if name == "time_based":
    return 0.1 / (1 + 0.05 * e)
  if name == "drop_based":
    return 0.1 * 0.5 ** (e // max(1, epochs // 4))
  if name == "linear":
    return 0.1 * (epochs - e) / epochs
  if name == "polynomial":
    return 0.1 * ((epochs - e) / epochs) ** 5
  if name == "triangle":
    peak = max(1, epochs // 5)
    return np.where(e < peak, 0.1 * e / peak, 0.1 * (epochs - e) / (epochs - peak))
  if name == "cosine_annealing":
    cycle = max(1, epochs // 2)
    return 0.05 * (np.cos(np.pi * (e % cycle) / cycle) + 1)
  return np.full(epochs, 0.1)


def make_results(
  num_schedules: int = 5,
  num_seeds: int = 3,
  num_epochs: int = 12,
  *,
  missing: tuple[tuple[str, int], ...] = (),
  snapshots: bool = False,
  config: dict | None = None,
) -> dict:
  """Results for the first `num_schedules` schedules x `num_seeds` seeds x `num_epochs` epochs.

  Schedule k's final accuracy is 0.80 + 0.01 k plus seed noise, so later schedules do better;
  runs named in `missing` as (schedule, seed) are left out, as in an unfinished study.
  """
  names = list(SCHEDULES[:num_schedules])
  seeds = list(range(num_seeds))
  runs = []
  for k, name in enumerate(names):
    for seed in seeds:
      if (name, seed) in missing:
        continue
      rng = np.random.default_rng(1000 * k + seed)
      e = np.arange(num_epochs, dtype=float)
      progress = 1 - np.exp(-4 * (e + 1) / num_epochs)
      final_acc = 0.80 + 0.01 * k + 0.004 * rng.standard_normal()
      train_loss = 2.3 * (1 - progress) + 0.1 + 0.02 * rng.random(num_epochs)
      test_loss = train_loss + 0.2 + 0.03 * rng.random(num_epochs)
      train_acc = np.minimum(0.1 + (final_acc + 0.1) * progress, 1.0)
      test_acc = 0.1 + (final_acc - 0.1) * progress / progress[-1]
      run = {
        "arm": name,
        "seed": seed,
        "final_test_accuracy": float(test_acc[-1]),
        "final_test_loss": float(test_loss[-1]),
        "best_test_accuracy": float(test_acc.max()),
        "final_train_loss": float(train_loss[-1]),
        "seconds": 10.0 + k + 0.1 * seed,
        "curves": {
          "epoch": e.astype(int).tolist(),
          "lr": _lr(name, num_epochs).tolist(),
          "train_loss": train_loss.tolist(),
          "train_accuracy": train_acc.tolist(),
          "test_loss": test_loss.tolist(),
          "test_accuracy": test_acc.tolist(),
        },
        "snapshot_ensemble": None,
      }
      if snapshots and name == "cosine_annealing":
        run["snapshot_ensemble"] = {
          "num_snapshots": 2,
          "ensemble_accuracy": float(test_acc[-1]) + 0.01,
          "last_snapshot_accuracy": float(test_acc[-1]),
          "ensemble_loss": float(test_loss[-1]) - 0.05,
        }
      runs.append(run)
  if config is None:
    config = {"model": "resnet20", "dataset": "cifar10", "num_epochs": num_epochs}
  return {
    "config": copy.deepcopy(config),
    "arms": names,
    "labels": {n: LABELS[n] for n in names},
    "seeds": seeds,
    "runs": runs,
  }


def with_metric(results: dict, metric: str, table: dict[str, list[float]]) -> dict:
  """A copy of `results` whose runs of each schedule take `metric` values from `table`, by seed."""
  out = copy.deepcopy(results)
  for run in out["runs"]:
    if run["arm"] in table:
      run[metric] = table[run["arm"]][run["seed"]]
  return out


def interrupt_at_epochs(monkeypatch, stop):
  """Every trainer of the study gets one more observer, which records (members, epoch, workdir
  of its first member) as each epoch starts and raises KeyboardInterrupt where `stop(members,
  epoch, seen)` says so (after the previous epoch's checkpoint): a user stopping the study."""
  from lrjax.train.trainer import Observer, Trainer

  real, epochs = Trainer.__init__, []

  class Interrupt(Observer):
    def _starting(self, trainer, step):
      epoch = step // trainer.run.steps_per_epoch
      if epoch >= trainer.run.experiment.num_epochs:
        return
      epochs.append((trainer.k, epoch, trainer.members[0].workdir))
      if stop(trainer.k, epoch, epochs):
        raise KeyboardInterrupt

    def start(self, trainer, step):
      self._starting(trainer, step)

    def see(self, trainer, moment):
      if moment.epoch_end:
        self._starting(trainer, moment.step)

  def with_interrupt(self, *args, observers=(), **kwargs):
    real(self, *args, observers=[*observers, Interrupt()], **kwargs)

  monkeypatch.setattr(Trainer, "__init__", with_interrupt)
  return epochs


def headings_never_skip_a_level(markdown: str) -> bool:
  """Each heading is at most one level below the one before (the documentation pages need it)."""
  levels = [len(m) for m in re.findall(r"^(#+) ", markdown, flags=re.M)]
  return bool(levels) and levels[0] == 1 and all(b <= a + 1 for a, b in itertools.pairwise(levels))
