"""The learning-rate response of a tuned study: each arm's validation metric against lr_scale."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from lrjax import stats
from lrjax.plot.figure import new_figure, save


def plot_response(results: Mapping[str, Any], path: str | os.PathLike) -> str:
  """One panel per arm: the validation metric of every grid point against its lr_scale (log
  scale), a line per tuning seed (a budget's own colour in a study with budgets), the chosen
  point circled and diverged points marked x at the panel's foot; returns the PNG's path.

  Args:
    results: a tuned study's results, with their `tuning` entry.
    path: the PNG file to write (its folder is created).

  Returns:
    The path written.

  Raises:
    ValueError: `results` has no `tuning` entry with arms.
  """
  tuning = results.get("tuning") or {}
  entries = list((tuning.get("arms") or {}).values())
  if not entries:
    raise ValueError("results must have a tuning entry with arms, got none")
  names = [n for n in stats.arm_names(results) if any(e["arm"] == n for e in entries)]
  cols = min(4, len(names))
  rows = math.ceil(len(names) / cols)
  fig = new_figure(3.2 * cols, 2.6 * rows + 0.4)
  axes = fig.subplots(rows, cols, squeeze=False)
  budgets = sorted({e["budget"] for e in entries if e["budget"] is not None})
  metric = tuning.get("metric", "validation_accuracy").replace("_", " ")
  for ax, name in zip(axes.flat, names):
    for e in [e for e in entries if e["arm"] == name]:
      color = f"C{budgets.index(e['budget']) % 10}" if budgets else "C0"
      grid = sorted(e["grid"], key=lambda g: g["lr_scale"])
      for seed in tuning.get("seeds", []):
        xs = [g["lr_scale"] for g in grid if g["values"].get(str(seed)) is not None]
        ys = [g["values"][str(seed)] for g in grid if g["values"].get(str(seed)) is not None]
        label = f"{e['budget']} ep" if budgets and seed == tuning["seeds"][0] else None
        ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=color, alpha=0.85, label=label)
      bad = [g["lr_scale"] for g in grid if g["diverged"]]
      if bad:
        ax.plot(bad, [0.0] * len(bad), "x", color=color, ms=7, transform=ax.get_xaxis_transform())
      chosen = next((g for g in grid if g["point"] == e.get("chosen")), None)
      if chosen is not None:
        values = [v for v in chosen["values"].values() if v is not None]
        if values:
          y = sum(values) / len(values)
          ax.plot(chosen["lr_scale"], y, "o", ms=11, mfc="none", mec="k", mew=1.5)
    ax.set_xscale("log", base=2)
    ax.set_title(stats.label(results, name), fontsize=9)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)
    if budgets:
      ax.legend(fontsize=6)
  for ax in list(axes.flat)[len(names) :]:
    ax.set_visible(False)
  fig.supxlabel("lr_scale (x the arm's schedule)", fontsize=9)
  fig.supylabel(metric, fontsize=9)
  fig.suptitle("Learning-rate response (circled: chosen; x: diverged)", fontsize=10)
  return save(fig, path)
