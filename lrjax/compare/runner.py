"""`lrjax compare`: train every schedule of a study for every seed, fairly, and report.

Fairness: a run's initial parameters, data order and augmentation noise derive from its seed
alone, so for each seed every schedule starts from the same weights and sees the same batches in
the same order; only the learning rate differs. Each run lives in `runs/<schedule>/seed_<s>/`;
one with a `summary.json` is finished and is not run again, and an interrupted one resumes from
its checkpoint, so an interrupted study picks up where it stopped.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
from typing import Any

import jax

from lrjax.compare import figures, population, report
from lrjax.train import loop, settings
from lrjax.train.chapter import LABELS
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
      "see configs/study_fashion_mnist.py"
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
    # Snapshot ensembles are reported for the cyclic schedules (Huang et al. 2017).
    cfg.snapshot_ensemble = schedule.get("name") in ("cosine_annealing", "sgdr")
  return cfg


def run_dir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, "runs", name, f"seed_{seed}")


POPULATION_MODES = ("auto", "always", "never")


def population_mode(config: Any) -> str:
  """`config.study.population`: "auto" (the default), "always" or "never".

  "auto" trains one run at a time on CPU, and elsewhere a seed's runs as one vmapped population
  where a probe on this machine finds that faster (see `_use_population` and
  `lrjax.compare.population`).
  """
  mode = config.study.get("population", "auto")
  if mode not in POPULATION_MODES:
    raise ValueError(
      f"config.study.population must be one of {list(POPULATION_MODES)}, got {mode!r}"
    )
  return mode


def compare(config: Any, workdir: str, *, quiet: bool = False) -> dict[str, Any]:
  """Runs (or resumes) the whole study in `workdir` and writes results, tables and figures."""
  names, seeds, schedules = study_plan(config)
  mode = population_mode(config)
  # Validate every run's config before the first one trains for minutes.
  configs = {(n, s): run_config(config, n, s, schedules[n]) for s in seeds for n in names}
  for name in names:  # a typo in the last schedule should not wait for the first runs to end
    settings.check_config(configs[name, seeds[0]])
    resolve_schedule(schedules[name], 1000, 1000 * config.num_epochs)
  os.makedirs(workdir, exist_ok=True)
  total, t0, done = len(configs), time.perf_counter(), 0
  for seed in seeds:
    todo = []
    for name in names:
      out = run_dir(workdir, name, seed)
      if os.path.exists(os.path.join(out, "summary.json")):
        done += 1
        _say(quiet, f"[{done}/{total}] {name} seed {seed}: finished earlier, skipped")
      else:
        todo.append(name)
    # Runs that started on their own (they have a checkpoint) finish on their own.
    fresh = [
      n for n in todo if not os.path.isdir(os.path.join(run_dir(workdir, n, seed), "checkpoints"))
    ]
    if len(fresh) > 1 and _use_population(mode, [configs[n, seed] for n in fresh], workdir, quiet):
      _say(
        quiet, f"seed {seed}: training {', '.join(fresh)} as one population ({_elapsed(t0)} so far)"
      )
      summaries = population.train_population(
        [configs[n, seed] for n in fresh],
        [run_dir(workdir, n, seed) for n in fresh],
        os.path.join(workdir, "runs", "_population", f"seed_{seed}"),
        quiet=quiet,
      )
      for name, summary in zip(fresh, summaries):
        done += 1
        _report(quiet, done, total, name, seed, summary)
      todo = [n for n in todo if n not in fresh]
    for name in todo:
      done += 1
      _say(quiet, f"[{done}/{total}] {name} seed {seed}: training ({_elapsed(t0)} so far)")
      out = run_dir(workdir, name, seed)
      try:
        summary = loop.train_and_evaluate(configs[name, seed], out, quiet=quiet)
      except loop.NonFiniteLossError as e:
        summary = loop.write_diverged_summary(out, e.step, e.lr, str(e))
      _report(quiet, done, total, name, seed, summary)
  results = collect(config, workdir)
  write_results(results, workdir)
  _say(quiet, f"study done in {_elapsed(t0)}: {os.path.join(workdir, 'results.md')}")
  return results


def _report(quiet: bool, i: int, total: int, name: str, seed: int, summary: dict) -> None:
  if summary.get("diverged"):
    d = summary["diverged"]
    _say(
      quiet, f"[{i}/{total}] {name} seed {seed}: diverged at step {d['step']} (lr {d['lr']:.4g})"
    )
    return
  _say(
    quiet,
    f"[{i}/{total}] {name} seed {seed}: test accuracy "
    f"{summary['final_test_accuracy']:.4f}, loss {summary['final_test_loss']:.4f}",
  )


def _platform() -> str:
  return jax.default_backend()


def _use_population(mode: str, configs: list[Any], workdir: str, quiet: bool) -> bool:
  """The mode's answer; for "auto", decided once per study and kept in `execution.json` (so a
  resumed study decides as the first try did): one at a time on CPU, where a vmapped convolution
  becomes a grouped one (`benchmarks/run.py` measures the population about 3x slower), and
  elsewhere whichever a probe of both on this machine finds faster."""
  if mode != "auto":
    return mode == "always"
  path = os.path.join(workdir, "execution.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)["population"]
  platform = _platform()
  if platform == "cpu":
    record = {"population": False, "platform": platform, "probe": None}
    _say(quiet, "on CPU the runs train one after another (a population is slower there)")
  else:
    with tempfile.TemporaryDirectory() as tmp:
      runs = [loop.Run(c, os.path.join(tmp, str(i))) for i, c in enumerate(configs)]
      probe = population.probe(runs)
    record = {"population": probe["ratio"] < 1.0, "platform": platform, "probe": probe}
    _say(
      quiet,
      f"probe: {len(configs)} runs as one population {probe['population_ms']:.0f} ms/step, one "
      f"after another {probe['sequential_ms']:.0f} ms/step: "
      + ("population" if record["population"] else "one after another"),
    )
  with open(path, "w") as f:
    json.dump(record, f, indent=2)
  return record["population"]


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
      with open(path) as f:
        summary = json.load(f)
      with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
      with open(os.path.join(out, "config.json")) as f:
        resolved = json.load(f)
      curves = {
        k: [r[k] for r in records]
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
  }


def write_results(results: dict[str, Any], workdir: str) -> None:
  tmp = os.path.join(workdir, "results.json.tmp")
  with open(tmp, "w") as f:
    json.dump(results, f, indent=1)
  os.replace(tmp, os.path.join(workdir, "results.json"))
  report.write_reports(results, workdir)
  figures.write_figures(results, workdir)


def _elapsed(t0: float) -> str:
  s = int(time.perf_counter() - t0)
  return f"{s // 60}m{s % 60:02d}s"


def _say(quiet: bool, text: str) -> None:
  if not quiet:
    print(text, file=sys.stderr, flush=True)
