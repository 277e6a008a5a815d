"""A study across budgets: final accuracy and loss per arm and budget, the compute each approach
spent, and a recommendation per budget.

At each budget the recommended arm is the one with the highest mean final *validation* accuracy:
validation data chooses. The final seeds' *test* accuracy, which chose nothing, confirms: every
other arm is compared with the recommended one seed by seed, as one family of tests declared
before it is read (`lrjax.stats.paired_comparison` with `config.study.test` and `.margin`:
Holm-adjusted over the arms, intervals at the family's level): one significantly lower is worse,
one significantly higher is better (the choice on validation did not hold on test), one that two
one-sided tests put within the margin is equivalent, and the others are undecided with the seeds
the study has (with how many seeds their spread would need to detect a 1-point difference). A
study without
validation data recommends nothing. A forked arm's runs at each budget are runs of their own
(they resume from the trunk's checkpoint where their cooldown starts), so they are compared
exactly as independent runs are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrjax import stats
from lrjax.compare import declared

# Holm steps down, the intervals do not: a verdict may come with an interval that reaches 0.
CONFIRMATION = (
  "Chosen on final validation accuracy (validation data chooses); confirmed on the final "
  "seeds' test accuracy, which chose nothing: every other arm against it, paired by seed, one "
  "family declared before it was read (differences in points, intervals at the family's "
  "Bonferroni level; Holm's step-down verdicts can decide a difference whose interval still "
  "reaches 0)"
)


def epochs(n: int) -> str:
  return f"{n} epoch" if n == 1 else f"{n} epochs"


def _cell(summary: Mapping[str, Any], decimals: int) -> str:
  if summary["n"] == 0:
    return "n/a"
  spread = f" ± {summary['std']:.{decimals}f}" if summary["n"] >= 2 else ""
  return f"{summary['mean']:.{decimals}f}{spread}"


SELECT_ON = "final_validation_accuracy"  # what chooses the recommended arm
CONFIRM_ON = "final_test_accuracy"  # what confirms it: data that chose nothing


def recommendation(results: Mapping[str, Any], budget: int | None, alpha: float = 0.05) -> dict:
  """`{"best", "budget", "not_worse": [arms not worse than it], "rows", "test"}` at `budget`:
  chosen on validation accuracy (see the module docstring); `rows` every other arm against it on
  test accuracy, the confirmation (`lrjax.stats.paired_comparison`); `test` the best's mean test
  accuracy. `budget` None: all of `results` (a study without budgets, or one budget's results
  already, `lrjax.stats.at_budget`)."""
  sub = results if budget is None else stats.at_budget(results, budget)
  summary = stats.summarize(sub, (SELECT_ON, "final_test_accuracy"))
  means = {n: s[SELECT_ON]["mean"] for n, s in summary.items()}
  ranked = [n for n in stats.arm_names(sub) if not math.isnan(means[n])]
  if not ranked:
    return {"best": None, "budget": budget, "not_worse": [], "rows": [], "test": math.nan}
  best = max(ranked, key=lambda n: means[n])
  rows = (
    stats.paired_comparison(
      sub, baseline=best, metric=CONFIRM_ON, alpha=alpha, **declared.tests(sub, CONFIRM_ON)
    )
    if len(ranked) > 1
    else []
  )
  worse = {r["arm"] for r in rows if r["verdict"] == "worse"}
  return {
    "best": best,
    "budget": budget,
    "not_worse": [n for n in ranked if n != best and n not in worse],
    "rows": rows,
    "test": summary[best]["final_test_accuracy"]["mean"],
  }


def recommendation_text(results: Mapping[str, Any], budget: int | None) -> str:
  """The recommendation at `budget` in words (None: as `recommendation`): the arm chosen on
  validation accuracy with its test accuracy, then every other arm against it on test data (the
  confirmation), by verdict, each with its difference and family-level interval in points."""
  rec = recommendation(results, budget)
  if rec["best"] is None:
    return "no finished runs with validation data: nothing recommended"
  parts = {v: [] for v in ("worse", "equivalent", "undecided", "better")}
  for r in rec["rows"]:
    if r["verdict"] not in parts:
      continue
    low, high = r["ci_low_adjusted"], r["ci_high_adjusted"]
    what = f"{100 * r['mean_difference']:+.1f} pt"
    if math.isfinite(low):
      what += f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    if r["verdict"] == "undecided":
      need = stats.seeds_for(r["std_difference"], 0.01)
      tell = f"; {need} would detect 1 pt" if isinstance(need, int) else ""
      what += f", {r['n']} seeds{tell}"
    parts[r["verdict"]].append(f"{stats.label(results, r['arm'])} ({what})")
  said = [f"{stats.label(results, rec['best'])} (test accuracy {rec['test']:.3f})"]
  if parts["better"]:  # the choice on validation did not hold on test: say so first
    said.append(f"better on test: {', '.join(parts['better'])}")
  for verdict in ("worse", "equivalent", "undecided"):
    said.append(f"{verdict}: {', '.join(parts[verdict]) or 'none'}")
  return "; ".join(said)


def compute_epochs(results: Mapping[str, Any], name: str) -> float:
  """Epochs one seed of arm `name` trained over all budgets: its runs' own epochs, plus its
  trunk for a forked arm (shared by its forks)."""
  seeds = stats.seeds_of(results)
  seed = str(seeds[0]) if seeds else None
  own = sum(
    r.get("epochs_trained") or 0
    for r in results["runs"]
    if r["arm"] == name and seeds and r["seed"] == seeds[0]
  )
  return own + (results.get("trunks", {}).get(name, {}).get(seed, 0) or 0)


def budget_lines(results: Mapping[str, Any]) -> list[str]:
  """The Markdown section: accuracy and loss against budget, compute, recommendations."""
  budgets, names = results["budgets"], stats.arm_names(results)
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
  lines.append(CONFIRMATION + ":")
  lines.append("")
  for b in budgets:
    lines.append(f"- {epochs(b)}: {recommendation_text(results, b)}")
  return lines
