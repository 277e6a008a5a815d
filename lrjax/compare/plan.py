"""A study as a fixed list of cells, with their dependencies, planned before anything trains.

A cell is one arm, seed (and budget); or a seed's arms as one vmapped population, where that
mode wins (`lrjax.train.strategy`, decided once and kept in `execution.json`); or the trunk of a
forked arm, which the arm's budget cells run `after`. A trunk's `exports` (the step at which each
budget's cooldown starts, and the budgets forking there) are computed here from the run configs
and the dataset's size, without building a run. A cell's `id` derives from its resolved run
configs (the runtime included), so it names the same work in every process and after every
restart; the order (seed by seed, trunks first, then budget by budget, arms in column order) is
what `--shard I/N` splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from lrjax.compare import study as study_lib
from lrjax.files.atomic import jsonable
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

  def dirs(self, workdir: str) -> list[str]:
    if self.trunk:
      return [study_lib.trunk_dir(workdir, self.names[0], self.seed)]
    return [study_lib.run_dir(workdir, n, self.seed, self.budget) for n in self.names]

  def configs(self, config: Any, study: study_lib.Study) -> list[Any]:
    if self.trunk:
      return [study_lib.trunk_config(config, study, self.names[0], self.seed)]
    return [study_lib.run_config(config, study, n, self.seed, self.budget) for n in self.names]

  def label(self) -> str:
    what = f"{', '.join(self.names)} as one population" if len(self.names) > 1 else self.names[0]
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
      settings.check_config(cfg)
      resolve_schedule(cfg.schedule, 1000, 1000 * cfg.num_epochs)
  together = (
    len(plain) > 1
    and study.schedule_only()
    and strategy.use_population(
      population_mode(config),
      [configs[n, *pairs[0]] for n in plain],
      os.path.join(workdir, "execution.json"),
      say,
    )
  )
  cells: list[Cell] = []

  def add(seed, names, budget, cfgs, **kw) -> Cell:
    text = json.dumps([jsonable(c.to_dict()) for c in cfgs], sort_keys=True)
    digest = hashlib.sha256(f"{kw.get('trunk', False)}{text}".encode()).hexdigest()[:12]
    cell = Cell(seed, tuple(names), digest, budget, **kw)
    cells.append(cell)
    return cell

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
      groups = [plain] if together else [[n] for n in plain]
      for names in groups:
        add(seed, names, budget, [configs[n, seed, budget] for n in names], population=together)
      for name in forked:
        add(seed, [name], budget, [configs[name, seed, budget]], after=(trunks[name],))
  return cells


def finished(workdir: str, cell: Cell) -> bool:
  """Whether every run of `cell` has its `summary.json`."""
  return all(os.path.exists(os.path.join(d, "summary.json")) for d in cell.dirs(workdir))
