"""A study as a fixed list of cells, with their dependencies, planned before anything trains.

A cell is one arm, seed (and budget); or a seed's arms as one vmapped population, where that
mode wins (`lrjax.train.strategy`, decided once and kept in `execution.json`); or the trunk of a
forked arm, which the arm's budget cells run `after`. A tuned study (`lrjax.compare.tuning`) has
phase-1 cells (an arm's grid points for a tuning seed; an extension past an edge, which trains
only where the grid's results call for it) and phase-2 cells (the arms at their chosen points for
the other seeds), which run after every phase-1 cell of their arms.

A trunk's `exports` (the step at which each budget's cooldown starts, and the budgets forking
there) are computed here from the run configs and the dataset's size, without building a run.
A cell's `id` derives from its resolved run configs (the runtime included), so it names the same
work in every process and after every restart; the order (seed by seed, trunks first, then
budget by budget, arms in column order; phase 1 before phase 2) is what `--shard I/N` splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable

from lrjax.compare import folders, phases
from lrjax.compare.tuning import CHOSEN
from lrjax.config.experiment import Experiment
from lrjax.config.study import Study
from lrjax.config.tune import Point
from lrjax.files.atomic import jsonable
from lrjax.files.run_dir import RunDir
from lrjax.function import run as function
from lrjax.train import build, strategy


@dataclasses.dataclass(frozen=True)
class Cell:
  seed: int
  names: tuple[str, ...]
  id: str
  budget: int | None = None
  trunk: bool = False
  population: bool = False  # the names train as one vmapped program
  exports: tuple[tuple[int, tuple[int, ...]], ...] = ()  # a trunk's: (step, budgets forking)
  after: tuple[Cell, ...] = ()
  points: tuple[str, ...] = ()  # a tuned study's: each run's point id, or CHOSEN (phase 2)
  # A phase-1 run's: ("edge", side, level) past an edge, or ("rung", r) of a later rung; it
  # trains where the results before it call for it (`lrjax.compare.phases.needed`).
  condition: tuple | None = None

  def _point(self, i: int) -> str:
    return self.points[i] if self.points else ""

  def dirs(self, workdir: str) -> list[str]:
    if self.trunk:
      return [folders.trunk_dir(workdir, self.names[0], self.seed)]
    return [
      folders.tune_dir(workdir, n, self._point(i), self.seed, self.budget)
      if self._point(i) not in ("", CHOSEN)
      else folders.run_dir(workdir, n, self.seed, self.budget)
      for i, n in enumerate(self.names)
    ]

  def chosen_yet(self, study: Study, workdir: str) -> bool:
    """Whether every run's point is known: a phase-2 run's is its arm's choice, made once the
    arm's phase 1 has finished."""
    return all(
      phases.chosen(workdir, study, n, self.budget) is not None
      for i, n in enumerate(self.names)
      if self._point(i) == CHOSEN
    )

  def point(self, i: int, study: Study, workdir: str) -> Point | None:
    """Run i's tuning point (a phase-2 run's is its arm's choice, read from `workdir`; None
    before it is made), or None outside tuning."""
    if self._point(i) == CHOSEN:
      return phases.chosen(workdir, study, self.names[i], self.budget)
    return study.tune.all_points()[self._point(i)] if self._point(i) else None

  def runs(self, study: Study, workdir: str) -> list[Experiment]:
    """The runs, each at its tuning point (call once `chosen_yet`)."""
    if self.trunk:
      return [study.trunk(self.names[0], self.seed)]
    return [
      study.run(n, self.seed, self.budget, self.point(i, study, workdir))
      for i, n in enumerate(self.names)
    ]

  def label(self) -> str:
    names = [f"{n} {p}" if p else n for n, p in zip(self.names, self.points or [""] * 99)]
    what = f"{', '.join(names)} as one population" if len(names) > 1 else names[0]
    what += " (trunk)" if self.trunk else ""
    budget = f" budget {self.budget}" if self.budget is not None else ""
    return f"{what} seed {self.seed}{budget}"


def fork_start(run: Experiment) -> int:
  """The step at which a forked run's cooldown starts: its warmup and stable steps."""
  fields = build.schedule_in_steps(run, build.length(run)).fields()
  return int(fields["warmup_steps"]) + int(fields["stable_steps"])


