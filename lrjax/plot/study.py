"""Figures of a study (`lrjax compare`): learning rates, each schedule's curves, accuracy compared.

Curves of several seeds are drawn as their mean with a min..max band. Runs of unequal length
(an unfinished study) are aligned by epoch index; each epoch averages the runs that reached it.
Each schedule keeps one colour across figures.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from lrjax import stats
from lrjax.plot.figure import integer_epochs as _integer_epochs
from lrjax.plot.figure import new_figure
from lrjax.plot.figure import save as _save


def _colors(results: Mapping[str, Any]) -> dict[str, Any]:
  names = stats.arm_names(results)
  if len(names) <= 10:
    return {name: f"C{i}" for i, name in enumerate(names)}
  from matplotlib import colormaps

  # More arms than the default cycle has colours: tab20's, so no two arms share one.
  return {name: colormaps["tab20"](i % 20) for i, name in enumerate(names)}


def _curves(results: Mapping[str, Any], schedule: str, key: str) -> list[tuple[Any, np.ndarray]]:
  """(seed, values) of each run of `schedule` that recorded the curve `key`, in seed order."""
  cells = stats.run_table(results)
  seeds = stats.seeds_of(results)
  seeds += sorted({s for (n, s) in cells if n == schedule and s not in seeds}, key=repr)
  out = []
  for seed in seeds:
    curve = ((cells.get((schedule, seed)) or {}).get("curves") or {}).get(key)
    if curve:
      out.append((seed, np.asarray(curve, dtype=np.float64)))
  return out


def _epochs(results: Mapping[str, Any], schedule: str, length: int) -> np.ndarray:
  for _, epochs in _curves(results, schedule, "epoch"):
    if len(epochs) >= length:
      return epochs[:length]
  return np.arange(length, dtype=np.float64)


def _band(results: Mapping[str, Any], schedule: str, key: str):
  """(epochs, mean, low, high, n) over the seeds of `schedule`, or None without such a curve."""
  curves = [c for _, c in _curves(results, schedule, key)]
  if not curves:
    return None
  length = max(len(c) for c in curves)
  padded = np.full((len(curves), length), np.nan)
  for i, c in enumerate(curves):
    padded[i, : len(c)] = c
  with warnings.catch_warnings():
    # a diverged run can leave an all-NaN epoch; NaN there is the right answer
    warnings.simplefilter("ignore", RuntimeWarning)
    mean = np.nanmean(padded, axis=0)
    low, high = np.nanmin(padded, axis=0), np.nanmax(padded, axis=0)
  return _epochs(results, schedule, length), mean, low, high, len(curves)


def _draw(ax, band, color: str, label: str, linestyle: str = "-") -> None:
  x, mean, low, high, n = band
  ax.plot(x, mean, color=color, lw=1.6, ls=linestyle, label=label)
  if n > 1:
    ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0)


def _lr_curve(results: Mapping[str, Any], schedule: str):
  """(epochs, lr) of a schedule: at every step (up to 2,000 points) when the run recorded its
  schedule config and steps per epoch, else the per-epoch lr its records hold (seed 0 first).
  A run with a plateau draws its effective rate: each step's times its epoch's plateau scale."""
  for run in sorted(
    (r for r in results.get("runs", []) if r.get("arm") == schedule),
    key=lambda r: r.get("seed") != 0,
  ):
    config, spe, total = (
      run.get("schedule_config"),
      run.get("steps_per_epoch"),
      run.get("total_steps"),
    )
    if config and spe and total:
      from lrjax.schedules.config import from_config

      # The steps trained: 0 .. T - 1.
      steps = np.unique(np.linspace(0, total - 1, min(total, 2000)).astype(np.int64))
      lr = np.asarray(from_config(config)(steps), np.float64)
      scales = (run.get("curves") or {}).get("plateau_scale")
      if scales:  # the scale a run fed at epoch ends applies to every step of an epoch
        epochs = np.minimum(steps // spe, len(scales) - 1)
        lr = lr * np.asarray(scales, np.float64)[epochs]
      return steps / spe, lr
  curves = _curves(results, schedule, "lr")
  if not curves:
    return None
  seed, lr = next(((s, c) for s, c in curves if s == 0), curves[0])
  cells = stats.run_table(results)
  epochs = ((cells.get((schedule, seed)) or {}).get("curves") or {}).get("epoch")
  if not epochs or len(epochs) != len(lr):
    epochs = np.arange(len(lr))
  return np.asarray(epochs, dtype=np.float64), lr


def plot_lr_curves(
  results: Mapping[str, Any], path: str | os.PathLike, panels: bool = True, log_scale: bool = False
) -> str:
  """The learning rate of every schedule over the epochs, as the runs recorded it.

  Args:
    results: a study's results; each schedule's lr comes from its seed-0 run (else its first run).
    path: the PNG file to write (its folder is created).
    panels: one panel per schedule in a grid, else all schedules on one axis.
    log_scale: a logarithmic learning-rate axis.

  Returns:
    The path written.

  Raises:
    ValueError: if no run recorded an "lr" curve.
  """
  colors = _colors(results)
  named = {n: c for n in stats.arm_names(results) if (c := _lr_curve(results, n)) is not None}
  if not named:
    raise ValueError("results must have at least one run with an 'lr' curve, got none")
  if panels:
    cols = min(3, len(named))
    rows = math.ceil(len(named) / cols)
    fig = new_figure(4.4 * cols, 3.1 * rows)
    flat = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, (x, lr)) in zip(flat, named.items()):
      ax.plot(x, lr, color=colors[name], lw=1.6, marker="." if len(x) <= 30 else None)
      ax.set_title(stats.label(results, name), fontsize=10)
      ax.set_xlabel("epoch")
      _integer_epochs(ax)
      ax.set_ylabel("learning rate")
      ax.grid(alpha=0.3)
      if log_scale:
        ax.set_yscale("log")
      else:
        ax.set_ylim(bottom=0)  # a constant lr would otherwise fill the panel with tick noise
    for ax in flat[len(named) :]:
      ax.axis("off")
    fig.suptitle("Learning rate over training")
  else:
    fig = new_figure(9.0, 4.4)
    ax = fig.subplots()
    for name, (x, lr) in named.items():
      ax.plot(x, lr, color=colors[name], lw=1.6, label=stats.label(results, name))
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate over training")
    ax.grid(alpha=0.3)
    if log_scale:
      ax.set_yscale("log")
    # outside the axes: schedules cross everywhere, no corner is free
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
  return _save(fig, path)


def plot_run_curves(results: Mapping[str, Any], schedule: str, path: str | os.PathLike) -> str:
  """The chapter's "Performance of X": training and validation loss (left) and accuracy (right).

  With several seeds each curve is the mean over seeds with a shaded min..max band. The
  "validation" curves are the runs' `test_loss` and `test_accuracy` (the chapter's name for them).

  Args:
    results: a study's results, whose runs hold their `curves`.
    schedule: the schedule (arm) to draw.
    path: the PNG file to write (its folder is created).

  Returns:
    The path written.

  Raises:
    ValueError: if `schedule` is not in the study or none of its runs recorded curves.
  """
  names = stats.arm_names(results)
  if schedule not in names:
    raise ValueError(f"schedule must be one of {names}, got {schedule!r}")
  panels = (("loss", "train_loss", "test_loss"), ("accuracy", "train_accuracy", "test_accuracy"))
  bands = {key: _band(results, schedule, key) for _, *keys in panels for key in keys}
  if not any(bands.values()):
    raise ValueError(f"schedule {schedule!r} has no run with curves to plot")
  n = max(b[4] for b in bands.values() if b)
  fig = new_figure(11.0, 4.2)
  axes = fig.subplots(1, 2)
  for ax, (what, train, test) in zip(axes, panels):
    for key, name, color in ((train, "training", "C0"), (test, "validation", "C1")):
      if bands[key]:
        _draw(ax, bands[key], color, name)
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    ax.set_ylabel(what)
    ax.set_title(f"{what.capitalize()}", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=9, loc="best")
  spread = f"mean of {n} seeds, band min..max" if n > 1 else "one seed"
  fig.suptitle(f"Performance of {stats.label(results, schedule)} ({spread})")
  return _save(fig, path)


def plot_accuracy_overlay(
  results: Mapping[str, Any], path: str | os.PathLike, bars: bool = True
) -> str:
  """All schedules' validation accuracy over the epochs on one axis, and final accuracy as bars.

  Curves are the mean over seeds with a min..max band; with `bars`, a second panel shows the final
  accuracy, mean ± sample std over seeds (no error bar for a single seed). A panel with nothing to
  draw is left out. The accuracy drawn is the runs' `test_accuracy` and `final_test_accuracy`,
  labelled "validation" as the chapter does.

  Args:
    results: a study's results.
    path: the PNG file to write (its folder is created).
    bars: add the panel of final accuracies.

  Returns:
    The path written.

  Raises:
    ValueError: if no run recorded a "test_accuracy" curve or a final accuracy.
  """
  colors = _colors(results)
  names = stats.arm_names(results)
  bands = {n: b for n in names if (b := _band(results, n, "test_accuracy")) is not None}
  final = {
    n: c
    for n, c in stats.summarize(results, ("final_test_accuracy",)).items()
    if c["final_test_accuracy"]["n"] > 0
  }
  bars = bars and bool(final)
  if not bands and not bars:
    raise ValueError("results must have at least one run with accuracy to plot, got none")
  count = int(bool(bands)) + int(bars)
  fig = new_figure(13.0 if count == 2 else 8.0, 4.6)
  axes = fig.subplots(1, count, squeeze=False)
  if bands:
    ax = axes[0, 0]
    for name, band in bands.items():
      _draw(ax, band, colors[name], f"{stats.label(results, name)} (n={band[4]})")
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy per epoch (mean over seeds, band min..max)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
  if bars:
    ax = axes[0, -1]
    cells = [final[n]["final_test_accuracy"] for n in final]
    means = np.array([c["mean"] for c in cells])
    errs = np.array([c["std"] if c["n"] >= 2 else 0.0 for c in cells])
    x = np.arange(len(cells))
    ax.bar(x, means, yerr=errs, capsize=4, color=[colors[n] for n in final], alpha=0.85)
    # zoom on the differences: bars from 0 would hide them
    low, high = float(np.min(means - errs)), float(np.max(means + errs))
    pad = max(0.15 * (high - low), 0.005)
    ax.set_ylim(max(0.0, low - 3 * pad), high + 2 * pad)
    for xi, m, e in zip(x, means, errs):
      ax.text(xi, m + e + 0.2 * pad, f"{m:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [stats.label(results, n) for n in final], rotation=30, ha="right")
    ax.set_ylabel("final validation accuracy")
    ax.set_title("Final accuracy (mean ± sample std over seeds)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
  return _save(fig, path)


def _file_name(schedule: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(schedule))


def write_figures(results: Mapping[str, Any], workdir: str | os.PathLike) -> list[str]:
  """Writes the study's figures under `workdir/figures/` and returns their paths.

  `lr_schedules.png` (one panel per schedule), `lr_all.png` (all on one axis),
  `curves_<schedule>.png` per schedule and `accuracy_overlay.png`. A figure with nothing to draw
  (a schedule with no runs, a study with no curves yet) is left out.

  Args:
    results: a study's results.
    workdir: the study's folder.

  Returns:
    The paths of the figures written.
  """
  folder = os.path.join(os.fspath(workdir), "figures")
  paths = []
  if any(_lr_curve(results, n) for n in stats.arm_names(results)):
    paths.append(plot_lr_curves(results, os.path.join(folder, "lr_schedules.png"), panels=True))
    paths.append(plot_lr_curves(results, os.path.join(folder, "lr_all.png"), panels=False))
  for name in stats.arm_names(results):
    keys = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
    if any(_curves(results, name, key) for key in keys):
      path = os.path.join(folder, f"curves_{_file_name(name)}.png")
      paths.append(plot_run_curves(results, name, path))
  try:
    paths.append(plot_accuracy_overlay(results, os.path.join(folder, "accuracy_overlay.png")))
  except ValueError:
    pass  # no accuracy recorded yet: nothing to overlay
  return paths
