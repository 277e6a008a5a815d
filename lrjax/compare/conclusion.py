"""What a study concludes, as data: the `conclusion` entry of results.json, so that other tools
read the study's verdicts instead of parsing its Markdown.

* `recommended`: per budget ("all" without budgets), the arm chosen on validation accuracy, its
  mean test accuracy, and every other arm's verdict against it on test data, the confirmation
  (`lrjax.compare.budgets.recommendation`);
* `comparisons`: per budget, for each metric of the report's table, every arm against the first
  (the baseline) on test data (`lrjax.stats.paired_comparison`): the report's paired tables.

Each verdict keeps its difference, its interval at the family's level, its p-values (raw,
Holm-adjusted, sign-flip, equivalence), its margin and the test it read. A value that is not a
finite number is null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrjax import stats
from lrjax.compare import budgets, declared

KEYS = (
  "arm",
  "baseline",
  "metric",
  "n",
  "mean_difference",
  "ci_low_adjusted",
  "ci_high_adjusted",
  "p_value",
  "p_adjusted",
  "p_permutation",
  "p_equivalence_adjusted",
  "margin",
  "test",
  "verdict",
)
METRICS = ("final_test_accuracy", "final_test_loss")


def _finite(value: Any) -> Any:
  return None if isinstance(value, float) and not math.isfinite(value) else value


def verdict_row(row: Mapping[str, Any]) -> dict[str, Any]:
  """A paired comparison's row, as results.json keeps it.

  Args:
    row: a row of `lrjax.stats.paired_comparison`.
  """
  return {k: _finite(row.get(k)) for k in KEYS}


def conclusion(results: Mapping[str, Any]) -> dict[str, Any]:
  """The study's conclusion (see the module docstring).

  Args:
    results: the study's results (`lrjax.compare.results.collect`).
  """
  out: dict[str, Any] = {"recommended": {}, "comparisons": {}}
  for budget in results.get("budgets") or [None]:
    sub = results if budget is None else stats.at_budget(results, budget)
    key = "all" if budget is None else str(budget)
    rec = budgets.recommendation(sub, None)
    out["recommended"][key] = {
      "arm": rec["best"],
      "selected_on": budgets.SELECT_ON,
      "confirmed_on": budgets.CONFIRM_ON,
      "test_accuracy": _finite(rec["test"]),
      "verdicts": [verdict_row(r) for r in rec["rows"]],
    }
    if len(stats.arm_names(sub)) > 1:
      out["comparisons"][key] = {
        metric: [
          verdict_row(r)
          for r in stats.paired_comparison(sub, None, metric, **declared.tests(sub, metric))
        ]
        for metric in METRICS
      }
  return out
