"""One cell, trained through the engine's `Trainer`: what every executor's worker runs.

`work(config, workdir, cell)` is the whole job of a worker, wherever it runs (this process, a
Ray task, a Slurm task): it applies the cell's runtime (`lrjax.runtime.setup`, with the values
the study resolved when it was planned, so every worker computes the same bits), trains the
cell, and says `Done` with its summaries, or `Held` when another live process holds one of its
runs (the study's loop tries again later).
"""

from __future__ import annotations

import os
from typing import Any

from lrjax.compare import phases
from lrjax.compare import study as study_lib
from lrjax.compare.plan import Cell
from lrjax.executors.base import Done, Failed, Held, Outcome
from lrjax.files.atomic import read_json
from lrjax.files.claim import Claim, ClaimedError
from lrjax.function import run as function
from lrjax.function.job import FunctionFailed
from lrjax.runtime import setup
from lrjax.train import build, hooks
from lrjax.train.trainer import Member, Trainer


def _done(folder: str) -> bool:
  return os.path.exists(os.path.join(folder, "summary.json"))


def _summary(folder: str) -> dict:
  return read_json(os.path.join(folder, "summary.json"))


def train_cell(config: Any, workdir: str, cell: Cell, *, quiet: bool = False) -> list[dict]:
  """Trains (or resumes) `cell`; returns the summaries of its runs, in order.

  A population cell trains its unfinished runs that have no checkpoint of their own as one
  vmapped program; runs that started alone (an earlier try in another mode) finish alone. A
  trunk cell hands each fork its checkpoint where the fork's cooldown starts. An extension of a
  tuning grid that its arm's results do not call for is marked skipped (and returns no
  summaries); a phase-2 cell trains each arm at its chosen point.

  Raises:
    ClaimedError: another live process holds one of the cell's runs.
    ValueError: a fork has no start to resume from although its trunk has finished.
  """
  study = study_lib.parse(config)
  dirs = cell.dirs(workdir)
  if cell.condition is not None and not all(_done(d) for d in dirs):
    side, level = cell.condition
    if not phases.extension_needed(workdir, study, cell.names[0], cell.budget, side, level):
      for folder in dirs:
        phases.mark_skipped(folder, f"the best point is not on the {side} edge")
      return []
  cfgs = cell.configs(config, study, workdir)
  out = {d: _summary(d) for d in dirs if _done(d)}
  if study.train_fn is not None:
    return [out.get(d) or _call(config, study, workdir, cell, i) for i, d in enumerate(dirs)]
  todo = [i for i, d in enumerate(dirs) if d not in out]
  fork = not cell.trunk and bool(study.budgets) and study.fork(cell.names[0]) is not None
  if fork and todo and not os.path.isdir(os.path.join(dirs[0], "checkpoints")):
    raise ValueError(
      f"{dirs[0]} has no checkpoint to fork from, but its trunk {cell.after[0].dirs(workdir)[0]} "
      "has finished: delete the trunk's folder to train it (and its forks' starts) again"
    )
  alone = [i for i in todo if os.path.isdir(os.path.join(dirs[i], "checkpoints"))]
  together = [i for i in todo if i not in alone]
  groups = [together] if cell.population and len(together) > 1 else [[i] for i in together]
  exports = {
    step: [study_lib.run_dir(workdir, cell.names[0], cell.seed, b) for b in budgets]
    for step, budgets in cell.exports
  }
  for group in [[i] for i in alone] + groups:
    members = []
    for i in group:
      os.makedirs(dirs[i], exist_ok=True)
      members.append(Member(build.build(cfgs[i]), dirs[i]))
    vmapped = len(members) > 1
    folder = (
      study_lib.population_dir(workdir, cell.seed, cell.budget) if vmapped else dirs[group[0]]
    )
    os.makedirs(folder, exist_ok=True)
    standard = hooks.standard(members, folder, quiet=quiet, exports=exports)
    loop = Trainer(members, folder, vmapped=vmapped, hooks=standard).fit()
    out.update({dirs[i]: s for i, s in zip(group, loop.summaries)})
  return [out[d] for d in dirs]


def _call(config: Any, study: study_lib.Study, workdir: str, cell: Cell, i: int) -> dict:
  """Run i of `cell` through the study's training function, its folder claimed meanwhile."""
  name, folder = cell.names[i], cell.dirs(workdir)[i]
  point = cell.point(i, study, workdir)
  cfg = study_lib.run_config(config, study, name, cell.seed, cell.budget, point)
  overrides = {**study.arms[name], **dict(point.overrides if point else ())}
  scale = point.lr_scale if point else 1.0
  os.makedirs(folder, exist_ok=True)
  with Claim(folder):
    return function.run(config, cfg, name, overrides, scale, folder)


def work(config: Any, workdir: str, cell: Cell, *, quiet: bool = True) -> Outcome:
  """A worker's whole job (see the module docstring)."""
  setup(config.get("runtime"))
  try:
    return Done(train_cell(config, workdir, cell, quiet=quiet))
  except ClaimedError as e:
    return Held(str(e).split(";")[0])
  except FunctionFailed as e:  # the user's function failed on this cell alone
    return Failed(e.what)


def describe(summaries: list[dict]) -> str:
  """A finished cell's result in words, for the study's progress line."""
  if not summaries:
    return "not needed (the grid's best point is not on this edge)"
  return ", ".join(_score(s) for s in summaries)


def _score(summary: dict) -> str:
  if summary.get("diverged"):
    d = summary["diverged"]
    return f"diverged at step {d['step']} (lr {d['lr']:.4g})"
  return (
    f"test accuracy {summary['final_test_accuracy']:.4f}, loss {summary['final_test_loss']:.4f}"
  )
