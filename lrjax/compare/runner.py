"""`lrjax compare`: train every schedule of a study for every seed, fairly, and report.

Fairness: a run's initial parameters, data order and augmentation noise derive from its seed
alone, so for each seed every schedule starts from the same weights and sees the same batches in
the same order; only the learning rate differs. Each run lives in `runs/<schedule>/seed_<s>/`;
one with a `summary.json` is finished and is not run again, and an interrupted one resumes from
its checkpoint, so an interrupted study picks up where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Any

from lrjax.compare import report
from lrjax.configs.chapter_schedules import LABELS
from lrjax.plot import study as figures
from lrjax.train import loop, records, settings, strategy
from lrjax.train.claim import ClaimedError
from lrjax.train.progress import duration
from lrjax.train.resolve import resolve_schedule


def study_plan(config: Any) -> tuple[list[str], list[int], dict[str, Any]]:
  """(schedule names in column order, seeds, schedule configs) of a study config.

  `config.study.schedules` maps a name to a schedule config (durations may be in epochs);
  `config.study.order` lists the names to run, in column order (a config dict does not keep its
  keys in order), the first being the baseline of the paired comparison; without it the names
  are sorted. `config.study.seeds` lists the seeds.
  """
  if "study" not in config or "schedules" not in config.study or "seeds" not in config.study:
    raise ValueError(
      "config.study must have 'schedules' (name -> schedule config) and 'seeds'; "
      "see lrjax/configs/study_fashion_mnist.py"
    )
  schedules = config.study.schedules
  schedules = schedules.to_dict() if hasattr(schedules, "to_dict") else dict(schedules)
  if not schedules:
    raise ValueError("config.study.schedules must name at least one schedule, got none")
  order = list(config.study.get("order", None) or sorted(schedules))
  unknown = [n for n in order if n not in schedules]
  if unknown or len(set(order)) != len(order):
    raise ValueError(
      f"config.study.order must list distinct names of config.study.schedules "
      f"{sorted(schedules)}, got {order}"
    )
  seeds = list(config.study.seeds)
  if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
    raise ValueError(f"config.study.seeds must be a non-empty list of integers >= 0, got {seeds}")
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"config.study.seeds must not repeat a seed, got {seeds}")
  return order, seeds, schedules


def run_config(config: Any, name: str, seed: int, schedule: dict[str, Any]) -> Any:
  """The training config of one run: the study's config with its schedule and seed."""
  cfg = copy.deepcopy(config)
  with cfg.unlocked():
    del cfg["study"]
    cfg.seed = seed
    cfg.schedule = schedule
    # Snapshot ensembles (Huang et al. 2017) are reported for every schedule with cycles: the
    # schedule says where they end (`Schedule.cycle_ends`); one without cycles takes none.
    cfg.snapshot_ensemble = True
  return cfg


def run_dir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, "runs", name, f"seed_{seed}")


def population_mode(config: Any) -> str:
  """`config.study.population`: "auto" (the default), "always" or "never" (see
  `lrjax.train.strategy`)."""
  mode = config.study.get("population", "auto")
  if mode not in strategy.MODES:
    raise ValueError(f"config.study.population must be one of {list(strategy.MODES)}, got {mode!r}")
  return mode


@dataclasses.dataclass(frozen=True)
class Cell:
  """A unit of a study: one schedule and seed, or a seed's schedules as one population.

  `id` derives from the cell's resolved run configs, so it names the same work in every process
  and after every restart.
  """

  seed: int
  names: tuple[str, ...]
  id: str


def plan(config: Any, workdir: str, say=print) -> list[Cell]:
  """The study's cells in their fixed order (seed by seed, schedules in column order)."""
  names, seeds, schedules = study_plan(config)
  mode = population_mode(config)
  # Validate every run's config before the first one trains for minutes.
  configs = {(n, s): run_config(config, n, s, schedules[n]) for s in seeds for n in names}
  for name in names:  # a typo in the last schedule should not wait for the first runs to end
    settings.check_config(configs[name, seeds[0]])
    resolve_schedule(schedules[name], 1000, 1000 * config.num_epochs)
  together = len(names) > 1 and strategy.use_population(
    mode, [configs[n, seeds[0]] for n in names], os.path.join(workdir, "execution.json"), say
  )
  groups = (
    [(s, tuple(names)) for s in seeds] if together else [(s, (n,)) for s in seeds for n in names]
  )
  cells = []
  for seed, group in groups:
    text = json.dumps([records.jsonable(configs[n, seed].to_dict()) for n in group], sort_keys=True)
    cells.append(Cell(seed, group, hashlib.sha256(text.encode()).hexdigest()[:12]))
  return cells


def finished(workdir: str, cell: Cell) -> bool:
  return all(
    os.path.exists(os.path.join(run_dir(workdir, n, cell.seed), "summary.json")) for n in cell.names
  )


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
    what = f"{', '.join(cell.names)} as one population" if len(cell.names) > 1 else cell.names[0]
    if finished(workdir, cell):
      done += len(cell.names)
      say(f"[{done}/{total}] {what} seed {cell.seed}: finished earlier, skipped")
      continue
    where = _progress(t0, done, total)
    say(f"[{done + len(cell.names)}/{total}] {what} seed {cell.seed}: training ({where})")
    summaries = _try_cell(config, workdir, cell, quiet, say)
    if summaries is None:
      held.append(cell)
      continue
    done += len(cell.names)
    for name, summary in zip(cell.names, summaries):
      _report(quiet, name, cell.seed, summary)
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
          _report(quiet, name, cell.seed, summary)
    if held:
      time.sleep(poll)