def plan(study: Study, workdir: str, say: Callable[[str], None] = print) -> list[Cell]:
  """The study's cells in their fixed order (see the module docstring). Every run was checked
  when the study was parsed; a training function is imported here, before anything trains."""
  if study.train_fn is not None:
    function.function_of(study.train_fn)
  budgets = study.budget_list()
  pairs = [(s, b) for s in study.seeds for b in budgets]
  forked = [n for n in study.names if study.forked(n)]
  plain = [n for n in study.names if n not in forked]
  runs = {(n, s, b): study.run(n, s, b) for s, b in pairs for n in study.names}
  cells: list[Cell] = []

  def add(seed, names, budget, group: list[Experiment], **kw) -> Cell:
    tag = f"{kw.get('trunk', False)}{kw.get('points', ())}"
    text = json.dumps([jsonable(e.to_dict()) for e in group], sort_keys=True)
    digest = hashlib.sha256(f"{tag}{text}".encode()).hexdigest()[:12]
    cell = Cell(seed, tuple(names), digest, budget, **kw)
    cells.append(cell)
    return cell

  def together(group: list[Experiment]) -> bool:
    if study.train_fn is not None:  # the user's function trains one run per call
      return False
    return len(group) > 1 and strategy.use_population(
      study.population, group, os.path.join(workdir, "execution.json"), say
    )

  if study.tune is not None:
    _tuned(study, runs, together, add)
    return cells
  vmapped = study.schedule_only() and together([runs[n, *pairs[0]] for n in plain])
  for seed in study.seeds:
    trunks = {}
    for name in forked:
      exports: dict[int, list[int]] = {}
      for budget in study.budgets:
        exports.setdefault(fork_start(runs[name, seed, budget]), []).append(budget)
      table = tuple((step, tuple(b)) for step, b in sorted(exports.items()))
      trunk = study.trunk(name, seed)
      trunks[name] = add(seed, [name], None, [trunk], trunk=True, exports=table)
    for budget in budgets:
      groups = [plain] if vmapped else [[n] for n in plain]
      for names in groups:
        add(seed, names, budget, [runs[n, seed, budget] for n in names], population=vmapped)
      for name in forked:
        add(seed, [name], budget, [runs[name, seed, budget]], after=(trunks[name],))
  return cells


def _tuned(study: Study, runs: dict, together, add) -> None:
  """Phase 1 (each arm's rungs, `lrjax.compare.phases`), then phase 2 (the arms at their chosen
  points on the final seeds), budget by budget."""
  tune, names = study.tune, study.names
  grid, rungs = tune.points(), tune.rungs()
  # One decision for the study: an arm's grid as one population, where that is faster.
  seed0, budget0 = rungs[0][0], study.budget_list()[0]
  vmapped = not tune.grid and together([study.run(names[0], seed0, budget0, p) for p in grid])
  for budget in study.budget_list():
    phase1: dict[str, list[Cell]] = {n: [] for n in names}
    for seed in rungs[0]:  # rung 0: the whole grid
      for name in names:
        for group in [grid] if vmapped else [[p] for p in grid]:
          group_runs = [study.run(name, seed, budget, p) for p in group]
          points = tuple(p.id for p in group)
          phase1[name].append(
            add(
              seed,
              [name] * len(group),
              budget,
              group_runs,
              points=points,
              population=len(group) > 1,
            )
          )
    for name in names:
      extensions = _edges(study, name, budget, list(phase1[name]), add)
      phase1[name] += extensions
      points = grid + [p for side, level in _levels(tune) for p in tune.extension(side, level)]
      for r, seeds in enumerate(rungs[1:], start=1):  # later rungs: what the rung before kept
        before = tuple(phase1[name])
        phase1[name] += [
          _point_cell(study, add, name, seed, budget, p, ("rung", r), before)
          for p in points
          for seed in seeds
        ]
    arms_together = vmapped and study.schedule_only()
    for seed in study.seeds:
      for group in [list(names)] if arms_together else [[n] for n in names]:
        after = tuple(c for n in group for c in phase1[n])
        group_runs = [runs[n, seed, budget] for n in group]
        points = (CHOSEN,) * len(group)
        add(seed, group, budget, group_runs, points=points, population=len(group) > 1, after=after)


def _point_cell(study: Study, add, name: str, seed: int, budget, point, condition, after) -> Cell:
  """One tuning run of `name` at `point`, trained where `condition` holds once `after` is done."""
  return add(
    seed,
    [name],
    budget,
    [study.run(name, seed, budget, point)],
    points=(point.id,),
    condition=condition,
    after=after,
  )


def _levels(tune) -> list[tuple[str, int]]:
  return [(side, level) for side in ("low", "high") for level in range(1, tune.extend_edges + 1)]


def _edges(study: Study, name: str, budget, base: list[Cell], add) -> list[Cell]:
  """The extensions past each edge of an arm's grid, on the first rung's seeds: each level after
  the rung and the levels before it, trained where the best point lies on that edge."""
  tune, out = study.tune, []
  for side in ("low", "high"):
    before = list(base)
    for level in range(1, tune.extend_edges + 1):
      cells = [
        _point_cell(study, add, name, seed, budget, p, ("edge", side, level), tuple(before))
        for p in tune.extension(side, level)
        for seed in tune.rungs()[0]
      ]
      before += cells
      out += cells
  return out


def finished(workdir: str, cell: Cell) -> bool:
  """Whether every run of `cell` is done: finished (or diverged), or, for an extension the
  results did not call for, skipped."""
  return all(RunDir(d).done() for d in cell.dirs(workdir))
