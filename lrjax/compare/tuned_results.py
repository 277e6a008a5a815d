"""A tuned study's `tuning` entry of results.json: per arm (and budget), every grid point's
validation metric per tuning seed, the chosen point, whether it lies on the grid's edge, how
flat the response is around it, and the compute of each phase."""

from __future__ import annotations

from typing import Any

from lrjax.compare import folders, phases, tuning
from lrjax.config.study import Study
from lrjax.config.values import plain
from lrjax.files.run_dir import RunDir

# How close to the best a point must come to count as as good (a percentage point of accuracy,
# or 0.01 of loss).
WITHIN = 0.01


def collect(workdir: str, study: Study) -> dict[str, Any]:
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
            "diverged": [s for s, v in zip(tune.seeds, values) if v is None],
          }
          for p, values in rows
        ],
      }
      for p, _ in rows:
        for seed in tune.seeds:
          run = RunDir(folders.tune_dir(workdir, name, p.id, seed, budget))
          if run.finished():
            compute["phase_1_runs"] += 1
            compute["phase_1_epochs"] += float(run.summary().get("epochs", 0))
      best = phases.chosen(workdir, study, name, budget)  # None: phase 1 not finished
      if best is not None:
        entry |= {
          "chosen": best.id,
          "chosen_lr_scale": best.lr_scale,
          "chosen_overrides": plain(dict(best.overrides)),
          "edge": tuning.at_edge(best, [p.lr_scale for p, _ in rows]),
          "within_1_point": tuning.sensitivity(rows, tune.higher_is_better, WITHIN),
        }
        for seed in study.seeds:
          if seed not in tune.seeds:
            run = RunDir(folders.run_dir(workdir, name, seed, budget))
            if run.finished():
              compute["phase_2_runs"] += 1
              compute["phase_2_epochs"] += float(run.summary().get("epochs", 0))
      key = name if budget is None else f"{name}@{budget}"
      arms[key] = {"arm": name, **entry}
  reused = len([s for s in study.seeds if s in tune.seeds]) * len(arms)
  return {
    "protocol": tuning.PROTOCOL.format(metric=tune.metric.replace("_", " ")),
    "metric": tune.metric,
    "seeds": list(tune.seeds),
    "lr_scale": list(tune.scales),
    "grid": {f: plain(v) for f, v in tune.grid},
    "extend_edges": tune.extend_edges,
    "arms": arms,
    "compute": {**compute, "phase_2_reused_from_phase_1": reused},
  }
