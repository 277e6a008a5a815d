"""`lrjax compare`: train every arm of a study for every seed (and budget), fairly, and report.

Fairness: a run's initial parameters, data order and augmentation noise derive from its seed
alone, so for each seed every arm starts from the same weights and sees the same batches in the
same order. `compare` resolves the study's runtime once (`lrjax.runtime.setup`; a resumed study
adopts the one it started with), writes `study.json`, plans the cells (`lrjax.compare.plan`) and
hands them to an executor (this process by default, or worker processes here, Ray, or Slurm)
through the one loop of `lrjax.executors.base.run_cells`, then writes the report
(`lrjax.compare.results`). Each run lives in `runs/<arm>/[budget_<b>/]seed_<s>/`; one with a
`summary.json` is finished and is not run again, and an interrupted one resumes from its
checkpoint, so an interrupted study picks up where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from lrjax.compare import cell as cell_lib
from lrjax.compare import plan as plan_lib
from lrjax.compare import results as results_lib
from lrjax.compare import stale
from lrjax.compare import study as study_lib
from lrjax.executors.base import CellsFailed, Executor, run_cells
from lrjax.executors.process import InProcess
from lrjax.files.atomic import read_json, write_json
from lrjax.runtime import Runtime, Spec, setup
from lrjax.train.progress import duration

# What users call; `say_stderr` and `resolve_runtime` serve it and the command line.
__all__ = ["compare"]


def say_stderr(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


def resolve_runtime(
  config: Any, workdir: str, say: Callable[[str], None], *, threads: int = 0
) -> tuple[Any, Runtime]:
  """(`config` with its runtime resolved here, the `Runtime`): adopting the one `workdir`'s study
  started with for the fields left at "auto" or 0, as every cell of the study will run it.
  `threads`: the executor's thread count per cell where neither the config nor the study sets
  one."""
  path = os.path.join(workdir, "study.json")
  recorded = read_json(path).get("runtime") if os.path.exists(path) else None
  runtime = setup(study_spec(config.get("runtime"), recorded, threads, workdir))
  say(runtime.status())
  config = copy.deepcopy(config)
  with config.unlocked():
    config.runtime = runtime.spec().to_dict()
  return config, runtime


def study_spec(asked: Any, recorded: dict | None, threads: int, workdir: str) -> Spec:
  """The runtime spec of a study: `asked` (`config.runtime`) with the fields it leaves at "auto"
  or 0 taken from `recorded` (the runtime the study in `workdir` started with), and then, for a
  study that has none, the thread count `threads` (the executor's per cell) where given."""
  spec = Spec.of(asked).adopt(recorded, f"the study in {workdir}")
  if spec.threads == 0 and threads:
    spec = dataclasses.replace(spec, threads=threads)
  return spec


def compare(
  config: Any,
  workdir: str,
  *,
  executor: Executor | None = None,
  shard: tuple[int, int] | None = None,
  wait: bool = True,
  quiet: bool = False,
) -> dict[str, Any] | None:
  """Runs (or resumes) the study in `workdir` and writes results, tables and figures.

  Args:
    config: a study config (`config.study`, see `lrjax.compare.study`).
    workdir: the study's folder.
    executor: where the cells train (default: this process, one after another).
    shard: `(i, n)`: only cells i, i + n, i + 2n, ... of the fixed order, and no report
      (`lrjax report` collects the shards' work).
    wait: with False, submit the cells that can start and return (a Slurm array).
    quiet: no progress lines.

  Returns:
    The results (see `lrjax.compare.report`), or None for a shard or without waiting.

  Raises:
    CellsFailed: after the report, if some cells failed in their workers.
  """
  say: Callable[[str], None] = (lambda text: None) if quiet else say_stderr
  t0 = time.perf_counter()
  workdir = os.path.abspath(workdir)  # workers may run in another directory
  executor = executor or InProcess()
  try:
    os.makedirs(workdir, exist_ok=True)
    config, runtime = resolve_runtime(config, workdir, say, threads=executor.cell_threads())
    executor.use_runtime(runtime)
    write_json(os.path.join(workdir, "study.json"), config.to_dict())
    cells = plan_lib.plan(config, workdir, say)
    if shard is not None:
      cells = cells[shard[0] :: shard[1]]
    in_process = isinstance(executor, InProcess)
    work = functools.partial(cell_lib.work, config, workdir, quiet=quiet or not in_process)
    failed = run_cells(
      cells,
      executor,
      work,
      finished=functools.partial(stale.finished, config, study_lib.parse(config), workdir),
      describe=cell_lib.describe,
      say=say,
      wait=wait,
    )
  finally:
    executor.close()
  if shard is not None or not wait:
    what = f"shard {shard[0]}/{shard[1]}" if shard is not None else "submitted"
    say(f"{what} done in {duration(time.perf_counter() - t0)}; `lrjax report --workdir {workdir}`")
    return None
  results = results_lib.collect(config, workdir)
  results_lib.write_results(results, workdir)
  say(f"study done in {duration(time.perf_counter() - t0)}: {os.path.join(workdir, 'results.md')}")
  if failed:
    raise CellsFailed(
      f"{len(failed)} cells failed ({'; '.join(failed)}); the report holds the others. "
      "Run the same command again to retry them: finished runs are kept."
    )
  return results
