"""Statistics over seeds: per-arm summaries and paired comparisons against a baseline.

A study's results hold one run per (arm, seed); an arm is a schedule, or any set of overrides
(an optimizer, a weight decay). Runs of different arms that share a seed share the
initialisation and data order, so arms are compared seed by seed (a paired t-test) rather than
as two independent samples: the seed-to-seed spread cancels out of the differences. Comparing k
arms with one baseline makes k tests; their p-values are Holm-adjusted so that the chance of
calling any equal arm different stays at most alpha (the verdict reads the adjusted p-value).

A results dict names its arms under "arms" and each run's under "arm"
(`lrjax.compare.results.load` reads a results.json written before they had those names).

Missing data: an (arm, seed) run that is absent, or whose metric is absent, None or not finite,
counts as missing; every statistic reports the `n` it was computed from.

Every function given `results` raises ValueError when it has no list of runs.

Example:
  >>> from lrjax import stats
  >>> accs = {"constant": [0.80, 0.82, 0.81], "cosine": [0.84, 0.85, None]}  # a seed missing
  >>> runs = [{"arm": s, "seed": i, "final_test_accuracy": a}
  ...         for s in accs for i, a in enumerate(accs[s])]
  >>> summary = stats.summarize({"arms": list(accs), "runs": runs}, ["final_test_accuracy"])
  >>> cell = summary["cosine"]["final_test_accuracy"]
  >>> round(cell["mean"], 3), cell["n"], cell["seeds"]
  (0.845, 2, [0, 1])
"""

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
NEEDS_SEEDS = "needs >= 2 seeds"


def _check_results(results: Any) -> None:
  if not isinstance(results, Mapping) or not isinstance(results.get("runs"), Sequence):
    raise ValueError(f"results must be a mapping with a list of 'runs', got {type(results)!r}")


def arm_names(results: Mapping[str, Any]) -> list[str]:
  """The arms in column order: `results["arms"]`, then any others the runs name.

  Args:
    results: a study's results (`{"runs": [...], "arms": [...], ...}`).
  """
  _check_results(results)
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
  _check_results(results)
  if results.get("seeds"):
    return list(results["seeds"])
  return sorted({run.get("seed") for run in results["runs"] if run.get("seed") is not None})


def run_table(results: Mapping[str, Any]) -> dict[tuple[str, Any], Mapping[str, Any]]:
  """The runs keyed by (arm, seed); when a cell was run twice the later run counts.

  Args:
    results: a study's results (`{"runs": [...], "arms": [...], ...}`).
  """
  _check_results(results)
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
  _check_results(results)
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


def _sample_std(values: Sequence[float]) -> float:
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
        "std": _sample_std(values),
        "n": len(values),
        "values": values,
        "seeds": [s for s, _ in pairs],
      }
  return summary


def paired_stats(
  differences: Sequence[float], *, higher_is_better: bool = True, alpha: float = 0.05
) -> dict[str, Any]:
  r"""Mean, t confidence interval, two-sided paired t-test and verdict for per-seed differences.

  .. math::
    \bar d \pm t_{1-\alpha/2,\,n-1}\,\frac{s_d}{\sqrt n}, \qquad
    p = 2\,P\!\left(T_{n-1} > \frac{|\bar d|}{s_d/\sqrt n}\right)

  where :math:`d_i` = (arm - baseline) on seed :math:`i` and :math:`s_d` their sample std.

  With zero spread (:math:`s_d = 0`, e.g. identical runs) the t statistic is 0/0 or x/0: here
  p = 1 when every difference is 0 and p = 0 otherwise, with the interval collapsed to
  :math:`\bar d`, so no NaN or warning arises. With n < 2 the interval and p are nan.

  Args:
    differences: the per-seed differences, all finite.
    higher_is_better: the metric's direction; for a loss pass False so a negative difference is
      "better".
    alpha: the test level; the interval has confidence 1 - alpha.

  Returns:
    `{"n", "mean_difference", "std_difference", "ci_low", "ci_high", "p_value", "verdict"}`; the
    verdict is "better" or "worse" when p < alpha, "no significant difference at 5%" (with
    alpha's percentage) otherwise, or "needs >= 2 seeds".

  Raises:
    ValueError: if `alpha` is not in (0, 1) or a difference is not finite.
  """
  if not 0 < alpha < 1:
    raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
  d = np.asarray(differences, dtype=np.float64).reshape(-1)
  if not np.all(np.isfinite(d)):
    raise ValueError(f"differences must be finite, got {list(differences)!r}")
  n = int(d.size)
  out = {
    "n": n,
    "mean_difference": float(d.mean()) if n else math.nan,
    "std_difference": _sample_std(d),
    "ci_low": math.nan,
    "ci_high": math.nan,
    "p_value": math.nan,
    "verdict": NEEDS_SEEDS,
  }
  if n < 2:
    return out
  from scipy import stats as sps  # here: summaries and figures need no scipy

  mean, se = out["mean_difference"], out["std_difference"] / math.sqrt(n)
  if se == 0:
    out["p_value"] = 1.0 if mean == 0 else 0.0
    out["ci_low"] = out["ci_high"] = mean
  else:
    df = n - 1
    half = float(sps.t.ppf(1 - alpha / 2, df)) * se
    out["p_value"] = float(2 * sps.t.sf(abs(mean) / se, df))
    out["ci_low"], out["ci_high"] = mean - half, mean + half
  out["verdict"] = _verdict(out["p_value"], mean, higher_is_better, alpha)
  return out


