"""Helpers the benchmark scripts share: a median timing, fresh processes taken in turn, and
writing a result's two files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def median_ms(fn, *args, n: int) -> float:
  """Median wall time of `fn(*args)` in milliseconds over `n` calls, after one warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(n):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return float(np.median(times)) * 1e3


def in_fresh_processes(
  commands: list[tuple[str, list[str], dict | None]], processes: int
) -> dict[str, list[float]]:
  """The last number each `(label, python arguments, environment or None)` command prints, from
  `processes` fresh processes a command, the commands in alternating order: one process's figure
  differs from the next one's (thread placement, the heap's layout), so one is not enough."""
  out: dict[str, list[float]] = {label: [] for label, _, _ in commands}
  for p in range(processes):
    for label, args, env in commands if p % 2 == 0 else commands[::-1]:
      proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=True
      )
      out[label].append(float(proc.stdout.split()[-1]))
  return out


def median_and_range(values: list[float]) -> str:
  return f"{np.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def measure_or_reread(stem: str, measure, markdown) -> None:
  """`measure()` and write its outputs; with `--markdown` alone, the Markdown again from the last
  run's benchmarks/<stem>.json (a changed table, no new measurement)."""
  if sys.argv[1:] == ["--markdown"]:
    with open(os.path.join(HERE, f"{stem}.json")) as f:
      result = json.load(f)
  else:
    result = measure()
  write_outputs(stem, result, markdown(result))


def write_outputs(stem: str, data, md: str) -> None:
  """Writes benchmarks/<stem>.json and benchmarks/<stem>.md, and prints the Markdown."""
  with open(os.path.join(HERE, f"{stem}.json"), "w") as f:
    json.dump(data, f, indent=2)
  with open(os.path.join(HERE, f"{stem}.md"), "w") as f:
    f.write(md)
  print(md)


def build_run(config):
  """The run of `config` (checked into its `Experiment`), in a process set up with its runtime:
  a benchmark is a process's entry point, so it sets the process up (once) as `lrjax` does."""
  from lrjax import runtime
  from lrjax.config.experiment import Experiment
  from lrjax.train import build

  experiment = Experiment.of(config)
  return build.build(experiment, runtime.setup(experiment.runtime))
