"""A tuned study's `tuning` entry of results.json: per arm (and budget), every point's validation
metric per tuning seed, what each rung trained and kept, the chosen point, whether it lies on the
grid's edge, how flat the response is around it, its optimism, and the compute of each phase."""

from __future__ import annotations

from typing import Any

from lrjax.compare import folders, phases, tuning
from lrjax.config.study import Study
from lrjax.config.values import plain
from lrjax.files.run_dir import RunDir

# How close to the best a point must come to count as as good (a percentage point of accuracy,
# or 0.01 of loss).
WITHIN = 0.01


def _rungs(workdir: str, study: Study, name: str, budget: Any) -> list[dict[str, Any]]:
  """What each rung trained and kept, as far as it got."""
  out, trained = [], phases.first_rung(workdir, study, name, budget)
  for r, seeds in enumerate(study.tune.rungs()):
    if trained is None:
      break
    kept = phases.kept(workdir, study, name, budget, r)
    out.append(
      {
        "rung": r,
        "seeds": list(seeds),
        "trained": [p.id for p in trained],
        "kept": None if kept is None else [p.id for p in kept],
      }
    )
    trained = kept
  return out


def _optimism(workdir: str, study: Study, name: str, budget: Any, point, higher: bool) -> Any:
  """The chosen point's mean tuning metric minus the final seeds' mean (for a loss, the other
  way round): how much the choice flattered it; None before every final run has finished."""
  tuned = phases.values(workdir, study, name, point, budget)
  finals = [RunDir(folders.run_dir(workdir, name, s, budget)).summary() for s in study.seeds]
  final = [tuning.point_value(s, study.tune.metric) for s in finals]
  if any(v is None for v in tuned + final):
    return None
  gap = sum(tuned) / len(tuned) - sum(final) / len(final)
  return gap if higher else -gap


def collect(workdir: str, study: Study) -> dict[str, Any]:
  """The `tuning` entry (see the module docstring)."""
  tune = study.tune
  arms: dict[str, Any] = {}
  compute = {"phase_1_runs": 0, "phase_1_epochs": 0.0, "phase_2_runs": 0, "phase_2_epochs": 0.0}
  for name in study.names:
    for budget in study.budget_list():
      rows = phases.table(workdir, study, name, budget)
      entry: dict[str, Any] = {
        "budget": budget,
        "grid": [
          {
            "point": p.id,
            "lr_scale": p.lr_scale,
            "overrides": plain(dict(p.overrides)),
            "values": {str(s): v for s, v in zip(tune.seeds, values)},
            "diverged": phases.diverged(workdir, study, name, p, budget),
          }
          for p, values in rows
        ],
        "rungs": _rungs(workdir, study, name, budget),
      }
      for p, _ in rows:
        for seed in tune.seeds:
          run = RunDir(folders.tune_dir(workdir, name, p.id, seed, budget))
          if run.finished():
            compute["phase_1_runs"] += 1
            compute["phase_1_epochs"] += float(run.summary().get("epochs", 0))
      best = phases.chosen(workdir, study, name, budget)  # None: phase 1 not finished
      if best is not None:
        seeds0 = tune.rungs()[0]
        first = [(p, phases.values(workdir, study, name, p, budget, seeds0)) for p, _ in rows]
        entry |= {
          "chosen": best.id,
          "chosen_lr_scale": best.lr_scale,
          "chosen_overrides": plain(dict(best.overrides)),
          "edge": tuning.at_edge(best, [p.lr_scale for p, _ in rows]),
          "within_1_point": tuning.sensitivity(first, tune.higher_is_better, WITHIN),
          "optimism": _optimism(workdir, study, name, budget, best, tune.higher_is_better),
        }
        for seed in study.seeds:
          run = RunDir(folders.run_dir(workdir, name, seed, budget))
          if run.finished():
            compute["phase_2_runs"] += 1
            compute["phase_2_epochs"] += float(run.summary().get("epochs", 0))
      key = name if budget is None else f"{name}@{budget}"
      arms[key] = {"arm": name, **entry}
  seeds = ", ".join(map(str, tune.seeds))
  final = ", ".join(map(str, study.seeds))
  metric = tune.metric.replace("_", " ")
  return {
    "protocol": tuning.PROTOCOL[tune.strategy].format(metric=metric, seeds=seeds, final=final),
    "strategy": tune.strategy,
    "metric": tune.metric,
    "seeds": list(tune.seeds),
    "lr_scale": list(tune.scales),
    "grid": {f: plain(v) for f, v in tune.grid},
    "extend_edges": tune.extend_edges,
    "arms": arms,
    "compute": compute,
  }