def seeds_for(std_difference: float, delta: float, alpha: float = 0.05, power: float = 0.8) -> int:
  r"""Seeds a paired comparison needs to tell a difference of `delta` at this spread.

  .. math:: n = \left\lceil \left( \frac{(z_{1-\alpha/2} + z_{\text{power}})\, s_d}{\delta}
     \right)^2 \right\rceil

  the normal approximation of a two-sided paired test at level alpha with the given power, from
  the observed standard deviation :math:`s_d` of the per-seed differences; at least 2. NaN where
  the spread is unknown (fewer than 2 seeds).

  Args:
    std_difference: :math:`s_d`, or nan when unknown.
    delta: the difference to detect, positive, in the metric's units.
    alpha: the test level.
    power: the probability of detecting a true difference of `delta`.

  Raises:
    ValueError: for a `delta` that is not positive, or an `alpha` or `power` outside (0, 1).
  """
  if not delta > 0:
    raise ValueError(f"delta must be positive, got {delta!r}")
  if not (0 < alpha < 1 and 0 < power < 1):
    raise ValueError(f"alpha and power must be in (0, 1), got {alpha!r} and {power!r}")
  if not math.isfinite(std_difference):
    return math.nan
  from scipy import stats as sps

  z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
  return max(2, math.ceil((z * std_difference / delta) ** 2))


def _verdict(p: float, mean: float, higher_is_better: bool, alpha: float) -> str:
  if not math.isfinite(p):
    return NEEDS_SEEDS
  if p < alpha:
    return "better" if (mean > 0) == higher_is_better else "worse"
  return f"no significant difference at {alpha:.0%}"


def holm(p_values: Sequence[float]) -> list[float]:
  r"""Holm's step-down adjustment of a family of p-values, in their given order.

  .. math::
    \tilde p_{(i)} = \min\Bigl(1,\ \max_{j \le i}\,(m - j + 1)\,p_{(j)}\Bigr)

  where :math:`p_{(1)} \le \dots \le p_{(m)}` are the p-values sorted ascending and m their number.
  Rejecting where :math:`\tilde p < \alpha` keeps the family-wise error rate at most alpha under
  any dependence between the tests (Holm 1979). A nan p-value (a test that could not run) stays nan
  and does not count in m.

  Args:
    p_values: the raw p-values, each in [0, 1] or nan.

  Returns:
    The adjusted p-values, same order and length.

  Raises:
    ValueError: if a p-value is outside [0, 1] (and not nan).

  Example:
    >>> from lrjax.stats import holm
    >>> [round(p, 2) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
  """
  p = np.asarray(p_values, dtype=np.float64).reshape(-1)
  if np.any((p < 0) | (p > 1)):
    raise ValueError(f"p_values must be in [0, 1] or nan, got {list(p_values)!r}")
  out = np.full(p.shape, np.nan)
  finite = np.flatnonzero(~np.isnan(p))
  m = finite.size
  order = finite[np.argsort(p[finite], kind="stable")]
  running = 0.0
  for rank, i in enumerate(order):
    # the running maximum keeps the adjusted values in the order of the raw ones
    running = max(running, min(1.0, (m - rank) * p[i]))
    out[i] = running
  return out.tolist()


def paired_comparison(
  results: Mapping[str, Any],
  baseline: str | None = None,
  metric: str = "final_test_accuracy",
  *,
  higher_is_better: bool | None = None,
  alpha: float = 0.05,
  adjust: str | None = "holm",
) -> list[dict[str, Any]]:
  """Each arm against the baseline, paired by seed over the seeds both have.

  Args:
    results: a study's results.
    baseline: the arm to compare against; default the first of `results["arms"]`.
    metric: the run metric compared (dotted for nested records).
    higher_is_better: the metric's direction; default inferred from the name (losses and
      seconds: lower is better).
    alpha: the test level (see `paired_stats`).
    adjust: "holm" to adjust the rows' p-values as one family (see `holm`), or None to leave
      them as they are.

  Returns:
    One row per other arm, in column order, each `{"arm", "label", "baseline", "metric",
    "seeds", "differences", "p_adjusted"}` plus the keys of `paired_stats`. Differences are
    arm - baseline; `p_value` is the raw p-value, `p_adjusted` the Holm-adjusted one (the
    raw one with `adjust=None`), and the verdict is read from `p_adjusted`.

  Raises:
    ValueError: if `results` has no runs list or no arms, `baseline` is not one of them, or
      `adjust` is not "holm" or None.
  """
  if adjust not in ("holm", None):
    raise ValueError(f"adjust must be 'holm' or None, got {adjust!r}")
  names = arm_names(results)
  if not names:
    raise ValueError("results must name at least one arm, got none")
  if baseline is None:
    baseline = names[0]
  if baseline not in names:
    raise ValueError(f"baseline must be one of {names}, got {baseline!r}")
  if higher_is_better is None:
    higher_is_better = higher_is_better_for(metric)
  cells = run_table(results)
  seeds = seeds_of(results)
  seeds += sorted({s for (_, s) in cells if s not in seeds}, key=repr)
  rows = []
  for name in names:
    if name == baseline:
      continue
    shared, diffs = [], []
    for s in seeds:
      a = metric_value(cells.get((name, s)), metric)
      b = metric_value(cells.get((baseline, s)), metric)
      if a is not None and b is not None:
        shared.append(s)
        diffs.append(a - b)
    row = {
      "arm": name,
      "label": label(results, name),
      "baseline": baseline,
      "metric": metric,
      "seeds": shared,
      "differences": diffs,
    }
    row.update(paired_stats(diffs, higher_is_better=higher_is_better, alpha=alpha))
    rows.append(row)
  raw = [r["p_value"] for r in rows]
  for row, p in zip(rows, holm(raw) if adjust == "holm" else raw):
    row["p_adjusted"] = p
    row["verdict"] = _verdict(p, row["mean_difference"], higher_is_better, alpha)
  return rows
