"""Paired comparisons of arms against a baseline, seed by seed, and their verdicts.

One comparison (`paired_stats`) reads the per-seed differences d_i = arm - baseline with every
test of `lrjax.stats.significance`. A family of comparisons (`paired_comparison`: every arm
against one baseline) is one family of tests, declared before it is read: the difference test
(the paired t-test by default, or the exact sign-flip test) and, where a margin is given, the
equivalence test (TOST) each have their p-values Holm-adjusted over the family, and the
interval is widened to the Bonferroni level of the family (1 - alpha/m), so an interval that
excludes 0 always comes with a verdict of better or worse.

A verdict is one of:

* "better" or "worse": the adjusted difference test rejects no difference;
* "equivalent": it does not, and the adjusted TOST says the difference lies within the margin;
* "undecided": neither (the seeds cannot tell);
* `NEEDS_SEEDS`: fewer than two shared seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lrjax.stats import significance
from lrjax.stats.runs import (
  arm_names,
  higher_is_better_for,
  label,
  metric_value,
  run_table,
  sample_std,
  seeds_of,
)

NEEDS_SEEDS = "needs >= 2 seeds"
VERDICTS = ("better", "worse", "equivalent", "undecided", NEEDS_SEEDS)
TESTS = ("t", "permutation")
ACCURACY_MARGIN = 0.005  # half a point: the default equivalence margin of an accuracy


def paired_stats(
  differences: Sequence[float],
  *,
  higher_is_better: bool = True,
  alpha: float = 0.05,
  margin: float | None = None,
  test: str = "t",
) -> dict[str, Any]:
  r"""Every test of one comparison, from its per-seed differences, and its verdict at level
  alpha (no multiplicity adjustment: `paired_comparison` adjusts a family).

  .. math::
    \bar d \pm t_{1-\alpha/2,\,n-1}\,\frac{s_d}{\sqrt n}, \qquad
    p = 2\,P\!\left(T_{n-1} > \frac{|\bar d|}{s_d/\sqrt n}\right)

  where :math:`d_i` = (arm - baseline) on seed :math:`i` and :math:`s_d` their sample std (see
  `lrjax.stats.significance` for the sign-flip test, TOST and the degenerate cases).

  Args:
    differences: the per-seed differences, all finite.
    higher_is_better: the metric's direction; for a loss pass False so a negative difference is
      "better".
    alpha: the test level; the interval has confidence 1 - alpha.
    margin: the equivalence margin in the metric's units (None: no equivalence test).
    test: the difference test the verdict reads: "t" (the paired t-test) or "permutation"
      (the exact sign-flip test).

  Returns:
    `{"n", "mean_difference", "std_difference", "ci_low", "ci_high", "p_value" (the t-test's),
    "p_permutation", "p_equivalence" (nan without a margin), "margin", "test", "verdict"}`.

  Raises:
    ValueError: if `alpha` is not in (0, 1), `test` is unknown, or a difference is not finite.
  """
  if not 0 < alpha < 1:
    raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
  if test not in TESTS:
    raise ValueError(f"test must be one of {list(TESTS)}, got {test!r}")
  d = np.asarray(differences, dtype=np.float64).reshape(-1)
  if not np.all(np.isfinite(d)):
    raise ValueError(f"differences must be finite, got {list(differences)!r}")
  p, low, high = significance.t_test(d, alpha)
  out = {
    "n": int(d.size),
    "mean_difference": float(d.mean()) if d.size else math.nan,
    "std_difference": sample_std(d),
    "ci_low": low,
    "ci_high": high,
    "p_value": p,
    "p_permutation": significance.sign_flip_p(d),
    "p_equivalence": significance.tost_p(d, margin) if margin is not None else math.nan,
    "margin": margin,
    "test": test,
  }
  p_difference = out["p_value"] if test == "t" else out["p_permutation"]
  out["verdict"] = verdict(
    p_difference, out["p_equivalence"], out["mean_difference"], higher_is_better, alpha
  )
  return out


def verdict(
  p_difference: float, p_equivalence: float, mean: float, higher_is_better: bool, alpha: float
) -> str:
  """The verdict of one comparison from its (adjusted) p-values (see the module docstring).

  Args:
    p_difference: the difference test's p-value (nan: fewer than two seeds).
    p_equivalence: the equivalence test's p-value (nan: none was run).
    mean: the mean difference, arm - baseline.
    higher_is_better: the metric's direction.
    alpha: the level both tests are read at.
  """
  if not math.isfinite(p_difference):
    return NEEDS_SEEDS
  if p_difference < alpha:
    return "better" if (mean > 0) == higher_is_better else "worse"
  if math.isfinite(p_equivalence) and p_equivalence < alpha:
    return "equivalent"
  return "undecided"


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


def default_margin(metric: str) -> float | None:
  """The equivalence margin of a metric unless one is given: half a point for an accuracy,
  none for other metrics (a loss has no scale shared across studies).

  Args:
    metric: the metric's name.
  """
  return ACCURACY_MARGIN if "accuracy" in metric.rsplit(".", 1)[-1] else None


def paired_comparison(
  results: Mapping[str, Any],
  baseline: str | None = None,
  metric: str = "final_test_accuracy",
  *,
  higher_is_better: bool | None = None,
  alpha: float = 0.05,
  adjust: str | None = "holm",
  margin: float | str | None = "auto",
  test: str = "t",
) -> list[dict[str, Any]]:
  """Each arm against the baseline, paired by seed over the seeds both have: one family of
  tests (see the module docstring).

  Args:
    results: a study's results.
    baseline: the arm to compare against; default the first of `results["arms"]`.
    metric: the run metric compared (dotted for nested records).
    higher_is_better: the metric's direction; default inferred from the name (losses and
      seconds: lower is better).
    alpha: the family's level.
    adjust: "holm" to adjust the family (Holm's p-values, Bonferroni intervals), or None to read
      every comparison alone.
    margin: the equivalence margin in the metric's units, "auto" (`default_margin`: half a
      point for an accuracy) or None (no equivalence test).
    test: the difference test the verdicts read, "t" or "permutation" (both are reported).

  Returns:
    One row per other arm, in column order, each the keys of `paired_stats` plus `{"arm",
    "label", "baseline", "metric", "seeds", "differences", "p_adjusted",
    "p_equivalence_adjusted", "ci_low_adjusted", "ci_high_adjusted"}`. Differences are arm -
    baseline, and the verdict reads the adjusted p-values.

  Raises:
    ValueError: if `results` has no runs list or no arms, `baseline` is not one of them, or
      `adjust` or `test` is unknown.
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
  if margin == "auto":
    margin = default_margin(metric)
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
    stats = paired_stats(
      diffs, higher_is_better=higher_is_better, alpha=alpha, margin=margin, test=test
    )
    rows.append(row | stats)
  _adjust(rows, adjust, alpha, higher_is_better)
  return rows


def _adjust(rows: list[dict], adjust: str | None, alpha: float, higher_is_better: bool) -> None:
  """The family's adjusted p-values, intervals and verdicts, into `rows`."""
  key = "p_value" if not rows or rows[0]["test"] == "t" else "p_permutation"
  raw, raw_eq = [r[key] for r in rows], [r["p_equivalence"] for r in rows]
  family = sum(1 for p in raw if math.isfinite(p))
  if adjust == "holm":
    adjusted, adjusted_eq = holm(raw), holm(raw_eq)
  else:
    adjusted, adjusted_eq = raw, raw_eq
  level = alpha / family if adjust == "holm" and family > 1 else alpha
  for row, p, p_eq in zip(rows, adjusted, adjusted_eq):
    row["p_adjusted"], row["p_equivalence_adjusted"] = p, p_eq
    _, low, high = significance.t_test(row["differences"], level)
    row["ci_low_adjusted"], row["ci_high_adjusted"] = low, high
    row["verdict"] = verdict(p, p_eq, row["mean_difference"], higher_is_better, alpha)
