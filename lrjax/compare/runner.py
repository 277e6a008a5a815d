"""`lrjax compare`: train every arm of a study for every seed (and budget), fairly, and report.

Fairness: a run's initial parameters, data order and augmentation noise derive from its seed
alone, so for each seed every arm starts from the same weights and sees the same batches in the
same order. A study is a fixed list of cells (`plan`), each trained through `train_cell`
however the study is spread. Each run lives in `runs/<arm>/[budget_<b>/]seed_<s>/`; one with a
`summary.json` is finished and is not run again, and an interrupted one resumes from its
checkpoint, so an interrupted study picks up where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Any

from lrjax.compare import budgets, report
from lrjax.compare import study as study_lib
from lrjax.configs.beyond_arms import LABELS as BEYOND_LABELS
from lrjax.configs.chapter_schedules import LABELS
from lrjax.plot import study as figures
from lrjax.plot.budgets import plot_budgets
from lrjax.train import build, loop, records, settings, strategy
from lrjax.train.claim import ClaimedError
from lrjax.train.progress import duration, so_far
from lrjax.train.resolve import resolve_schedule


def population_mode(config: Any) -> str:
  """`config.study.population`: "auto" (the default), "always" or "never" (see
  `lrjax.train.strategy`)."""
  mode = config.study.get("population", "auto")
  if mode not in strategy.MODES:
    raise ValueError(f"config.study.population must be one of {list(strategy.MODES)}, got {mode!r}")
  return mode


@dataclasses.dataclass(frozen=True)
class Cell:
  """A unit of a study: one arm, seed (and budget), or a seed's arms as one population, or the
  trunk of a forked arm (`trunk=True`).

  `id` derives from the cell's resolved run configs, so it names the same work in every process
  and after every restart.
  """

  seed: int
  names: tuple[str, ...]
  id: str
  budget: int | None = None
  trunk: bool = False

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


def plan(config: Any, workdir: str, say=print) -> list[Cell]:
  """The study's cells in their fixed order: seed by seed, then budget by budget, arms in column
  order; a forked arm's trunk comes before the seed's budgets."""
  study = study_lib.parse(config)
  mode = population_mode(config)
  pairs = [(s, b) for s in study.seeds for b in study.budget_list()]
  forked = [n for n in study.names if study.fork(n) and study.budgets]
  plain = [n for n in study.names if n not in forked]
  # Validate every run's config before the first one trains for minutes.
  configs = {
    (n, s, b): study_lib.run_config(config, study, n, s, b) for s, b in pairs for n in study.names
  }
  for (_, s, b), cfg in configs.items():
    if s == study.seeds[0] and b == study.budget_list()[0]:
      settings.check_config(cfg)
      resolve_schedule(cfg.schedule, 1000, 1000 * cfg.num_epochs)
  together = (
    len(plain) > 1
    and study.schedule_only()
    and strategy.use_population(
      mode,
      [configs[n, *pairs[0]] for n in plain],
      os.path.join(workdir, "execution.json"),
      say,
    )
  )
  cells = []

  def add(seed, names, budget, trunk=False, cfgs=None):
    cfgs = cfgs or [configs[n, seed, budget] for n in names]
    text = json.dumps([records.jsonable(c.to_dict()) for c in cfgs], sort_keys=True)
    digest = hashlib.sha256(f"{trunk}{text}".encode()).hexdigest()[:12]
    cells.append(Cell(seed, tuple(names), digest, budget, trunk))

  for seed in study.seeds:
    for name in forked:
      add(seed, [name], None, True, [study_lib.trunk_config(config, study, name, seed)])
    for budget in study.budget_list():
      groups = [plain] if together else [[n] for n in plain]
      for names in groups + [[n] for n in forked]:
        add(seed, names, budget)
  return cells


def finished(workdir: str, cell: Cell) -> bool:
  return all(os.path.exists(os.path.join(d, "summary.json")) for d in cell.dirs(workdir))


def compare(
  config: Any, workdir: str, *, quiet: bool = False, shard: tuple[int, int] | None = None
) -> dict[str, Any] | None:
  """Runs (or resumes) the study in `workdir` and writes results, tables and figures.

  With `shard=(i, n)` only cells i, i + n, i + 2n, ... of the fixed order are trained and no
  report is written (`lrjax report` collects the shards' work). Without it every cell is trained
  here unless another process holds it (then this one waits for it), and the report is written.
  """
  t0 = time.perf_counter()

  def say(text: str) -> None:
    _say(quiet, text)

  os.makedirs(workdir, exist_ok=True)
  records.write_json(os.path.join(workdir, "study.json"), config.to_dict())
  cells = plan(config, workdir, say)
  if shard is not None:
    cells = cells[shard[0] :: shard[1]]
  total, done, held = sum(len(c.names) for c in cells), 0, []
  for cell in cells:
    if finished(workdir, cell):
      done += len(cell.names)
      say(f"[{done}/{total}] {cell.label()}: finished earlier, skipped")
      continue
    where = so_far(time.perf_counter() - t0, done, total)
    say(f"[{done + len(cell.names)}/{total}] {cell.label()}: training ({where})")
    summaries = _try_cell(config, workdir, cell, quiet, say)
    if summaries is None:
      held.append(cell)
      continue
    done += len(cell.names)
    for name, summary in zip(cell.names, summaries):
      _report(quiet, name, cell, summary)
  if shard is not None:
    say(f"shard {shard[0]}/{shard[1]} done in {duration(time.perf_counter() - t0)}")
    return None
  _wait_for(held, config, workdir, quiet, say)
  results = collect(config, workdir)
  write_results(results, workdir)
  say(f"study done in {duration(time.perf_counter() - t0)}: {os.path.join(workdir, 'results.md')}")
  return results


def _try_cell(config, workdir, cell, quiet, say):
  try:
    return train_cell(config, workdir, cell, quiet=quiet)
  except ClaimedError as e:
    say(f"    skipped: {e}")
    return None


def _wait_for(held: list[Cell], config: Any, workdir: str, quiet: bool, say, poll: float = 2.0):
  """Waits for the cells other processes hold; trains any whose owner died (claim expired)."""
  while held:
    held = [c for c in held if not finished(workdir, c)]
    for cell in list(held):
      summaries = _try_cell(config, workdir, cell, True, lambda text: None)
      if summaries is not None:
        held.remove(cell)
        for name, summary in zip(cell.names, summaries):
          _report(quiet, name, cell, summary)
    if held:
      time.sleep(poll)


class WaitingForTrunk(ClaimedError):
  """A fork cannot start before its trunk has trained to the fork's step."""


def train_cell(
  config: Any, workdir: str, cell: Cell, *, quiet: bool = False
) -> list[dict[str, Any]]:
  """Trains (or resumes) one cell; every way of running a study trains through this function.

  A population cell trains its unfinished members that have no checkpoint of their own as one
  vmapped program; members that started alone (another mode, an earlier try) finish alone. A
  trunk cell hands each fork its checkpoint where the fork's cooldown starts. Returns the
  summaries of the cell's members, in order.

  Raises:
    ClaimedError: another live process holds one of the cell's runs, or (WaitingForTrunk) the
      fork's trunk has not reached the fork yet.
  """
  study = study_lib.parse(config)
  if cell.trunk:
    return [_train_trunk(config, study, workdir, cell, quiet)]
  dirs, cfgs = cell.dirs(workdir), cell.configs(config, study)
  if study.fork(cell.names[0]) and study.budgets:
    _check_fork_start(workdir, cell, dirs[0])
  out = {d: records.read_json(os.path.join(d, "summary.json")) for d in dirs if _done(d)}
  todo = [i for i, d in enumerate(dirs) if d not in out]
  alone = [i for i in todo if os.path.isdir(os.path.join(dirs[i], "checkpoints"))]
  together = [i for i in todo if i not in alone]
  groups = [together] if len(dirs) > 1 and len(together) > 1 else [[i] for i in together]
  for group in [[i] for i in alone] + groups:
    summaries = loop.train(
      [cfgs[i] for i in group],
      [dirs[i] for i in group],
      study_lib.population_dir(workdir, cell.seed, cell.budget),
      vmapped=len(group) > 1,
      quiet=quiet,
    )
    out.update({dirs[i]: s for i, s in zip(group, summaries)})
  return [out[d] for d in dirs]


def _done(folder: str) -> bool:
  return os.path.exists(os.path.join(folder, "summary.json"))


def _train_trunk(config, study, workdir: str, cell: Cell, quiet: bool) -> dict[str, Any]:
  name, folder = cell.names[0], cell.dirs(workdir)[0]
  if _done(folder):
    return records.read_json(os.path.join(folder, "summary.json"))
  exports: dict[int, list[str]] = {}
  for budget in study.budgets:
    fork = build.build(study_lib.run_config(config, study, name, cell.seed, budget)).schedule
    fields = fork.fields()
    start = int(fields["warmup_steps"]) + int(fields["stable_steps"])
    exports.setdefault(start, []).append(study_lib.run_dir(workdir, name, cell.seed, budget))
  os.makedirs(folder, exist_ok=True)
  run = build.build(cell.configs(config, study)[0])
  [summary], _ = loop.train_group([loop.Member(run, folder)], folder, quiet=quiet, exports=exports)
  return summary


def _check_fork_start(workdir: str, cell: Cell, folder: str) -> None:
  if os.path.isdir(os.path.join(folder, "checkpoints")):
    return
  trunk = study_lib.trunk_dir(workdir, cell.names[0], cell.seed)
  if _done(trunk):
    raise ValueError(
      f"{folder} has no checkpoint to fork from, but its trunk {trunk} has finished: delete the "
      "trunk's folder to train it (and its forks' starts) again"
    )
  raise WaitingForTrunk(f"{cell.label()} waits for its trunk {trunk}")


def _report(quiet: bool, name: str, cell: Cell, summary: dict) -> None:
  who = f"    {name} seed {cell.seed}" + (f" budget {cell.budget}" if cell.budget else "")
  if cell.trunk:
    _say(quiet, f"{who}: trunk trained ({summary['epochs']} epochs)")
  elif summary.get("diverged"):
    d = summary["diverged"]
    _say(quiet, f"{who}: diverged at step {d['step']} (lr {d['lr']:.4g})")
  else:
    accuracy, loss = summary["final_test_accuracy"], summary["final_test_loss"]
    _say(quiet, f"{who}: test accuracy {accuracy:.4f}, loss {loss:.4f}")


def collect(config: Any, workdir: str) -> dict[str, Any]:
  """The results dict (see `lrjax.compare.report`) from the finished runs in `workdir`."""
  study = study_lib.parse(config)
  runs, missing = [], []
  for seed in study.seeds:
    for budget in study.budget_list():
      for name in study.names:
        out = study_lib.run_dir(workdir, name, seed, budget)
        if not _done(out):
          missing.append(f"{name} seed {seed}" + (f" budget {budget}" if budget else ""))
          continue
        runs.append(_run_result(out, name, seed, budget, forked=bool(study.fork(name))))
  plain = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return {
    "config": plain,
    "schedules": list(study.names),
    "seeds": list(study.seeds),
    "budgets": list(study.budgets),
    "labels": {n: {**LABELS, **BEYOND_LABELS}.get(n, n.replace("_", " ")) for n in study.names},
    "runs": runs,
    "trunks": _trunk_epochs(workdir, study),
    "missing": missing,
    "environment": records.environment(),
  }


def _run_result(out: str, name: str, seed: int, budget: int | None, forked: bool) -> dict:
  summary = records.read_json(os.path.join(out, "summary.json"))
  history = records.read_records(out)
  resolved = records.read_json(os.path.join(out, "config.json"))
  keys = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
  schedule = resolved["schedule"]
  trained = resolved["total_steps"]
  if forked and budget is not None:  # a fork trains its cooldown only; the trunk is shared
    trained -= int(schedule["warmup_steps"]) + int(schedule["stable_steps"])
  return {
    "schedule": name,
    "seed": seed,
    "budget": budget,
    "final_test_accuracy": summary["final_test_accuracy"],
    "final_test_loss": summary["final_test_loss"],
    "best_test_accuracy": summary["best_test_accuracy"],
    "final_train_loss": summary["final_train_loss"],
    "seconds": summary["seconds"],
    "curves": {k: [r[k] for r in history] for k in keys},
    "snapshot_ensemble": summary.get("snapshot_ensemble"),
    "diverged": summary.get("diverged"),
    # The schedule in steps, to draw it at every step, not only at epoch starts.
    "schedule_config": schedule,
    "steps_per_epoch": resolved["steps_per_epoch"],
    "total_steps": resolved["total_steps"],
    "epochs_trained": trained / resolved["steps_per_epoch"],
  }


def _trunk_epochs(workdir: str, study: study_lib.Study) -> dict[str, dict[str, int]]:
  """Epochs each finished trunk trained, by arm and seed (the compute its forks share)."""
  out: dict[str, dict[str, int]] = {}
  for name in study.names:
    for seed in study.seeds:
      folder = study_lib.trunk_dir(workdir, name, seed)
      if study.fork(name) and _done(folder):
        epochs = records.read_json(os.path.join(folder, "summary.json"))["epochs"]
        out.setdefault(name, {})[str(seed)] = epochs
  return out


def report_workdir(workdir: str) -> dict[str, Any]:
  """Collects the finished runs of the study in `workdir` (its config in `study.json`, written
  by `compare`) into results.json/.md/.csv and the figures; `missing` lists unfinished runs."""
  import ml_collections

  config = ml_collections.ConfigDict(records.read_json(os.path.join(workdir, "study.json")))
  results = collect(config, workdir)
  write_results(results, workdir)
  return results


def write_results(results: dict[str, Any], workdir: str) -> None:
  records.write_json(os.path.join(workdir, "results.json"), results)
  report.write_reports(results, workdir)
  if results["budgets"]:  # the curves of the longest budget, and accuracy against budget
    figures.write_figures(budgets.at_budget(results, max(results["budgets"])), workdir)
    plot_budgets(results, os.path.join(workdir, "figures", "accuracy_vs_budget.png"))
  else:
    figures.write_figures(results, workdir)


def _say(quiet: bool, text: str) -> None:
  if not quiet:
    print(text, file=sys.stderr, flush=True)
