"""A tuned study's phases as its folders hold them: what each arm tried, and what it chose.

Phase 1's runs live in `runs/<arm>/[budget_<b>/]tune/<point>/seed_<s>`; an extension past an
edge that the grid's results did not call for is marked there by `skipped.json` instead of a
summary. The choice is read from those folders whenever it is needed (by a phase-2 cell as it
starts, by the report), so every process that reads it gets the same one.
"""

from __future__ import annotations

import os
from typing import Any

from lrjax.compare import study as study_lib
from lrjax.compare import tuning
from lrjax.compare.tuning import Point
from lrjax.files.atomic import write_json

SKIPPED = "skipped.json"


def skipped(folder: str) -> bool:
  return os.path.exists(os.path.join(folder, SKIPPED))


def mark_skipped(folder: str, why: str) -> None:
  os.makedirs(folder, exist_ok=True)
  write_json(os.path.join(folder, SKIPPED), {"skipped": why})


def _values(workdir: str, study: study_lib.Study, name: str, point: Point, budget) -> list:
  tune = study.tune
  return [
    tuning.point_value(
      tuning.read_summary(study_lib.tune_dir(workdir, name, point.id, seed, budget)), tune.metric
    )
    for seed in tune.seeds
  ]


def _trained(workdir: str, study: study_lib.Study, name: str, point: Point, budget) -> bool:
  """Whether every tuning seed's run of `point` has finished (False if any was skipped)."""
  folders = [study_lib.tune_dir(workdir, name, point.id, s, budget) for s in study.tune.seeds]
  return all(os.path.exists(os.path.join(f, "summary.json")) for f in folders)


def table(
  workdir: str, study: study_lib.Study, name: str, budget: Any, sides: dict[str, int] | None = None
) -> list[tuple[Point, list]]:
  """(point, its values per tuning seed) of every point the arm trained: the grid, and the
  extensions up to `sides[side]` levels on each side (default: all that trained)."""
  tune = study.tune
  points = list(tune.points())
  for side in ("low", "high"):
    for level in range(1, tune.extend_edges + 1):
      if sides is not None and level > sides.get(side, 0):
        break
      points += [
        p for p in tune.extension(side, level) if _trained(workdir, study, name, p, budget)
      ]
  return [(p, _values(workdir, study, name, p, budget)) for p in points]


def extension_needed(
  workdir: str, study: study_lib.Study, name: str, budget: Any, side: str, level: int
) -> bool:
  """Whether the best point over the grid and this side's extensions below `level` lies on
  `side`'s edge (so the grid should grow past it)."""
  rows = table(workdir, study, name, budget, {side: level - 1})
  best = tuning.choose(rows, study.tune.higher_is_better)
  return tuning.at_edge(best, [p.lr_scale for p, _ in rows]) == side


def chosen(workdir: str, study: study_lib.Study, name: str, budget: Any = None) -> Point:
  """The arm's chosen point (see `lrjax.compare.tuning`).

  Raises:
    ValueError: phase 1 of the arm has not finished (a grid point without its runs).
  """
  rows = table(workdir, study, name, budget)
  for point, _ in rows[: len(study.tune.points())]:
    if not _trained(workdir, study, name, point, budget):
      where = f" budget {budget}" if budget is not None else ""
      raise ValueError(
        f"arm {name}{where}: phase 1 has not trained {point.id} for every tuning seed"
      )
  return tuning.choose(rows, study.tune.higher_is_better)


def final_dir(
  workdir: str, study: study_lib.Study, name: str, seed: int, budget: Any
) -> str | None:
  """The folder of the arm's final run for `seed`: a tuning seed's run at the chosen point is
  reused; None while the choice cannot be made yet."""
  if study.tune is None:
    return study_lib.run_dir(workdir, name, seed, budget)
  if seed not in study.tune.seeds:
    return study_lib.run_dir(workdir, name, seed, budget)
  try:
    point = chosen(workdir, study, name, budget)
  except ValueError:
    return None
  return study_lib.tune_dir(workdir, name, point.id, seed, budget)
