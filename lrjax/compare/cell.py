"""One cell, trained through the engine's `Trainer`: what every executor's worker runs.

`work(study, workdir, cell)` is the whole job of a worker, wherever it runs (this process, a
worker process, a Ray task, a Slurm task), in a process set up once with the study's runtime
(`lrjax.runtime.setup`, by the executor's worker or the command line): it trains the cell and
returns its outcome as a value, `Done` with its summaries, `Held` when another live process holds
one of its runs (the study's loop tries again later), `Stopped` when a signal stopped it after a
checkpoint, or `Failed` when the user's training function failed on it.
"""

from __future__ import annotations

import os

from lrjax import runtime as runtime_lib
from lrjax.compare import folders, phases
from lrjax.compare.plan import Cell
from lrjax.compare.tuning import CHOSEN
from lrjax.config.study import Study
from lrjax.executors.base import Done, Failed, Held, Outcome, Stopped
from lrjax.files.claim import Claim, ClaimedError
from lrjax.files.run_dir import RunDir
from lrjax.function import run as function
from lrjax.function.job import FunctionFailed
from lrjax.runtime.preemption import Preempted
from lrjax.train import build
from lrjax.train.observers import ForkExports, ProgressLine
from lrjax.train.trainer import Member, Trainer


def train_cell(study: Study, workdir: str, cell: Cell, *, quiet: bool = False) -> list[dict]:
  """Trains (or resumes) `cell`; returns the summaries of its runs, in order.

  A population cell trains its unfinished runs that have no checkpoint of their own as one
  vmapped program; runs that started alone (an earlier try in another mode) finish alone. A
  trunk cell hands each fork its checkpoint where the fork's cooldown starts. A phase-1 run its
  arm's results do not call for (an extension past an edge, a point a rung dropped) is marked
  skipped (and returns no summaries); a phase-2 cell trains each arm at its chosen point.

  Raises:
    ClaimedError: another live process holds one of the cell's runs.
    Preempted: SIGTERM or SIGINT stopped it after a checkpoint.
    ValueError: a fork has no start to resume from although its trunk has finished.
  """
  dirs = [RunDir(d) for d in cell.dirs(workdir)]
  if cell.condition is not None and not all(d.finished() for d in dirs):
    if not phases.needed(
      workdir, study, cell.names[0], cell.budget, cell.condition, cell.points[0]
    ):
      why = {"edge": "the best point is not on this edge", "rung": "the rung before dropped it"}
      for folder in dirs:
        folder.skip(why[cell.condition[0]])
      return []
  runs = cell.runs(study, workdir)
  out = {d.path: d.summary() for d in dirs if d.finished()}
  if study.train_fn is not None:
    return [out.get(d.path) or _call(study, workdir, cell, i) for i, d in enumerate(dirs)]
  todo = [i for i, d in enumerate(dirs) if d.path not in out]
  fork = not cell.trunk and study.forked(cell.names[0])
  if fork and todo and not dirs[0].has_checkpoints():
    raise ValueError(
      f"{dirs[0].path} has no checkpoint to fork from, but its trunk "
      f"{cell.after[0].dirs(workdir)[0]} has finished: delete the trunk's folder to train it "
      "(and its forks' starts) again"
    )
  alone = [i for i in todo if dirs[i].has_checkpoints()]
  together = [i for i in todo if i not in alone]
  groups = [together] if cell.population and len(together) > 1 else [[i] for i in together]
  exports = {
    step: [folders.run_dir(workdir, cell.names[0], cell.seed, b) for b in budgets]
    for step, budgets in cell.exports
  }
  runtime = runtime_lib.for_run(study.experiment.runtime)
  for group in [[i] for i in alone] + groups:
    members = [Member(build.build(runs[i], runtime), dirs[i].make().path) for i in group]
    vmapped = len(members) > 1
    group_dir = folders.population_dir(workdir, cell.seed, cell.budget) if vmapped else None
    group_dir = group_dir or dirs[group[0]].path
    os.makedirs(group_dir, exist_ok=True)
    observers = []
    if exports:
      observers.append(ForkExports(exports, runs[0].keep_checkpoints))
    if not quiet:
      # A population's folder is <root>/_population/<group>: members are labelled from <root>.
      root = os.path.dirname(os.path.dirname(group_dir))
      observers.append(ProgressLine([os.path.relpath(m.workdir, root) for m in members]))
    # A tuning run chooses on its final validation metric, and no phase reads its test data:
    # it evaluates validation alone, at its last epoch (`lrjax.compare.tuning`).
    tuning = bool(cell.points) and CHOSEN not in cell.points
    evaluation = {"splits": ("validation",), "every_epoch": False} if tuning else {}
    result = Trainer(members, group_dir, vmapped=vmapped, observers=observers, **evaluation).fit()
    out.update({dirs[i].path: s for i, s in zip(group, result.summaries)})
  return [out[d.path] for d in dirs]


def _call(study: Study, workdir: str, cell: Cell, i: int) -> dict:
  """Run i of `cell` through the study's training function, its folder claimed meanwhile."""
  name, folder = cell.names[i], RunDir(cell.dirs(workdir)[i]).make()
  point = cell.point(i, study, workdir)
  run = study.run(name, cell.seed, cell.budget, point)
  own = {k: v for k, v in study.arms[name].items() if k != "why"}
  overrides = {**own, **dict(point.overrides if point else ())}
  scale = point.lr_scale if point else 1.0
  with Claim(folder.path):
    return function.run(study, run, name, overrides, scale, folder.path)


def work(study: Study, workdir: str, cell: Cell, *, quiet: bool = True) -> Outcome:
  """A worker's whole job (see the module docstring)."""
  try:
    return Done(train_cell(study, workdir, cell, quiet=quiet))
  except ClaimedError as e:
    return Held(e.reason)
  except Preempted as e:
    return Stopped(e.step, e.signum)
  except FunctionFailed as e:  # the user's function failed on this cell alone
    return Failed(e.what)


def describe(summaries: list[dict]) -> str:
  """A finished cell's result in words, for the study's progress line."""
  if not summaries:
    return "not needed (the results before it did not call for it)"
  return ", ".join(_score(s) for s in summaries)


def _score(summary: dict) -> str:
  if summary.get("diverged"):
    d = summary["diverged"]
    return f"diverged at step {d['step']} (lr {d['lr']:.4g})"
  if summary.get("final_test_accuracy") is None:  # a tuning run: validation alone
    accuracy, loss = summary["final_validation_accuracy"], summary["final_validation_loss"]
    return f"validation accuracy {accuracy:.4f}, loss {loss:.4f}"
  return (
    f"test accuracy {summary['final_test_accuracy']:.4f}, loss {summary['final_test_loss']:.4f}"
  )
