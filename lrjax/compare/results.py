"""A study's results: collected from its finished runs, written as results.json, .md, .csv and
figures by one writer, whoever asks (the study when its cells are done, `lrjax report`)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

from lrjax import stats
from lrjax.compare import arms_table, folders, phases, report, tuned_results
from lrjax.compare.conclusion import conclusion
from lrjax.config.study import Study
from lrjax.files import run_dir
from lrjax.files.atomic import read_json, write_json
from lrjax.files.run_dir import RunDir
from lrjax.plot import study as figures
from lrjax.plot.budgets import plot_budgets
from lrjax.plot.tuning import plot_response
from lrjax.train import records

# What a run's summary says of its validation split (absent without one).
VALIDATION_KEYS = (
  "final_validation_accuracy",
  "final_validation_loss",
  "best_epoch",
  "test_accuracy_at_best_epoch",
)


def collect(config: Any, workdir: str) -> dict[str, Any]:
  """The results dict (see `lrjax.compare.report`) from the finished runs in `workdir`;
  `config`: the `Study` (or a study config to check)."""
  study = Study.of(config)
  runs, missing = [], []
  for seed in study.seeds:
    for budget in study.budget_list():
      for name in study.names:
        out = phases.final_dir(workdir, study, name, seed, budget)
        if out is None or not RunDir(out).finished():
          missing.append(f"{name} seed {seed}" + (f" budget {budget}" if budget else ""))
          continue
        runs.append(_run_result(RunDir(out), name, seed, budget, forked=study.forked(name)))
  extra = {"tuning": tuned_results.collect(workdir, study)} if study.tune is not None else {}
  out = {
    **extra,
    "config": study.to_dict(),
    "arms_setup": arms_table.setup(study, runs),
    "arms": list(study.names),
    "seeds": list(study.seeds),
    "budgets": list(study.budgets),
    "labels": dict(study.labels),
    "runs": runs,
    "trunks": _trunk_epochs(workdir, study),
    "missing": missing,
    "failed": failures(workdir),
    "environment": records.environment(),
    "written": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
  }
  return {**out, "conclusion": conclusion(out)}


def failures(workdir: str) -> list[str]:
  """The one-line reasons of the runs whose training function failed, sorted."""
  return run_dir.failures(os.path.join(workdir, "runs"))


def _run_result(out: RunDir, name: str, seed: int, budget: int | None, forked: bool) -> dict:
  summary, history, resolved = out.summary(), out.records(), out.config()
  keys = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
  keys += (
    ("validation_loss", "validation_accuracy")
    if history and "validation_loss" in history[0]
    else ()
  )
  keys += ("plateau_scale",) if history and "plateau_scale" in history[0] else ()
  schedule = resolved["schedule"]
  trained = resolved["total_steps"]
  if forked and budget is not None:  # a fork trains its cooldown only; the trunk is shared
    trained -= int(schedule["warmup_steps"]) + int(schedule["stable_steps"])
  return {
    "arm": name,
    "seed": seed,
    "budget": budget,
    "final_test_accuracy": summary["final_test_accuracy"],
    "final_test_loss": summary["final_test_loss"],
    "final_train_loss": summary["final_train_loss"],
    **{k: summary.get(k) for k in VALIDATION_KEYS},
    "seconds": summary["seconds"],
    "curves": {k: [r[k] for r in history] for k in keys},
    "snapshot_ensemble": summary.get("snapshot_ensemble"),
    "diverged": summary.get("diverged"),
    # The schedule in steps, to draw it at every step, not only at epoch starts.
    "schedule_config": schedule,
    "steps_per_epoch": resolved["steps_per_epoch"],
    "total_steps": resolved["total_steps"],
    "epochs_trained": trained / resolved["steps_per_epoch"],
  }


def _trunk_epochs(workdir: str, study: Study) -> dict[str, dict[str, int]]:
  """Epochs each finished trunk trained, by arm and seed (the compute its forks share)."""
  out: dict[str, dict[str, int]] = {}
  for name in study.names:
    for seed in study.seeds:
      trunk = RunDir(folders.trunk_dir(workdir, name, seed))
      if study.fork(name) and trunk.finished():
        out.setdefault(name, {})[str(seed)] = trunk.summary()["epochs"]
  return out


def report_workdir(workdir: str) -> dict[str, Any]:
  """Collects the finished runs of the study in `workdir` (its config in `study.json`, written
  by `compare`) into results.json/.md/.csv and the figures; `missing` lists unfinished runs. A
  `study.json` written before a field of the config existed takes that field's default."""
  from lrjax.configs import default

  recorded = read_json(os.path.join(workdir, "study.json"))
  results = collect({**default.get_config().to_dict(), **recorded}, workdir)
  write_results(results, workdir)
  return results


def upgrade(results: Mapping[str, Any]) -> dict[str, Any]:
  """`results` with the names of today: its arms under "arms" and each run's under "arm" (a
  results.json written before arms had that name says "schedules" and "schedule").

  Args:
    results: a study's results, of any version.

  Example:
    >>> from lrjax.compare import results
    >>> old = {"schedules": ["cosine"], "runs": [{"schedule": "cosine", "seed": 0}]}
    >>> new = results.upgrade(old)
    >>> new["arms"], new["runs"][0]["arm"]
    (['cosine'], 'cosine')
  """
  if not isinstance(results, Mapping) or not isinstance(results.get("runs"), list):
    raise ValueError(f"results must be a mapping with a list of 'runs', got {type(results)!r}")
  out = dict(results)
  if "arms" not in out and "schedules" in out:
    out["arms"] = out.pop("schedules")
  out["runs"] = [
    {("arm" if k == "schedule" and "arm" not in run else k): v for k, v in run.items()}
    for run in out["runs"]
  ]
  return out


def load(path: str) -> dict[str, Any]:
  """A study's `results.json`, of any version, with today's names (`upgrade`).

  Args:
    path: the file (or the study's workdir, which holds it).
  """
  if os.path.isdir(path):
    path = os.path.join(path, "results.json")
  return upgrade(read_json(path))


def write_results(results: dict[str, Any], workdir: str) -> None:
  """The one writer of a study's results: results.json, .md, .csv and the figures."""
  write_json(os.path.join(workdir, "results.json"), results)
  report.write_reports(results, workdir)
  if results["budgets"]:  # the curves of the longest budget, and accuracy against budget
    figures.write_figures(stats.at_budget(results, max(results["budgets"])), workdir)
    plot_budgets(results, os.path.join(workdir, "figures", "accuracy_vs_budget.png"))
  else:
    figures.write_figures(results, workdir)
  if results.get("tuning"):
    plot_response(results, os.path.join(workdir, "figures", "lr_response.png"))
