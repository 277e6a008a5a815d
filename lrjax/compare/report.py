"""The study's report: the chapter's Table 1.1 with spread over seeds, paired tests, and a CSV."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from typing import Any

from lrjax import stats
from lrjax.compare import arms_table, budgets, declared
from lrjax.compare.tuned_report import tuning_lines
from lrjax.files.atomic import write_atomic

# The chapter's Table 1.1 reports the final-epoch test accuracy and loss.
TABLE_ROWS = (("Accuracy", "final_test_accuracy", 3), ("Loss", "final_test_loss", 4))
CSV_FIELDS = (
  "arm",
  "label",
  "seed",
  "final_test_accuracy",
  "final_test_loss",
  "final_validation_accuracy",
  "final_validation_loss",
  "best_epoch",
  "test_accuracy_at_best_epoch",
  "final_train_loss",
  "seconds",
  "num_snapshots",
  "ensemble_accuracy",
  "last_snapshot_accuracy",
  "ensemble_loss",
)
_ENSEMBLE = ("num_snapshots", "ensemble_accuracy", "last_snapshot_accuracy", "ensemble_loss")


def _config_field(config: Any, name: str) -> Any:
  """`config.name`, also one level down (a study config may nest the training config)."""
  if isinstance(config, Mapping):
    if config.get(name) is not None:
      return config[name]
    for value in config.values():
      if isinstance(value, Mapping) and value.get(name) is not None:
        return value[name]
    return None
  return getattr(config, name, None)


def _md(text: Any) -> str:
  return str(text).replace("|", r"\|")


def _num(x: float, decimals: int, sign: bool = False) -> str:
  return "n/a" if not math.isfinite(x) else f"{x:{'+' if sign else ''}.{decimals}f}"


def _p(p: float) -> str:
  if not math.isfinite(p):
    return "n/a"
  return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _cell(cell: Mapping[str, Any], decimals: int, num_seeds: int) -> str:
  n = cell["n"]
  if n == 0:
    return "n/a (n=0)"
  text = _num(cell["mean"], decimals)
  if n >= 2:
    text += f" ± {_num(cell['std'], decimals)}"
  return text if n == num_seeds else f"{text} (n={n})"


def _table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
  lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
  lines.append("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return lines


def _caption(results: Mapping[str, Any], num_seeds: int) -> str:
  config = results.get("config") or {}
  model, dataset = _config_field(config, "model"), _config_field(config, "dataset")
  epochs = _config_field(config, "num_epochs")
  run_budgets = {r.get("budget") for r in results.get("runs", [])}
  if len(run_budgets) == 1 and None not in run_budgets:  # one budget's runs: that long
    epochs = run_budgets.pop()
  parts = [str(model) if model else "", f"on {dataset}" if dataset else ""]
  train_fn = (config.get("study") or {}).get("train_fn") if isinstance(config, Mapping) else None
  if train_fn:  # the user's function trains: lrjax's model and dataset fields mean nothing
    parts = [f"the training function {train_fn}"]
  setting = " ".join(p for p in parts if p)
  if epochs:
    length = budgets.epochs(epochs)
    setting = f"{setting}, {length}" if setting else length
  seeds = stats.seeds_of(results)
  seed_text = f"seeds {', '.join(map(str, seeds))}" if seeds else "no seeds"
  setting = f"{setting}, {seed_text}" if setting else seed_text
  spread = (
    f"mean ± sample std over {num_seeds} seeds" if num_seeds >= 2 else "a single seed, no spread"
  )
  title = "The arms compared" if train_fn else "Table 1.1 (reproduced)"
  return (
    f"*{title}: {setting}. Test accuracy and loss, {spread}; final epoch."
    " (n=k) marks a cell with fewer runs.*"
  )


def _comparison_lines(results: Mapping[str, Any], baseline: str) -> list[str]:
  base = stats.label(results, baseline)
  tests = declared.tests(results, "final_test_accuracy")
  reads = "the exact sign-flip test" if tests["test"] == "permutation" else "the paired t-test"
  equivalent = (
    f"For accuracy, *equivalent* means two one-sided tests (Holm-adjusted) put the difference "
    f"within ±{100 * tests['margin']:g} points, and *seeds for 1 pt*"
    if tests["margin"]
    else "For accuracy (no equivalence margin declared), *seeds for 1 pt*"
  )
  lines = [
    f"## Paired comparison with {_md(base)}",
    "",
    f"Difference = arm - {_md(base)} on the same seed, over the seeds both ran. One family "
    "of tests per metric, declared before it is read (`config.study.test`, `.margin`): p from "
    "the two-sided paired t-test; p (perm.) from the exact sign-flip test, which assumes no "
    "normality (with n seeds it cannot go below 2/2^n); the verdict reads "
    f"{reads}, Holm-adjusted over the table's comparisons (p (Holm)); the interval is the "
    "t-test's at the Bonferroni level of the family (95% over all its comparisons), so with the "
    "t-test declared one that excludes 0 always comes with a verdict (Holm, stepping down, "
    "can also decide one whose interval reaches 0). "
    f"{equivalent} is how many seeds the observed spread of the differences would "
    "need to detect a 1-point difference (two-sided 5%, power 80%, from the noncentral t). A "
    "difference the seeds cannot tell is *undecided*.",
  ]
  for title, metric, decimals in TABLE_ROWS:
    direction = "lower" if not stats.higher_is_better_for(metric) else "higher"
    rows, accuracy = [], stats.higher_is_better_for(metric)
    for r in stats.paired_comparison(results, baseline, metric, **declared.tests(results, metric)):
      row = [
        _md(r["label"]),
        _num(r["mean_difference"], decimals, True),
        interval(r, decimals),
        _p(r["p_value"]),
        _p(r["p_adjusted"]),
        _p(r["p_permutation"]),
        verdict_text(r),
        str(r["n"]),
      ]
      if accuracy:
        row.append(_seeds_needed(r))
      rows.append(row)
    lines += ["", f"{title} ({direction} is better):", ""]
    header = ["Arm", "Difference", "Interval (family 95%)", "p", "p (Holm)", "p (perm.)"]
    header += ["Verdict", "n"]
    align = ["l", "r", "r", "r", "r", "r", "l", "r"]
    if accuracy:
      header, align = header + ["Seeds for 1 pt"], align + ["r"]
    lines += _table(header, rows, align)
  return lines


def _recommendation_lines(results: Mapping[str, Any]) -> list[str]:
  return [
    "## Recommendation",
    "",
    budgets.CONFIRMATION + ": " + budgets.recommendation_text(results, None) + ".",
  ]


def verdict_text(row: Mapping[str, Any]) -> str:
  """A paired row's verdict in words: better, worse, equivalent within its margin, or undecided
  with the seeds it had.

  Args:
    row: a row of `lrjax.stats.paired_comparison`.
  """
  if row["verdict"] == "undecided":
    return f"undecided with {row['n']} seeds"
  if row["verdict"] == "equivalent":
    return f"equivalent within ±{100 * row['margin']:g} pt"
  return row["verdict"]


def interval(row: Mapping[str, Any], decimals: int) -> str:
  """A paired row's family-level interval, `[low, high]`, or n/a with fewer than two seeds.

  Args:
    row: a row of `lrjax.stats.paired_comparison`.
    decimals: the digits after the point.
  """
  low, high = row["ci_low_adjusted"], row["ci_high_adjusted"]
  if not math.isfinite(low):
    return "n/a"
  return f"[{_num(low, decimals, True)}, {_num(high, decimals, True)}]"


def _seeds_needed(row: Mapping[str, Any]) -> str:
  n = stats.seeds_for(row.get("std_difference", math.nan), 0.01)
  return "n/a" if not isinstance(n, int) else str(n)


def _snapshot_lines(results: Mapping[str, Any]) -> list[str]:
  cells = stats.run_table(results)
  rows = []
  for name in stats.arm_names(results):
    pairs, counts = [], set()
    for (s, _), run in cells.items():
      ens = stats.metric_value(run, "snapshot_ensemble.ensemble_accuracy")
      last = stats.metric_value(run, "snapshot_ensemble.last_snapshot_accuracy")
      if s == name and ens is not None and last is not None:
        pairs.append((ens, last))
        count = stats.metric_value(run, "snapshot_ensemble.num_snapshots")
        counts.add("?" if count is None else str(int(count)))
    if not pairs:
      continue
    ens = stats.summarize(
      {"arms": [name], "runs": [r for (s, _), r in cells.items() if s == name]},
      ("snapshot_ensemble.ensemble_accuracy", "snapshot_ensemble.last_snapshot_accuracy"),
    )[name]
    gain = stats.paired_stats([e - la for e, la in pairs])
    n = len(pairs)
    rows.append(
      [
        _md(stats.label(results, name)),
        ", ".join(sorted(counts)),
        _cell(ens["snapshot_ensemble.ensemble_accuracy"], 3, n),
        _cell(ens["snapshot_ensemble.last_snapshot_accuracy"], 3, n),
        _num(gain["mean_difference"], 3, True),
        _p(gain["p_value"]),
        str(n),
      ]
    )
  if not rows:
    return []
  header = ["Arm", "Snapshots", "Ensemble accuracy", "Last snapshot", "Gain", "p", "n"]
  return [
    "## Snapshot ensembles",
    "",
    "Test accuracy of the averaged snapshot predictions against the last snapshot alone "
    "(gain paired by seed, two-sided t-test).",
    "",
    *_table(header, rows, ["l", "r", "r", "r", "r", "r", "r"]),
  ]


def results_markdown(results: Mapping[str, Any], baseline: str | None = None) -> str:
  """The study's report in Markdown.

  The chapter's Table 1.1 (rows Accuracy and Loss, one column per schedule, cells mean ± sample
  std over seeds of the final-epoch test metric), its caption, the arm recommended on validation
  accuracy (`budgets.recommendation_text`; a study across budgets has one per budget), the
  paired comparison of every schedule with the baseline (raw and Holm-adjusted p-values), a
  snapshot-ensemble table when any run has one, the wall time per schedule and the runs still
  missing.

  Args:
    results: a study's results (`lrjax.stats` describes missing data).
    baseline: the schedule the others are compared with; default the first column.

  Returns:
    The Markdown text, ending with a newline.

  Raises:
    ValueError: if `results` has no runs list or no schedules, or `baseline` is not a schedule.
  """
  names = stats.arm_names(results)
  if not names:
    raise ValueError("results must name at least one schedule, got none")
  baseline = names[0] if baseline is None else baseline
  if baseline not in names:
    raise ValueError(f"baseline must be one of {names}, got {baseline!r}")
  seeds = stats.seeds_of(results)
  summary = stats.summarize(results)
  header = ["Metric"] + [stats.label(results, n) for n in names]
  rows = [
    [title] + [_cell(summary[n][metric], decimals, len(seeds)) for n in names]
    for title, metric, decimals in TABLE_ROWS
  ]
  lines = ["# Learning-rate schedules compared", ""]
  lines += _table(header, rows, ["l"] + ["r"] * len(names))
  lines += ["", _caption(results, len(seeds)), ""]
  setup = arms_table.lines(results)
  if setup:
    lines += setup + [""]
  tuned = tuning_lines(results)
  if tuned:
    lines += tuned + [""]
  if not results.get("budgets"):
    lines += _recommendation_lines(results) + [""]
  diverged = [
    f"{stats.label(results, r['arm'])} seed {r['seed']} at step {r['diverged']['step']} "
    f"(lr {r['diverged']['lr']:.4g})"
    for r in results["runs"]
    if r.get("diverged")
  ]
  if diverged:
    lines += [
      f"Diverged runs ({len(diverged)}; their loss became NaN or infinite, they have no final "
      f"metrics and the cells above leave them out): {_md(', '.join(diverged))}.",
      "",
    ]
  if len(names) > 1:
    lines += _comparison_lines(results, baseline) + [""]
  snapshot = _snapshot_lines(results)
  if snapshot:
    lines += snapshot + [""]
  lines += [
    "## Training time",
    "",
    "Seconds in each run's train steps, from its records (evaluation, checkpoints and the "
    "process's start not counted).",
    "",
  ]
  for n in names:
    cell = summary[n]["seconds"]
    if cell["n"] == 0:
      lines.append(f"- {_md(stats.label(results, n))}: no runs")
      continue
    spread = f" ± {cell['std']:.1f}" if cell["n"] >= 2 else ""
    lines.append(
      f"- {_md(stats.label(results, n))}: {cell['mean']:.1f}{spread} s per run "
      f"(n={cell['n']}, total {sum(cell['values']):.0f} s)"
    )
  cells = stats.run_table(results)
  missing = [
    f"{stats.label(results, n)} seed {s}" for n in names for s in seeds if (n, s) not in cells
  ]
  if missing:
    lines += ["", f"Missing runs ({len(missing)}): {_md(', '.join(missing))}."]
  failed = results.get("failed") or []
  if failed:
    lines += ["", f"Failed runs ({len(failed)}; run the study again to retry them):", ""]
    lines += [f"- {_md(reason)}" for reason in failed]
  return "\n".join(lines) + "\n"


def _csv_value(value: float | None) -> str:
  return "" if value is None else repr(value)


def results_csv(results: Mapping[str, Any]) -> str:
  """One row per run (in column, then seed order) with its final metrics, under a header.

  Snapshot-ensemble columns are always present and empty for runs without an ensemble, so the
  header does not depend on the study. Missing or non-finite values are empty cells.
  """
  names = stats.arm_names(results)
  seeds = stats.seeds_of(results)

  def order(run: Mapping[str, Any]) -> tuple:
    s, seed = run.get("arm"), run.get("seed")
    return (names.index(s), seeds.index(seed) if seed in seeds else len(seeds), repr(seed))

  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(CSV_FIELDS)
  for run in sorted(stats.run_table(results).values(), key=order):
    row = [run.get("arm"), stats.label(results, run.get("arm")), run.get("seed")]
    for field in CSV_FIELDS[3:]:
      key = f"snapshot_ensemble.{field}" if field in _ENSEMBLE else field
      value = stats.metric_value(run, key)
      if field in ("num_snapshots", "best_epoch") and value is not None:
        value = int(value)
      row.append(_csv_value(value))
    writer.writerow(row)
  return out.getvalue()


def write_reports(results: Mapping[str, Any], workdir: str | os.PathLike) -> dict[str, str]:
  """Writes `results.md` and `results.csv` into `workdir` (created if needed).

  Returns:
    `{"markdown": path, "csv": path}`.
  """
  workdir = os.fspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  paths = {
    "markdown": os.path.join(workdir, "results.md"),
    "csv": os.path.join(workdir, "results.csv"),
  }
  markdown, table = results_markdown(results), results_csv(results)
  if results.get("budgets"):
    # One report per budget after the budget summary, each under its own title.
    markdown = "\n".join(budgets.budget_lines(results)) + "\n"
    table = ""
    for b in results["budgets"]:
      sub = stats.at_budget(results, b)
      # Its title becomes "At b epochs"; its sections stay one level below it.
      body = results_markdown(sub).split("\n", 1)[1]
      markdown += f"\n# At {budgets.epochs(b)}\n{body}"
      rows = results_csv(sub).splitlines()
      table += ("budget," + rows[0] + "\n") if not table else ""
      table += "".join(f"{b},{row}\n" for row in rows[1:])
  write_atomic(paths["markdown"], markdown)
  write_atomic(paths["csv"], table)
  return paths
