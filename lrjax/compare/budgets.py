"""A study across budgets: final accuracy and loss per arm and budget, the compute each approach
spent, and a recommendation per budget.

At each budget the best arm is the one with the highest mean final test accuracy; every other arm
is compared with it seed by seed (paired t-test, Holm-adjusted over the arms), and the arms whose
accuracy is not significantly lower are listed with it: any of them is a defensible choice at that
budget. A forked arm's runs at each budget are runs of their own (they resume from the trunk's
checkpoint where their cooldown starts), so they are compared exactly as independent runs are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrjax import stats


def epochs(n: int) -> str:
  return f"{n} epoch" if n == 1 else f"{n} epochs"


def _cell(summary: Mapping[str, Any], decimals: int) -> str:
  if summary["n"] == 0:
    return "n/a"
  spread = f" ± {summary['std']:.{decimals}f}" if summary["n"] >= 2 else ""
  return f"{summary['mean']:.{decimals}f}{spread}"


def recommendation(results: Mapping[str, Any], budget: int, alpha: float = 0.05) -> dict:
  """`{"best", "not_worse": [arms not significantly worse than best], "rows"}` at `budget`."""
  sub = stats.at_budget(results, budget)
  summary = stats.summarize(sub, ("final_test_accuracy",))
  means = {n: s["final_test_accuracy"]["mean"] for n, s in summary.items()}
  ranked = [n for n in stats.schedule_names(sub) if not math.isnan(means[n])]
  if not ranked:
    return {"best": None, "not_worse": [], "rows": []}
  best = max(ranked, key=lambda n: means[n])
  rows = stats.paired_comparison(sub, baseline=best, alpha=alpha) if len(ranked) > 1 else []
  worse = {r["schedule"] for r in rows if r["verdict"] == "worse"}
  return {
    "best": best,
    "not_worse": [n for n in ranked if n != best and n not in worse],
    "rows": rows,
  }


def compute_epochs(results: Mapping[str, Any], name: str) -> float:
  """Epochs one seed of arm `name` trained over all budgets: its runs' own epochs, plus its
  trunk for a forked arm (shared by its forks)."""
  seeds = stats.seeds_of(results)
  seed = str(seeds[0]) if seeds else None
  own = sum(
    r.get("epochs_trained") or 0
    for r in results["runs"]
    if r["schedule"] == name and seeds and r["seed"] == seeds[0]
  )
  return own + (results.get("trunks", {}).get(name, {}).get(seed, 0) or 0)


def budget_lines(results: Mapping[str, Any]) -> list[str]:
  """The Markdown section: accuracy and loss against budget, compute, recommendations."""
  budgets, names = results["budgets"], stats.schedule_names(results)
  lines = ["# Accuracy against budget", ""]
  for title, metric, decimals in (
    ("Test accuracy", "final_test_accuracy", 3),
    ("Test loss", "final_test_loss", 4),
  ):
    per = {b: stats.summarize(stats.at_budget(results, b), (metric,)) for b in budgets}
    lines += [f"{title} (final epoch, mean ± std over seeds), by budget in epochs:", ""]
    lines.append("| Arm | " + " | ".join(f"{b} ep" for b in budgets) + " |")
    lines.append("|---|" + "---:|" * len(budgets))
    for n in names:
      cells = [_cell(per[b][n][metric], decimals) for b in budgets]
      lines.append(f"| {stats.label(results, n)} | " + " | ".join(cells) + " |")
    lines.append("")
  lines += ["Compute per seed over all budgets (epochs of training):", ""]
  for n in names:
    trunk = results.get("trunks", {}).get(n)
    how = " (a shared trunk, then one cooldown per budget)" if trunk else ""
    lines.append(f"- {stats.label(results, n)}: {compute_epochs(results, n):g}{how}")
  lines += ["", "## Recommendation per budget", ""]
  for b in budgets:
    rec = recommendation(results, b)
    if rec["best"] is None:
      lines.append(f"- {epochs(b)}: no finished runs")
      continue
    others = ", ".join(stats.label(results, n) for n in rec["not_worse"]) or "none"
    lines.append(
      f"- {epochs(b)}: best {stats.label(results, rec['best'])}; not significantly worse "
      f"(paired t-test, Holm-adjusted, 5%): {others}"
    )
  return lines
