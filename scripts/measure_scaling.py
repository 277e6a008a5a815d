"""Wall time of the smoke study however it is spread; prints the README's scaling table.

    python scripts/measure_scaling.py [--config study_smoke] [--skip ray,slurm]
    python scripts/measure_scaling.py --config study_fashion_mnist --skip shard,plain,ray,slurm \
      --more ''

Each way runs in a fresh workdir as real `python -m lrjax` processes (what a user types), one
way after another. "Training" is the sum of the runs' own `seconds` (summary.json: the training
loop with its compilation); "added per cell" is wall time minus that, over the cells: process
start, imports, planning, evaluation, the report and figures, and the executor's own cost. Most
of that is paid once per study, so the script also runs 1 process and Ray with twice the seeds:
the difference, per extra cell, is what one more cell adds.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start(*args: str) -> subprocess.Popen:
  env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
  return subprocess.Popen(
    [sys.executable, "-m", "lrjax", *args],
    cwd=ROOT,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )


def _wait(*procs: subprocess.Popen) -> None:
  for p in procs:
    err = p.communicate()[1]
    if p.returncode != 0:
      raise SystemExit(f"{p.args} failed ({p.returncode}):\n{err[-2000:]}")


def _ways(config: str, workdir: str, more: tuple[str, ...] = ()) -> dict:
  study = ["compare", "--config", config, "--workdir", workdir, *more]
  ray = [*study, "--executor", "ray", "--ray.cpus_per_cell=1"]
  return {
    "1 process": lambda: _wait(_start(*study)),
    "2 shards (`--shard I/2`), then `lrjax report`": lambda: (
      _wait(*[_start(*study, "--shard", f"{i}/2") for i in range(2)]),
      _wait(_start("report", "--workdir", workdir)),
    ),
    "2 plain processes on one workdir": lambda: _wait(_start(*study), _start(*study)),
    "`--executor local`, 2 workers": lambda: _wait(
      _start(*study, "--executor", "local", "--local.workers=2")
    ),
    "`--executor ray`, 1 worker": lambda: _wait(_start(*ray, "--ray.num_cpus=1")),
    "`--executor ray`, 2 workers": lambda: _wait(_start(*ray, "--ray.num_cpus=2")),
    "`--executor slurm --slurm.cluster=local`, 2 at a time": lambda: _wait(
      _start(*study, "--executor", "slurm", "--slurm.cluster=local", "--slurm.array_parallelism=2")
    ),
  }


def _training_seconds(workdir: str) -> tuple[float, int]:
  paths = glob.glob(os.path.join(workdir, "runs", "*", "seed_*", "summary.json"))
  return sum(json.load(open(p))["seconds"] for p in paths), len(paths)


def _measure(config: str, name: str, workdir: str, more: tuple[str, ...] = ()) -> tuple:
  t0 = time.perf_counter()
  _ways(config, workdir, more)[name]()
  wall = time.perf_counter() - t0
  training, cells = _training_seconds(workdir)
  print(f"{name} {' '.join(more)}: {wall:.1f} s, {cells} runs", file=sys.stderr, flush=True)
  return wall, training, cells


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="study_smoke")
  p.add_argument(
    "--skip", default="", help="comma-separated parts of the ways' names: shard, plain, ray, ..."
  )
  p.add_argument(
    "--more",
    default="--config.study.seeds=(0,1,2,3)",
    help="the override that adds cells ('': measure no added cells)",
  )
  args = p.parse_args()
  skip = {s for s in args.skip.split(",") if s}
  rows, marginal = [], []
  with tempfile.TemporaryDirectory() as tmp:
    names = [n for n in _ways(args.config, "") if not any(s in n for s in skip)]
    for i, name in enumerate(names):
      wall, training, cells = _measure(args.config, name, os.path.join(tmp, str(i)))
      rows.append(
        (
          name,
          wall,
          training,
          (wall - training) / max(cells, 1),
          wall / rows[0][1] if rows else 1.0,
        )
      )
    added_ways = [n for n in names if n == "1 process" or n.endswith("ray`, 1 worker")]
    for i, name in enumerate(added_ways if args.more else []):
      small = next(r for r in rows if r[0] == name)
      wall, training, more = _measure(args.config, name, os.path.join(tmp, f"m{i}"), (args.more,))
      added = ((wall - training) - (small[1] - small[2])) / max(more - cells, 1)
      marginal.append((name, more, wall, added))
  print(f"`lrjax compare --config {args.config}` ({cells} runs), {os.cpu_count()} CPU cores:\n")
  print("| Way | Wall time | Runs' training | Added per cell | Wall vs 1 process |")
  print("| --- | ---: | ---: | ---: | ---: |")
  for name, wall, training, added, ratio in rows:
    print(f"| {name} | {wall:.1f} s | {training:.1f} s | {added:.1f} s | {ratio:.2f}x |")
  if marginal:
    print(f"\nWhat one more cell adds beyond its training (`{args.more}`, against the above):\n")
    print("| Way | Runs | Wall time | Added per extra cell |")
    print("| --- | ---: | ---: | ---: |")
    for name, more, wall, added in marginal:
      print(f"| {name} | {more} | {wall:.1f} s | {added:.1f} s |")


if __name__ == "__main__":
  main()
