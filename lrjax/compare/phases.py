"""A tuned study's phases as its folders hold them: what each arm tried, and what it chose.

Phase 1's runs live in `runs/<arm>/[budget_<b>/]tune/<point>/seed_<s>`; an extension past an
edge that the grid's results did not call for is marked skipped there (`RunDir.skip`) instead of
having a summary. The choice is read from those folders whenever it is needed (by a phase-2 cell
as it starts, by the report), so every process that reads it gets the same one; before phase 1
of an arm has finished there is no choice yet, and `chosen` says so with None.
"""

from __future__ import annotations

from typing import Any

from lrjax.compare import folders, tuning
from lrjax.config.study import Study
from lrjax.config.tune import Point
from lrjax.files.run_dir import RunDir


def _runs(workdir: str, study: Study, name: str, point: Point, budget) -> list[RunDir]:
  return [
    RunDir(folders.tune_dir(workdir, name, point.id, seed, budget)) for seed in study.tune.seeds
  ]


def _values(workdir: str, study: Study, name: str, point: Point, budget) -> list:
  metric = study.tune.metric
  runs = _runs(workdir, study, name, point, budget)
  return [tuning.point_value(r.summary(), metric) for r in runs]


def _trained(workdir: str, study: Study, name: str, point: Point, budget) -> bool:
  """Whether every tuning seed's run of `point` has finished (False if any was skipped)."""
  return all(r.finished() for r in _runs(workdir, study, name, point, budget))


def table(
  workdir: str, study: Study, name: str, budget: Any, sides: dict[str, int] | None = None
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
  workdir: str, study: Study, name: str, budget: Any, side: str, level: int
) -> bool:
  """Whether the best point over the grid and this side's extensions below `level` lies on
  `side`'s edge (so the grid should grow past it)."""
  rows = table(workdir, study, name, budget, {side: level - 1})
  best = tuning.choose(rows, study.tune.higher_is_better)
  return tuning.at_edge(best, [p.lr_scale for p, _ in rows]) == side


def chosen(workdir: str, study: Study, name: str, budget: Any = None) -> Point | None:
  """The arm's chosen point (see `lrjax.compare.tuning`), or None while phase 1 of the arm has
  not trained every grid point for every tuning seed."""
  rows = table(workdir, study, name, budget)
  grid = [p for p, _ in rows[: len(study.tune.points())]]
  if not all(_trained(workdir, study, name, p, budget) for p in grid):
    return None
  return tuning.choose(rows, study.tune.higher_is_better)


def final_dir(workdir: str, study: Study, name: str, seed: int, budget: Any) -> str | None:
  """The folder of the arm's final run for `seed`: a tuning seed's run at the chosen point is
  reused; None while the choice cannot be made yet."""
  if study.tune is None or seed not in study.tune.seeds:
    return folders.run_dir(workdir, name, seed, budget)
  point = chosen(workdir, study, name, budget)
  return None if point is None else folders.tune_dir(workdir, name, point.id, seed, budget)