def train_cell(
  config: Any, workdir: str, cell: Cell, *, quiet: bool = False
) -> list[dict[str, Any]]:
  """Trains (or resumes) one cell; every way of running a study trains through this function.

  A population cell trains its unfinished members that have no checkpoint of their own as one
  vmapped program; members that started alone (another mode, an earlier try) finish alone.
  Returns the summaries of the cell's members, in order.

  Raises:
    ClaimedError: another live process holds one of the cell's runs.
  """
  _, _, schedules = study_plan(config)
  out = {}
  todo = [
    n
    for n in cell.names
    if not os.path.exists(os.path.join(run_dir(workdir, n, cell.seed), "summary.json"))
  ]
  for n in cell.names:
    if n not in todo:
      out[n] = records.read_json(os.path.join(run_dir(workdir, n, cell.seed), "summary.json"))
  alone = [
    n for n in todo if os.path.isdir(os.path.join(run_dir(workdir, n, cell.seed), "checkpoints"))
  ]
  together = [n for n in todo if n not in alone]
  groups = [together] if len(cell.names) > 1 and len(together) > 1 else [[n] for n in together]
  for names in [[n] for n in alone] + groups:
    summaries = loop.train(
      [run_config(config, n, cell.seed, schedules[n]) for n in names],
      [run_dir(workdir, n, cell.seed) for n in names],
      os.path.join(workdir, "runs", "_population", f"seed_{cell.seed}"),
      vmapped=len(names) > 1,
      quiet=quiet,
    )
    out.update(zip(names, summaries))
  return [out[n] for n in cell.names]


def _progress(t0: float, done: int, total: int) -> str:
  elapsed = time.perf_counter() - t0
  if done == 0:
    return f"{duration(elapsed)} so far"
  return f"{duration(elapsed)} so far, about {duration(elapsed / done * (total - done))} left"


def _report(quiet: bool, name: str, seed: int, summary: dict) -> None:
  if summary.get("diverged"):
    d = summary["diverged"]
    _say(quiet, f"    {name} seed {seed}: diverged at step {d['step']} (lr {d['lr']:.4g})")
    return
  _say(
    quiet,
    f"    {name} seed {seed}: test accuracy "
    f"{summary['final_test_accuracy']:.4f}, loss {summary['final_test_loss']:.4f}",
  )


def collect(config: Any, workdir: str) -> dict[str, Any]:
  """The results dict (see `lrjax.compare.report`) from the finished runs in `workdir`."""
  names, seeds, _ = study_plan(config)
  runs = []
  for seed in seeds:
    for name in names:
      out = run_dir(workdir, name, seed)
      path = os.path.join(out, "summary.json")
      if not os.path.exists(path):
        continue
      summary = records.read_json(path)
      history = records.read_records(out)
      resolved = records.read_json(os.path.join(out, "config.json"))
      curves = {
        k: [r[k] for r in history]
        for k in ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
      }
      runs.append(
        {
          "schedule": name,
          "seed": seed,
          "final_test_accuracy": summary["final_test_accuracy"],
          "final_test_loss": summary["final_test_loss"],
          "best_test_accuracy": summary["best_test_accuracy"],
          "final_train_loss": summary["final_train_loss"],
          "seconds": summary["seconds"],
          "curves": curves,
          "snapshot_ensemble": summary.get("snapshot_ensemble"),
          "diverged": summary.get("diverged"),
          # The schedule in steps, to draw it at every step, not only at epoch starts.
          "schedule_config": resolved["schedule"],
          "steps_per_epoch": resolved["steps_per_epoch"],
          "total_steps": resolved["total_steps"],
        }
      )
  plain = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return {
    "config": plain,
    "schedules": names,
    "seeds": seeds,
    "labels": {n: LABELS.get(n, n.replace("_", " ")) for n in names},
    "runs": runs,
    "environment": records.environment(),
  }


def report_workdir(workdir: str) -> dict[str, Any]:
  """Collects the finished runs of the study in `workdir` (its config in `study.json`, written
  by `compare`) into results.json/.md/.csv and the figures; `missing` lists unfinished runs."""
  import ml_collections

  config = ml_collections.ConfigDict(records.read_json(os.path.join(workdir, "study.json")))
  results = collect(config, workdir)
  write_results(results, workdir)
  have = {(r["schedule"], r["seed"]) for r in results["runs"]}
  results["missing"] = [
    f"{n} seed {s}" for s in results["seeds"] for n in results["schedules"] if (n, s) not in have
  ]
  return results


def write_results(results: dict[str, Any], workdir: str) -> None:
  records.write_json(os.path.join(workdir, "results.json"), results)
  report.write_reports(results, workdir)
  figures.write_figures(results, workdir)


def _say(quiet: bool, text: str) -> None:
  if not quiet:
    print(text, file=sys.stderr, flush=True)
