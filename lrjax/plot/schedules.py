"""Figures of schedules: the learning rate over steps (or epochs), one panel each or overlaid."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from lrjax.plot.figure import new_figure, save
from lrjax.schedules.base import Schedule


def _named(
  schedules: Schedule | Mapping[str, Schedule] | Sequence[Schedule],
) -> dict[str, Schedule]:
  if isinstance(schedules, Schedule):
    schedules = [schedules]
  if isinstance(schedules, Mapping):
    named = dict(schedules)
  else:
    named = {}
    for s in schedules:
      label = type(s).config_name or type(s).__name__
      key, i = label, 2
      while key in named:
        key, i = f"{label} ({i})", i + 1
      named[key] = s
  if not named:
    raise ValueError("schedules must name at least one schedule, got none")
  for label, s in named.items():
    if not isinstance(s, Schedule):
      raise ValueError(f"schedules[{label!r}] must be an lrjax schedule, got {s!r}")
  return named


def schedule_values(schedule: Schedule, num_steps: int) -> np.ndarray:
  """The schedule at steps 0 .. num_steps - 1 as a NumPy float32 array (one vectorised call).

  Args:
    schedule: an lrjax schedule.
    num_steps: the number of steps, a positive integer.

  Returns:
    float32 array of shape [num_steps].

  Raises:
    ValueError: if `num_steps` is not a positive integer.

  Example:
    >>> from lrjax.plot import schedule_values
    >>> schedule_values(lrjax.linear_decay(1.0, 4), 6)
    array([1.  , 0.75, 0.5 , 0.25, 0.  , 0.  ], dtype=float32)
  """
  if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
    raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
  return np.asarray(schedule(np.arange(int(num_steps))))


def plot_schedules(
  schedules: Schedule | Mapping[str, Schedule] | Sequence[Schedule],
  num_steps: int,
  path: str | os.PathLike,
  *,
  steps_per_epoch: int | None = None,
  panels: bool = False,
  title: str | None = None,
  log_scale: bool = False,
  value_label: str = "learning rate",
) -> str:
  """Draws one or several schedules into a PNG, as the chapter's figures show each schedule.

  Args:
    schedules: a schedule, a list of them (labelled by kind), or a dict label -> schedule.
    num_steps: steps to draw, 0 .. num_steps - 1.
    path: the PNG file to write (its folder is created).
    steps_per_epoch: if given, the x axis is in epochs (step / steps_per_epoch).
    panels: one panel per schedule (a grid) instead of all on one axis.
    title: the figure title.
    log_scale: a logarithmic learning-rate axis.
    value_label: the value axis's label ("momentum" for a momentum schedule, say).

  Returns:
    The path written, as a string.

  Raises:
    ValueError: for an empty or non-schedule `schedules`, a non-positive `num_steps` or
      `steps_per_epoch`.
  """
  named = _named(schedules)
  if steps_per_epoch is not None and (
    isinstance(steps_per_epoch, bool)
    or not isinstance(steps_per_epoch, (int, np.integer))
    or steps_per_epoch < 1
  ):
    raise ValueError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")
  x = np.arange(num_steps) / (steps_per_epoch or 1)
  xlabel = "epoch" if steps_per_epoch else "step"
  if panels:
    cols = min(3, len(named))
    rows = math.ceil(len(named) / cols)
    fig = new_figure(4.2 * cols, 3.0 * rows)
    flat = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (label, s) in zip(flat, named.items()):
      ax.plot(x, schedule_values(s, num_steps), color="C0", lw=1.6)
      ax.set_title(label, fontsize=10)
      ax.set_xlabel(xlabel)
      ax.set_ylabel(value_label)
      ax.grid(alpha=0.3)
      if log_scale:
        ax.set_yscale("log")
    for ax in flat[len(named) :]:
      ax.axis("off")
  else:
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    for label, s in named.items():
      ax.plot(x, schedule_values(s, num_steps), label=label, lw=1.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(value_label)
    ax.grid(alpha=0.3)
    if log_scale:
      ax.set_yscale("log")
    ax.legend(fontsize=8, loc="best")
  if title:
    fig.suptitle(title)
  return save(fig, path)
