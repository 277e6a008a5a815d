"""`lrjax compare`: train every arm of a study for every seed (and budget), fairly, and report.

Fairness: a run's initial parameters, data order and augmentation noise derive from its seed
alone, so for each seed every arm starts from the same weights and sees the same batches in the
same order. `compare` checks the study config once (`lrjax.config.study`), resolves the study's
runtime once, when it is created (`study_spec`: one thread per cell unless `config.runtime`
says otherwise; a resumed study keeps the one it started with), writes `study.json`, plans the
cells (`lrjax.compare.plan`) and hands them to an executor (this process by default, or worker
processes here, Ray, or Slurm), every one of which runs the cells under that same runtime,
through the one loop of `lrjax.executors.base.run_cells`, then writes the report
(`lrjax.compare.results`). Each run lives in `runs/<arm>/[budget_<b>/]seed_<s>/`; a finished one
is not run again, and an interrupted one resumes from its checkpoint, so an interrupted study
picks up where it stopped.

The process that runs `compare` must have been set up (`lrjax.runtime.setup`, once, where it
starts; the command line sets it up with `study_spec`); cells trained in this process need it
set up with the study's runtime.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from lrjax import runtime as runtime_lib
from lrjax.clock import duration
from lrjax.compare import cell as cell_lib
from lrjax.compare import plan as plan_lib
from lrjax.compare import results as results_lib
from lrjax.compare import stale
from lrjax.config.study import Study
from lrjax.executors.base import CellsFailed, Executor, run_cells
from lrjax.executors.process import InProcess
from lrjax.files.atomic import read_json, write_json
from lrjax.runtime import RuntimeMismatch, Spec
from lrjax.runtime.preemption import Preempted
from lrjax.runtime.threads import counted

# A study's cells run at one thread each unless `config.runtime.threads` says otherwise: the
# same bits whatever the executor, and on a CPU the fastest way to spread small runs (one worker
# per core, `--executor local`).
CELL_THREADS = 1


# What users call; `say_stderr` and `resolve_runtime` serve it and the command line.
__all__ = ["compare"]


def say_stderr(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


class StudyStopped(Preempted):
  """SIGTERM or SIGINT stopped the study; the cells in training saved their checkpoints."""

  def __str__(self) -> str:
    name = signal.Signals(self.signum).name
    where = f" (the last at step {self.step})" if self.step else ""
    return (
      f"stopped by {name}: the cells in training saved their checkpoints{where}; run the same "
      "command to resume"
    )

  def __reduce__(self):
    return (StudyStopped, (self.step, self.signum))


def study_spec(config: Any, workdir: str) -> Spec:
  """The runtime of the study in `workdir`, as it is resolved once, when the study is created:
  `config.runtime`'s explicit fields, then those the study recorded when it started (a resumed
  study keeps them), then one thread per cell (`CELL_THREADS`). What the command line sets its
  process up with, and every executor's workers theirs.

  Raises:
    RuntimeMismatch: an explicit field differs from the one the study started with.
  """
  study = Study.of(config)
  path = os.path.join(workdir, "study.json")
  recorded = read_json(path).get("runtime") if os.path.exists(path) else None
  spec = study.experiment.runtime.adopt(recorded, f"the study in {workdir}")
  return dataclasses.replace(spec, threads=spec.threads or CELL_THREADS)


def _check_here(spec: Spec, workdir: str) -> None:
  """Cells trained in this process: it must run the study's runtime."""
  here = runtime_lib.for_run()
  if (here.threads, here.xla_cpu_tuning) != (spec.threads, spec.xla_cpu_tuning):
    raise RuntimeMismatch(
      f"the study in {workdir} trains its cells at {counted(spec.threads)} with "
      f"xla_cpu_tuning={spec.xla_cpu_tuning}; this process was set up with "
      f"{counted(here.threads)} and xla_cpu_tuning={here.xla_cpu_tuning}: call "
      f"lrjax.runtime.setup({{'threads': {spec.threads}, 'xla_cpu_tuning': "
      f"{spec.xla_cpu_tuning}}}) where the process starts, or give compare() an executor of "
      "worker processes (lrjax.executors.local.LocalExecutor)"
    )


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
    config: a `Study`, or a study config to check (`config.study`, see `lrjax.config.study`).
    workdir: the study's folder.
    executor: where the cells train (default: this process, one after another).
    shard: `(i, n)`: only cells i, i + n, i + 2n, ... of the fixed order, and no report
      (`lrjax report` collects the shards' work).
    wait: with False, submit the cells that can start and return (a Slurm array).
    quiet: no progress lines.

  Returns:
    The results (see `lrjax.compare.report`), or None for a shard or without waiting.

  Raises:
    ConfigError: a field of the study config lrjax cannot take, naming it.
    CellsFailed: after the report, if some cells failed in their workers.
    StudyStopped: SIGTERM or SIGINT stopped it; the cells in training saved checkpoints.
    RuntimeMismatch: the study's runtime differs from the one it started with, or (cells in
      this process) from the one this process was set up with.
  """
  say: Callable[[str], None] = (lambda text: None) if quiet else say_stderr
  t0 = time.perf_counter()
  study = Study.of(config)
  workdir = os.path.abspath(workdir)  # workers may run in another directory
  executor = executor or InProcess()
  in_process = isinstance(executor, InProcess)
  try:
    os.makedirs(workdir, exist_ok=True)
    # Resolved once, here: "auto" convolutions become what this machine runs, recorded.
    runtime = runtime_lib.for_run(study_spec(study, workdir), elsewhere=True)
    spec = runtime.spec()
    if in_process:
      _check_here(spec, workdir)
    study = study.with_runtime(spec)
    say(runtime.status())
    executor.start(spec, say)
    write_json(os.path.join(workdir, "study.json"), study.to_dict())
    cells = plan_lib.plan(study, workdir, say)
    if shard is not None:
      cells = cells[shard[0] :: shard[1]]
    work = functools.partial(cell_lib.work, study, workdir, quiet=quiet or not in_process)
    ran = run_cells(
      cells,
      executor,
      work,
      finished=functools.partial(stale.finished, study, workdir),
      describe=cell_lib.describe,
      say=say,
      wait=wait,
    )
  finally:
    executor.close()
  if ran.stopped is not None:
    raise StudyStopped(ran.step, ran.stopped)
  if shard is not None or not wait:
    what = f"shard {shard[0]}/{shard[1]}" if shard is not None else "submitted"
    say(f"{what} done in {duration(time.perf_counter() - t0)}; `lrjax report --workdir {workdir}`")
    return None
  results = results_lib.collect(study, workdir)
  results_lib.write_results(results, workdir)
  say(f"study done in {duration(time.perf_counter() - t0)}: {os.path.join(workdir, 'results.md')}")
  if ran.failed:
    raise CellsFailed(
      f"{len(ran.failed)} cells failed ({'; '.join(ran.failed)}); the report holds the others. "
      "Run the same command again to retry them: finished runs are kept."
    )
  return results
