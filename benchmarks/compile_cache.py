"""What a study's compile cache saves: the same study with it and without it, side by side.

    python benchmarks/compile_cache.py [rounds]   # about 8 minutes on 2 CPU cores
    python benchmarks/compile_cache.py --markdown # the table again from compile_cache.json

`lrjax compare --config study_fashion_mnist --executor local` (the chapter's seven arms, 2
seeds, the ConvNet for 1 epoch of 12,800 images: a short study, where compiling weighs most),
each time in a fresh workdir and a fresh command: with the study's compile cache
(`<workdir>/compiled`, the default; `lrjax.runtime.compile_cache`) and without any
(`JAX_ENABLE_COMPILATION_CACHE=false`), alternating round by round so that the machine's
drifting speed falls on both alike. Every worker compiles what its cells need where there is no
cache; with it, a program one worker compiled is loaded by the other.

Where a study starts a process per cell (a Slurm array task, a resumed study, a Ray worker
restarted), every process compiles its programs afresh without a cache. The second table
measures that case: one run of the study's size (`lrjax train --config fashion_mnist`, the
ConvNet on 12,800 images for 1 epoch) in a fresh process, with a cache that an earlier process
filled and without one, alternating.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from timing import in_fresh_processes, measure_or_reread

STEM = "compile_cache"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = [
  "compare",
  "--config",
  "study_fashion_mnist",
  "--executor",
  "local",
  "--config.num_epochs=1",
]
WAYS = {
  "with the study's compile cache": {},
  "without a compile cache": {"JAX_ENABLE_COMPILATION_CACHE": "false"},
}


def _environment() -> dict[str, str]:
  """This process's environment without JAX's and XLA's settings: each way sets its own."""
  return {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "PJRT_"))}


def _study_seconds(extra_env: dict) -> tuple[float, int]:
  """(wall seconds of the whole command, programs left in the study's cache)."""
  env = _environment()
  env.update(extra_env)
  with tempfile.TemporaryDirectory() as workdir:
    t = time.perf_counter()
    subprocess.run(
      [sys.executable, "-m", "lrjax", *COMMAND, "--workdir", workdir],
      env=env,
      cwd=ROOT,
      check=True,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t
    cache = os.path.join(workdir, "compiled")
    kept = (
      len([f for f in os.listdir(cache) if f.endswith("-cache")]) if os.path.isdir(cache) else 0
    )
  return seconds, kept


CELL = [
  "-m",
  "lrjax",
  "train",
  "--config",
  "fashion_mnist",
  "--config.num_epochs=1",
  "--config.train_limit=12800",
  "--config.tensorboard=False",
]
# Each process trains in a fresh workdir (in one already used, it would find its run finished).
CELL_SCRIPT = """
import subprocess, sys, tempfile, time
with tempfile.TemporaryDirectory() as workdir:
  t = time.perf_counter()
  subprocess.run([*sys.argv[1:], workdir], check=True, capture_output=True)
  print(time.perf_counter() - t)
"""


def _cell_seconds(processes: int) -> dict[str, list[float]]:
  """Wall seconds of one cell's fresh process, with a filled cache and without one."""
  env = _environment()
  with tempfile.TemporaryDirectory() as tmp:
    cached = dict(
      env,
      JAX_COMPILATION_CACHE_DIR=os.path.join(tmp, "compiled"),
      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.2",
    )
    alone = dict(env, JAX_ENABLE_COMPILATION_CACHE="false")
    cell = [sys.executable, *CELL, "--workdir"]
    # The process that fills the cache, as the first cell of a study does.
    subprocess.run([*cell, os.path.join(tmp, "fill")], env=cached, check=True, capture_output=True)
    commands = [(way, ["-c", CELL_SCRIPT, *cell], e) for way, e in zip(WAYS, (cached, alone))]
    return in_fresh_processes(commands, processes)


def measure(rounds: int = 2, processes: int = 4) -> dict:
  seconds: dict[str, list[float]] = {way: [] for way in WAYS}
  programs = 0
  for r in range(rounds):
    for way, env in WAYS.items() if r % 2 == 0 else list(WAYS.items())[::-1]:
      s, kept = _study_seconds(env)
      seconds[way].append(s)
      programs = max(programs, kept)
      print(f"round {r}: {way}: {s:.1f} s", file=sys.stderr, flush=True)
  cell = _cell_seconds(processes)
  for way, values in cell.items():
    print(f"one cell per process, {way}: {values}", file=sys.stderr, flush=True)
  return {
    "command": "lrjax " + " ".join(COMMAND),
    "cpus": os.cpu_count(),
    "rounds": rounds,
    "programs": programs,
    "seconds": seconds,
    "cell_command": "lrjax " + " ".join(CELL[2:]),
    "cell_seconds": cell,
  }


def markdown(r: dict) -> str:
  medians = {way: float(np.median(v)) for way, v in r["seconds"].items()}
  cached, alone = list(WAYS)
  lines = [
    f"`{r['command']}` on {r['cpus']} CPU cores (14 cells, two workers of one thread), "
    f"median of {r['rounds']} alternating rounds, each a fresh workdir and command; the cache "
    f"held {r['programs']} programs at the end.",
    "",
    "| The study | Seconds |",
    "|---|---:|",
  ]
  lines += [f"| {way} | {medians[way]:.1f} |" for way in WAYS]
  ratio = medians[cached] / medians[alone]
  lines += ["", f"With the cache the study takes {ratio:.2f}x its time without one."]
  if "cell_seconds" in r:
    cell = {way: float(np.median(v)) for way, v in r["cell_seconds"].items()}
    n = len(r["cell_seconds"][cached])
    lines += [
      "",
      f"One cell in a fresh process (`{r['cell_command']}`, the whole process: imports, data, "
      f"training, evaluation), median of {n} processes each, alternating, the cache filled by "
      "an earlier process:",
      "",
      "| One cell's process | Seconds |",
      "|---|---:|",
    ]
    for way, values in r["cell_seconds"].items():
      lines.append(f"| {way} | {cell[way]:.1f} ({min(values):.1f}-{max(values):.1f}) |")
    lines += [
      "",
      f"With the cache a fresh process takes {cell[cached] / cell[alone]:.2f}x its time "
      "without one.",
    ]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  if sys.argv[1:2] and sys.argv[1] != "--markdown":
    rounds = int(sys.argv.pop(1))
    measure_or_reread(STEM, lambda: measure(rounds), markdown)
  else:
    measure_or_reread(STEM, measure, markdown)
