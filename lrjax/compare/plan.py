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
from typing import Any

from lrjax.compare import phases
from lrjax.compare import study as study_lib
from lrjax.compare.tuning import CHOSEN
from lrjax.files.atomic import jsonable
from lrjax.function import run as function
from lrjax.train import build, settings, strategy
from lrjax.train.resolve import resolve_schedule


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
  condition: tuple[str, int] | None = None  # an extension's (side, level): trains if needed

  def _point(self, i: int) -> str:
    return self.points[i] if self.points else ""

  def dirs(self, workdir: str) -> list[str]:
    if self.trunk:
      return [study_lib.trunk_dir(workdir, self.names[0], self.seed)]
    return [
      study_lib.tune_dir(workdir, n, self._point(i), self.seed, self.budget)
      if self._point(i) not in ("", CHOSEN)
      else study_lib.run_dir(workdir, n, self.seed, self.budget)
      for i, n in enumerate(self.names)
    ]

  def point(self, i: int, study: study_lib.Study, workdir: str) -> Any:
    """Run i's tuning point (a phase-2 run's is its arm's choice, read from `workdir`), or None."""
    if self._point(i) == CHOSEN:
      return phases.chosen(workdir, study, self.names[i], self.budget)
    return study.tune.all_points()[self._point(i)] if self._point(i) else None

  def configs(self, config: Any, study: study_lib.Study, workdir: str) -> list[Any]:
    """The runs' configs, each at its tuning point."""
    if self.trunk:
      return [study_lib.trunk_config(config, study, self.names[0], self.seed)]
    return [
      study_lib.run_config(config, study, n, self.seed, self.budget, self.point(i, study, workdir))
      for i, n in enumerate(self.names)
    ]

  def label(self) -> str:
    names = [f"{n} {p}" if p else n for n, p in zip(self.names, self.points or [""] * 99)]
    what = f"{', '.join(names)} as one population" if len(names) > 1 else names[0]
    what += " (trunk)" if self.trunk else ""
    budget = f" budget {self.budget}" if self.budget is not None else ""
    return f"{what} seed {self.seed}{budget}"


def population_mode(config: Any) -> str:
  """`config.study.population`: "auto" (the default), "always" or "never" (see
  `lrjax.train.strategy`)."""
  mode = config.study.get("population", "auto")
  if mode not in strategy.MODES:
    raise ValueError(f"config.study.population must be one of {list(strategy.MODES)}, got {mode!r}")
  return mode


def fork_start(config: Any) -> int:
  """The step at which a forked run's cooldown starts: its warmup and stable steps."""
  spe = build.steps_per_epoch(config)
  fields = resolve_schedule(config.schedule, spe, spe * config.num_epochs).fields()
  return int(fields["warmup_steps"]) + int(fields["stable_steps"])


def plan(config: Any, workdir: str, say: Callable[[str], None] = print) -> list[Cell]:
  """The study's cells in their fixed order (see the module docstring)."""
  study = study_lib.parse(config)
  budgets = study.budget_list()
  pairs = [(s, b) for s in study.seeds for b in budgets]
  forked = [n for n in study.names if study.fork(n) and study.budgets]
  plain = [n for n in study.names if n not in forked]
  # Validate every run's config before the first one trains for minutes.
  configs = {
    (n, s, b): study_lib.run_config(config, study, n, s, b) for s, b in pairs for n in study.names
  }
  for (_, s, b), cfg in configs.items():
    if s == study.seeds[0] and b == budgets[0]:
      _check(cfg, study)
  cells: list[Cell] = []

  def add(seed, names, budget, cfgs, **kw) -> Cell:
    tag = f"{kw.get('trunk', False)}{kw.get('points', ())}"
    text = json.dumps([jsonable(c.to_dict()) for c in cfgs], sort_keys=True)
    digest = hashlib.sha256(f"{tag}{text}".encode()).hexdigest()[:12]
    cell = Cell(seed, tuple(names), digest, budget, **kw)
    cells.append(cell)
    return cell

  def together(group_configs: list[Any]) -> bool:
    if study.train_fn is not None:  # the user's function trains one run per call
      return False
    return len(group_configs) > 1 and strategy.use_population(
      population_mode(config), group_configs, os.path.join(workdir, "execution.json"), say
    )

  if study.tune is not None:
    _tuned(config, study, configs, together, add)
    return cells
  vmapped = study.schedule_only() and together([configs[n, *pairs[0]] for n in plain])
  for seed in study.seeds:
    trunks = {}
    for name in forked:
      exports: dict[int, list[int]] = {}
      for budget in study.budgets:
        exports.setdefault(fork_start(configs[name, seed, budget]), []).append(budget)
      trunk = study_lib.trunk_config(config, study, name, seed)
      table = tuple((step, tuple(b)) for step, b in sorted(exports.items()))
      trunks[name] = add(seed, [name], None, [trunk], trunk=True, exports=table)
    for budget in budgets:
      groups = [plain] if vmapped else [[n] for n in plain]
      for names in groups:
        add(seed, names, budget, [configs[n, seed, budget] for n in names], population=vmapped)
      for name in forked:
        add(seed, [name], budget, [configs[name, seed, budget]], after=(trunks[name],))
  return cells


