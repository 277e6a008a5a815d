"""A study's cells on worker processes of one thread each, against one worker of every thread.

    python benchmarks/local_workers.py [rounds]    # about 7 minutes on two CPU cores

Cells of `study_fashion_mnist` (the ConvNet, 3 epochs of 12,800 images, the validation and test
splits evaluated each epoch), trained through `lrjax.executors.local.LocalExecutor` as `lrjax
compare` trains them: per round, two cells on one worker with all the CPUs' threads (what one
process does, in a warm process) and two cells on one worker per CPU with one thread each. The
two ways alternate, round after round, so that the machine's drifting speed falls on both alike;
a first round warms every worker up (imports, compilation) and is not counted. Writes
local_workers.{json,md}.
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time

import numpy as np
from timing import measure_or_reread

from lrjax import config as config_lib
from lrjax.compare import cell as cell_lib
from lrjax.compare import plan as plan_lib
from lrjax.compare import stale
from lrjax.config.study import Study
from lrjax.executors.base import run_cells
from lrjax.executors.local import LocalExecutor, LocalOptions
from lrjax.runtime import Spec
from lrjax.runtime import threads as threads_lib

ARM = "constant"


def _study(threads: int, seeds: tuple[int, ...]) -> Study:
  config = config_lib.load("study_fashion_mnist")
  with config.unlocked():
    config.progress = False
    config.runtime.threads = threads
    config.study.seeds = seeds
    config.study.schedules = {ARM: config.study.schedules[ARM]}
    config.study.order = (ARM,)
  return Study.of(config)


def _cells(executor: LocalExecutor, threads: int, seeds: tuple[int, ...]) -> float:
  """Seconds to train the cells of `seeds` (one each) through `executor`, in a fresh workdir."""
  study = _study(threads, seeds)
  with tempfile.TemporaryDirectory() as workdir:
    cells = plan_lib.plan(study, workdir, lambda text: None)
    t0 = time.perf_counter()
    ran = run_cells(
      cells,
      executor,
      functools.partial(cell_lib.work, study, workdir),
      finished=functools.partial(stale.finished, study, workdir),
      describe=cell_lib.describe,
      say=lambda text: None,
    )
    seconds = time.perf_counter() - t0
  if ran.failed:
    raise RuntimeError("; ".join(ran.failed))
  return seconds


def measure(rounds: int = 2) -> dict:
  cpus = threads_lib.available_cpus()
  ways = {"one worker": (1, cpus), "a worker per CPU": (cpus, 1)}
  executors = {}
  for name, (workers, threads) in ways.items():
    executor = LocalExecutor(LocalOptions(workers), say=print)
    executor.start(Spec(threads=threads), print)
    executors[name] = executor
  seconds: dict[str, list[float]] = {name: [] for name in ways}
  try:
    for r in range(rounds + 1):
      seeds = tuple(range(2 * r, 2 * r + 2))
      for name, (workers, threads) in ways.items():
        took = _cells(executors[name], threads, seeds)
        if r:  # round 0 warms the workers up
          seconds[name].append(took)
        print(f"round {r}, {name} ({workers} x {threads} threads): {took:.1f} s", flush=True)
  finally:
    for executor in executors.values():
      executor.close()
  one, per_cpu = (np.asarray(seconds[n]) for n in ways)
  return {
    "cpus": cpus,
    "ways": {n: {"workers": w, "threads": t} for n, (w, t) in ways.items()},
    "cells_per_round": 2,
    "rounds": rounds,
    "seconds": seconds,
    "ratios": (one / per_cpu).tolist(),
  }


def markdown(result: dict) -> str:
  one, per_cpu = (result["seconds"][n] for n in ("one worker", "a worker per CPU"))
  w = result["ways"]
  lines = [
    f"Two cells of `study_fashion_mnist` ({ARM}, 3 epochs of 12,800 images, validation and test "
    f"evaluated each epoch) on {result['cpus']} CPUs; medians of {result['rounds']} alternating "
    "rounds after a warm-up round.",
    "",
    "| way | workers x threads | two cells | cells per minute |",
    "|---|---|---:|---:|",
  ]
  for name, values in (("one worker", one), ("a worker per CPU", per_cpu)):
    s = float(np.median(values))
    ways = f"{w[name]['workers']} x {w[name]['threads']}"
    lines.append(f"| {name} | {ways} | {s:.1f} s | {2 * 60 / s:.2f} |")
  lines += ["", f"A worker per CPU trains {float(np.median(result['ratios'])):.2f}x the cells."]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  rounds = int(sys.argv[1]) if sys.argv[1:] and sys.argv[1] != "--markdown" else 2
  measure_or_reread("local_workers", lambda: measure(rounds), markdown)
