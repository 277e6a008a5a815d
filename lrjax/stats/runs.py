"""Reading a study's results dict: its arms, labels, seeds and runs, a run's metric, one
budget's part, and per-arm summaries over seeds (see `lrjax.stats` for missing data)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

METRICS = (
  "final_test_accuracy",
  "final_test_loss",
  "final_validation_accuracy",
  "final_validation_loss",
  "test_accuracy_at_best_epoch",
  "seconds",
)


def check_results(results: Any) -> None:
  """Raises ValueError unless `results` is a mapping with a list of runs."""
  if not isinstance(results, Mapping) or not isinstance(results.get("runs"), Sequence):
    raise ValueError(f"results must be a mapping with a list of 'runs', got {type(results)!r}")


def arm_names(results: Mapping[str, Any]) -> list[str]:
  """The arms in column order: `results["arms"]`, then any others the runs name.

  Args:
    results: a study's results (`{"runs": [...], "arms": [...], ...}`).
  """
  check_results(results)
  names = list(results.get("arms") or [])
  for run in results["runs"]:
    if run.get("arm") is not None and run["arm"] not in names:
      names.append(run["arm"])
  return names


def label(results: Mapping[str, Any], arm: str) -> str:
  """The display name of an arm (its key when `results["labels"]` has none).

  Args:
    results: a study's results (`{"runs": [...], "arms": [...], ...}`).
    arm: an arm's key.
  """
  return str((results.get("labels") or {}).get(arm, arm))


def seeds_of(results: Mapping[str, Any]) -> list[Any]:
  """The study's seeds: `results["seeds"]`, else those the runs name, sorted.

  Args:
    results: a study's results (`{"runs": [...], "arms": [...], ...}`).
  """
  check_results(results)
  if results.get("seeds"):
    return list(results["seeds"])
  return sorted({run.get("seed") for run in results["runs"] if run.get("seed") is not None})


def run_table(results: Mapping[str, Any]) -> dict[tuple[str, Any], Mapping[str, Any]]:
  """The runs keyed by (arm, seed); when a cell was run twice the later run counts.

  Args:
    results: a study's results (`{"runs": [...], "arms": [...], ...}`).
  """
  check_results(results)
  return {(run.get("arm"), run.get("seed")): run for run in results["runs"]}


def metric_value(run: Mapping[str, Any] | None, metric: str) -> float | None:
  """`run[metric]` as a float, or None when missing or not finite.

  Args:
    run: a run's record, or None.
    metric: its key; a dotted one reads into a nested record
      ("snapshot_ensemble.ensemble_accuracy").
  """
  value: Any = run
  for key in metric.split("."):
    if not isinstance(value, Mapping):
      return None
    value = value.get(key)
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    return None
  value = float(value)
  return value if math.isfinite(value) else None


def at_budget(results: Mapping[str, Any], budget: int) -> dict[str, Any]:
  """The results of one budget alone, as a study without budgets would have them.

  Args:
    results: a study's results with budgets (each run has its `budget`).
    budget: the budget to keep, in epochs.

  Returns:
    A copy of `results` with that budget's runs (and tuning choices), and no budgets.
  """
  check_results(results)
  runs = [r for r in results["runs"] if r.get("budget") == budget]
  out = {**results, "runs": runs, "budgets": []}
  if results.get("tuning"):  # a tuned study: each budget's own choices
    arms = {k: e for k, e in results["tuning"]["arms"].items() if e.get("budget") == budget}
    out["tuning"] = {**results["tuning"], "arms": arms}
  return out


def higher_is_better_for(metric: str) -> bool:
  """False for losses and times (lower is better), True otherwise (accuracies).

  Args:
    metric: a metric's name (the last part of a dotted name counts).
  """
  name = metric.rsplit(".", 1)[-1]
  return not ("loss" in name or name in ("seconds", "time", "wall_time"))


def sample_std(values: Sequence[float]) -> float:
  """The sample standard deviation (ddof=1); nan for fewer than two values."""
  # ddof=1 is undefined for one value: nan, not numpy's RuntimeWarning and not a misleading 0.
  return float(np.std(values, ddof=1)) if len(values) >= 2 else math.nan


def summarize(
  results: Mapping[str, Any], metrics: Iterable[str] = METRICS
) -> dict[str, dict[str, dict[str, Any]]]:
  """Mean and spread over seeds of each metric, per arm.

  Args:
    results: a study's results (see the module docstring for missing data).
    metrics: metric names of a run, dotted for nested records.

  Returns:
    `summary[arm][metric] = {"mean", "std", "n", "values", "seeds"}`, where `std` is the
    sample standard deviation (ddof=1), nan when n < 2; `mean` is nan when n = 0. `values` and
    `seeds` are in the study's seed order. Every arm appears, even one with no runs.

  Raises:
    ValueError: if `results` has no list of runs.
  """
  metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
  cells = run_table(results)
  seeds = seeds_of(results)
  extra = sorted({s for (_, s) in cells if s not in seeds}, key=repr)
  summary: dict[str, dict[str, dict[str, Any]]] = {}
  for name in arm_names(results):
    summary[name] = {}
    for metric in metrics:
      pairs = [(s, metric_value(cells.get((name, s)), metric)) for s in seeds + extra]
      pairs = [(s, v) for s, v in pairs if v is not None]
      values = [v for _, v in pairs]
      summary[name][metric] = {
        "mean": float(np.mean(values)) if values else math.nan,
        "std": sample_std(values),
        "n": len(values),
        "values": values,
        "seeds": [s for s, _ in pairs],
      }
  return summary
