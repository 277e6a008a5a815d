"""A tuned study's phases as its folders hold them: what each arm tried, what each rung kept, and
what it chose.

Phase 1's runs live in `runs/<arm>/[budget_<b>/]tune/<point>/seed_<s>`. Rung 0 trains every grid
point on the first rung's tuning seeds (with `extend_edges`, the points past an edge where the
rung's best lies on it); each later rung trains the points the rung before kept, the better half
by the tuning metric over the seeds so far, on its own seed (`lrjax.config.tune`). A run a rung or
an edge did not call for is marked skipped (`RunDir.skip`). Everything here is read from those
folders whenever it is needed (by a rung's or a phase-2 cell as it starts, by the report), so
every process that reads it gets the same; before a rung has finished there is no answer yet, and
its functions say so with None.
"""

from __future__ import annotations

import math
from typing import Any

from lrjax.compare import folders, tuning
from lrjax.config.study import Study
from lrjax.config.tune import Point
from lrjax.files.run_dir import RunDir


def _dirs(workdir: str, name: str, point: Point, budget, seeds) -> list[RunDir]:
  return [RunDir(folders.tune_dir(workdir, name, point.id, s, budget)) for s in seeds]


def values(workdir: str, study: Study, name: str, point: Point, budget, seeds=None) -> list:
  """The point's tuning metric on each seed (default: every tuning seed); None where that run
  diverged or did not train."""
  seeds = study.tune.seeds if seeds is None else seeds
  metric = study.tune.metric
  runs = _dirs(workdir, name, point, budget, seeds)
  return [tuning.point_value(r.summary(), metric) for r in runs]


def _finished(workdir: str, name: str, point: Point, budget, seeds) -> bool:
  return all(r.finished() for r in _dirs(workdir, name, point, budget, seeds))


def _done(workdir: str, name: str, point: Point, budget, seeds) -> bool:
  return all(r.done() for r in _dirs(workdir, name, point, budget, seeds))


def _extensions(study: Study) -> list[tuple[str, int, Point]]:
  tune = study.tune
  return [
    (side, level, p)
    for side in ("low", "high")
    for level in range(1, tune.extend_edges + 1)
    for p in tune.extension(side, level)
  ]


def first_rung(workdir: str, study: Study, name: str, budget: Any) -> list[Point] | None:
  """The points of rung 0: the grid and the extensions that trained; None while any of them has
  not finished (or been skipped)."""
  seeds = study.tune.rungs()[0]
  grid = study.tune.points()
  if not all(_finished(workdir, name, p, budget, seeds) for p in grid):
    return None
  extensions = [p for _, _, p in _extensions(study)]
  if not all(_done(workdir, name, p, budget, seeds) for p in extensions):
    return None
  return grid + [p for p in extensions if _finished(workdir, name, p, budget, seeds)]


def kept(workdir: str, study: Study, name: str, budget: Any, rung: int) -> list[Point] | None:
  """The points rung `rung` keeps, best first: the better half (rounded up) of those it trained,
  by the mean tuning metric over the seeds of rungs 0..rung (ties: the smaller scale, then the
  earlier point); None while the rung has not finished."""
  rungs = study.tune.rungs()
  trained = first_rung(workdir, study, name, budget) if rung == 0 else None
  if rung > 0:
    before = kept(workdir, study, name, budget, rung - 1)
    if before is None:
      return None
    trained = before
    if not all(_finished(workdir, name, p, budget, rungs[rung]) for p in trained):
      return None
  if trained is None:
    return None
  seeds = [s for r in rungs[: rung + 1] for s in r]
  table = [(p, values(workdir, study, name, p, budget, seeds)) for p in trained]
  ranked = tuning.rank(table, study.tune.higher_is_better)
  return ranked[: math.ceil(len(ranked) / 2)]


def extension_needed(
  workdir: str, study: Study, name: str, budget: Any, side: str, level: int
) -> bool:
  """Whether the best point of rung 0 over the grid and this side's extensions below `level`
  lies on `side`'s edge (so the grid should grow past it)."""
  seeds = study.tune.rungs()[0]
  points = list(study.tune.points())
  points += [
    p
    for s, lv, p in _extensions(study)
    if s == side and lv < level and _finished(workdir, name, p, budget, seeds)
  ]
  rows = [(p, values(workdir, study, name, p, budget, seeds)) for p in points]
  best = tuning.choose(rows, study.tune.higher_is_better)
  return tuning.at_edge(best, [p.lr_scale for p, _ in rows]) == side


def needed(workdir: str, study: Study, name: str, budget: Any, condition: tuple, point: str):
  """Whether a conditional phase-1 run is called for: an extension past an edge
  (`("edge", side, level)`) or a point of a later rung (`("rung", r)`): kept by rung r - 1."""
  if condition[0] == "edge":
    return extension_needed(workdir, study, name, budget, condition[1], condition[2])
  previous = kept(workdir, study, name, budget, condition[1] - 1) or []
  return point in {p.id for p in previous}


def chosen(workdir: str, study: Study, name: str, budget: Any = None) -> Point | None:
  """The arm's chosen point: the best the last rung kept (see `lrjax.compare.tuning`), or None
  while phase 1 of the arm has not finished."""
  last = kept(workdir, study, name, budget, len(study.tune.rungs()) - 1)
  return last[0] if last else None


def table(workdir: str, study: Study, name: str, budget: Any) -> list[tuple[Point, list]]:
  """(point, its values per tuning seed, None where not trained or diverged) of every point of
  rung 0 (the grid, and the extensions that trained)."""
  points = first_rung(workdir, study, name, budget)
  if points is None:
    seeds = study.tune.rungs()[0]
    extensions = [p for _, _, p in _extensions(study)]
    points = study.tune.points()
    points += [p for p in extensions if _finished(workdir, name, p, budget, seeds)]
  return [(p, values(workdir, study, name, p, budget)) for p in points]


def diverged(workdir: str, study: Study, name: str, point: Point, budget: Any) -> list[int]:
  """The tuning seeds on which the point's run diverged."""
  runs = _dirs(workdir, name, point, budget, study.tune.seeds)
  return [s for s, r in zip(study.tune.seeds, runs) if (r.summary() or {}).get("diverged")]


def final_dir(workdir: str, study: Study, name: str, seed: int, budget: Any) -> str:
  """The folder of the arm's final run for `seed` (tuning seeds are never final seeds)."""
  return folders.run_dir(workdir, name, seed, budget)