def _check(cfg: Any, study: study_lib.Study) -> None:
  """ValueError for a bad run config, before anything trains (the engine's fields where the
  engine trains; the function's schedule in steps where the user's function does)."""
  if study.train_fn is None:
    settings.check_config(cfg)
  else:
    function.function_of(study.train_fn)  # importable here, or a clear error now
  resolve_schedule(cfg.schedule, 1000, 1000 * cfg.num_epochs)


def _tuned(config: Any, study: study_lib.Study, configs: dict, together, add) -> None:
  """Phase 1 (each arm's grid for the tuning seeds, and the extensions past its edges), then
  phase 2 (the arms at their chosen points for the other seeds), budget by budget."""
  tune, names = study.tune, study.names
  grid = tune.points()
  seed0, budget0 = tune.seeds[0], study.budget_list()[0]
  for name in names:  # every point's config is valid, before anything trains
    for point in tune.all_points().values():
      _check(study_lib.run_config(config, study, name, seed0, budget0, point), study)
  # One decision for the study: an arm's grid as one population, where that is faster.
  vmapped = not tune.grid and together(
    [study_lib.run_config(config, study, names[0], seed0, budget0, p) for p in grid]
  )
  for budget in study.budget_list():
    phase1: dict[str, list[Cell]] = {n: [] for n in names}
    for seed in tune.seeds:
      for name in names:
        for group in [grid] if vmapped else [[p] for p in grid]:
          cfgs = [study_lib.run_config(config, study, name, seed, budget, p) for p in group]
          points = tuple(p.id for p in group)
          phase1[name].append(
            add(seed, [name] * len(group), budget, cfgs, points=points, population=len(group) > 1)
          )
    for name in names:
      base = list(phase1[name])
      for side in ("low", "high"):
        before = list(base)
        for level in range(1, tune.extend_edges + 1):
          cells = [
            add(
              seed,
              [name],
              budget,
              [study_lib.run_config(config, study, name, seed, budget, p)],
              points=(p.id,),
              condition=(side, level),
              after=tuple(before),
            )
            for p in tune.extension(side, level)
            for seed in tune.seeds
          ]
          before += cells
          phase1[name] += cells
    arms_together = vmapped and study.schedule_only()
    for seed in [s for s in study.seeds if s not in tune.seeds]:
      for group in [list(names)] if arms_together else [[n] for n in names]:
        after = tuple(c for n in group for c in phase1[n])
        cfgs = [configs[n, seed, budget] for n in group]
        points = (CHOSEN,) * len(group)
        add(seed, group, budget, cfgs, points=points, population=len(group) > 1, after=after)


def finished(workdir: str, cell: Cell) -> bool:
  """Whether every run of `cell` has its `summary.json` (or, for an extension the results did
  not call for, its skip mark)."""
  return all(
    os.path.exists(os.path.join(d, "summary.json")) or phases.skipped(d) for d in cell.dirs(workdir)
  )
