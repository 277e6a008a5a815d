"""Where a study keeps its runs, under its workdir:

    runs/<arm>/[budget_<b>/]seed_<s>/               a final run
    runs/<arm>/[budget_<b>/]tune/<point>/seed_<s>/  a tuning run (`lrjax.compare.tuning`)
    runs/<arm>/trunk/seed_<s>/                      a forked arm's trunk
    runs/_population/[budget_<b>_]seed_<s>/         a vmapped population's checkpoints
    compiled/                                       the programs its processes compiled
                                                    (`lrjax.runtime.compile_cache`)

Each run's folder is an `lrjax.files.run_dir.RunDir`.
"""

from __future__ import annotations

import os


def run_dir(workdir: str, name: str, seed: int, budget: int | None = None) -> str:
  if budget is None:
    return os.path.join(workdir, "runs", name, f"seed_{seed}")
  return os.path.join(workdir, "runs", name, f"budget_{budget}", f"seed_{seed}")


def tune_dir(workdir: str, name: str, point: str, seed: int, budget: int | None = None) -> str:
  """A tuning run's folder: `runs/<arm>/[budget_<b>/]tune/<point>/seed_<s>`."""
  folder = os.path.dirname(run_dir(workdir, name, seed, budget))
  return os.path.join(folder, "tune", point, f"seed_{seed}")


def trunk_dir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, "runs", name, "trunk", f"seed_{seed}")


def population_dir(workdir: str, seed: int, budget: int | None = None) -> str:
  tail = f"seed_{seed}" if budget is None else f"budget_{budget}_seed_{seed}"
  return os.path.join(workdir, "runs", "_population", tail)


def compiled_dir(workdir: str) -> str:
  """The study's compiled programs, shared by every process that trains its cells."""
  return os.path.join(workdir, "compiled")
