"""The budget figure: final test accuracy against training budget, one line per arm."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lrjax import stats
from lrjax.plot.figure import new_figure, save


def plot_budgets(results: Mapping[str, Any], path: str | os.PathLike) -> str:
  """Mean final test accuracy per arm against the budget (epochs, log scale), with the seeds'
  min..max as error bars; returns the path of the PNG.

  Args:
    results: a study's results with budgets.
    path: the PNG file to write (its folder is created).

  Returns:
    The path written.

  Raises:
    ValueError: if `results` has no budgets.
  """
  budgets = list(results["budgets"])
  if not budgets:
    raise ValueError("results must have budgets, got none")
  fig = new_figure(7, 4.5)
  ax = fig.add_subplot()
  for i, name in enumerate(stats.arm_names(results)):
    xs, means, lows, highs = [], [], [], []
    for b in budgets:
      cell = stats.summarize(stats.at_budget(results, b), ("final_test_accuracy",))[name]
      cell = cell["final_test_accuracy"]
      if cell["n"]:
        xs.append(b)
        means.append(cell["mean"])
        lows.append(cell["mean"] - min(cell["values"]))
        highs.append(max(cell["values"]) - cell["mean"])
    if xs:
      ax.errorbar(
        xs,
        means,
        yerr=[lows, highs],
        marker="o",
        capsize=3,
        color=f"C{i % 10}",
        label=stats.label(results, name),
      )
  ax.set_xscale("log", base=2)
  ax.set_xticks(budgets, [str(b) for b in budgets])
  ax.set_xlabel("budget (epochs)")
  ax.set_ylabel("final test accuracy")
  ax.set_title("Accuracy against budget (mean, seeds' range)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return save(fig, path)
