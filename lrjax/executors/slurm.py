"""`lrjax compare --executor slurm`: one Slurm job array through submitit, one task per cell.

`--slurm.FIELD=VALUE` sets a field of `submitit.SlurmExecutor` (partition, time in minutes,
gpus_per_task, cpus_per_task, array_parallelism, mem, account, qos, ...); the array holds the
study's unfinished cells. A task that is preempted or reaches its time limit is requeued by
submitit (`CellJob.checkpoint`) and resumes from the cell's checkpoint; `max_num_timeout` bounds
the requeues after time-outs. `--slurm.cluster=local` runs the same tasks as local processes
(`submitit.LocalExecutor`, `array_parallelism` at a time, default one per CPU core, `time` still
the limit): a dry run off a cluster, or a study on one big machine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time
from collections.abc import Callable
from typing import Any

from lrjax.executors import common

OWN = ("cluster", "folder", "max_num_timeout")  # lrjax's fields; the rest are submitit's


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
  cluster: str = "slurm"  # or "local": the array's tasks as local processes
  folder: str | None = None  # submitit's logs and pickles; default <workdir>/slurm/%j
  max_num_timeout: int = 3  # requeues after a time-out (preemptions are not counted)
  fields: dict = dataclasses.field(default_factory=dict)  # submitit.SlurmExecutor's

  def __post_init__(self):
    if self.cluster not in ("slurm", "local"):
      raise ValueError(f"--slurm.cluster must be 'slurm' or 'local', got {self.cluster!r}")
    if self.folder is not None and (not isinstance(self.folder, str) or not self.folder):
      raise ValueError(f"--slurm.folder must be a folder, got {self.folder!r}")
    n = self.max_num_timeout
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
      raise ValueError(f"--slurm.max_num_timeout must be an integer >= 0, got {n!r}")
    t = self.fields.get("time", 1)
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
      raise ValueError(f"--slurm.time must be a whole number of minutes >= 1, got {t!r}")
    n = self.fields.get("array_parallelism", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
      raise ValueError(f"--slurm.array_parallelism must be an integer >= 1, got {n!r}")

  @classmethod
  def from_flags(cls, flags: dict[str, str]) -> SlurmOptions:
    """From `--slurm.FIELD=VALUE` texts; raises ValueError naming an unknown field or bad value."""
    if not isinstance(flags, dict):
      raise ValueError(f"flags must be a dict of field -> text, got {flags!r}")
    import submitit

    known = sorted(set(OWN) | submitit.SlurmExecutor._valid_parameters())
    unknown = sorted(set(flags) - set(known))
    if unknown:
      raise ValueError(f"unknown option --slurm.{unknown[0]}; --slurm.FIELD is one of {known}")
    values = {
      k: v if k in ("cluster", "folder") else common.parse_value(v) for k, v in flags.items()
    }
    own = {k: values.pop(k) for k in OWN if k in values}
    # Slurm's own default time is often short; submitit's is 5 minutes.
    return cls(**own, fields={"time": 240, "signal_delay_s": 120, **values})


class CellJob:
  """One array task: trains its cell. submitit calls `checkpoint` on preemption or time-out (it
  sends SIGUSR2) and requeues what it returns: this same job, which resumes from the cell's
  checkpoint."""

  def __call__(self, config: Any, workdir: str, cell: Any) -> list[dict]:
    from lrjax.train import loop

    usr = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))
    requeue = signal.getsignal(usr)  # submitit's: checkpoint(), requeue, exit

    def stop_then_requeue(signum, frame):
      stop = signal.getsignal(signal.SIGTERM)
      owner = getattr(stop, "__self__", None)
      if isinstance(owner, loop.StopSignal) and owner.signum is None:
        # In the training loop: let it finish the step and save it, not lose the steps since
        # the last checkpoint; Preempted then comes back here.
        stop(signal.SIGTERM, frame)
      elif callable(requeue):
        requeue(signum, frame)

    signal.signal(usr, stop_then_requeue)
    try:
      return common.work_cell(config, workdir, cell)
    except loop.Preempted:
      if callable(requeue):  # under submitit (SIGUSR2 or Slurm's SIGTERM): requeue and exit
        requeue(usr, None)
      raise
    finally:
      signal.signal(usr, requeue)

  def checkpoint(self, config: Any, workdir: str, cell: Any):
    import submitit

    return submitit.helpers.DelayedSubmission(self, config, workdir, cell)


def _executor(options: SlurmOptions, folder: str):
  import submitit

  fields = dict(options.fields)
  if options.cluster == "local":
    ex = submitit.LocalExecutor(folder, max_num_timeout=options.max_num_timeout)
    gpus = fields.get("gpus_per_task", fields.get("gpus_per_node", 0))
    ex.update_parameters(
      timeout_min=fields["time"], signal_delay_s=fields["signal_delay_s"], gpus_per_node=gpus
    )
    return ex
  ex = submitit.SlurmExecutor(folder, max_num_timeout=options.max_num_timeout)
  ex.update_parameters(**{"job_name": "lrjax-compare", **fields})
  return ex


def run(
  config: Any,
  workdir: str,
  options: SlurmOptions,
  say: Callable[[str], None],
  *,
  wait: bool = True,
  poll: float | None = None,
) -> dict[str, Any] | None:
  """Submits the study's unfinished cells as one job array; with `wait`, waits for it and writes
  and returns the report (else returns None: `lrjax report` collects later).

  Raises:
    CellsFailed: after the report, if a cell's task failed for good.
  """
  if not isinstance(options, SlurmOptions):
    raise ValueError(f"options must be a SlurmOptions, got {options!r}")
  if poll is not None and not poll > 0:
    raise ValueError(f"poll must be a positive number of seconds, got {poll!r}")
  if options.cluster == "slurm" and shutil.which("sbatch") is None:
    raise OSError(
      "--executor slurm submits with sbatch, which is not on PATH: run on a Slurm login node, "
      "or try the array locally with --slurm.cluster=local"
    )
  workdir = os.path.abspath(workdir)  # tasks may start in another directory
  cells = common.prepare(config, workdir, say)
  if not cells:
    return common.finish(workdir, [], say) if wait else None
  folder = options.folder or os.path.join(workdir, "slurm", "%j")
  ex = _executor(options, folder)
  n = len(cells)
  if options.cluster == "local":
    # Local processes have no array to throttle them: start `array_parallelism` (default: one
    # per CPU core) and the next as each ends; without waiting, all at once.
    width = options.fields.get("array_parallelism", os.cpu_count() or 1) if wait else n
    queue, pending = list(cells), {}

    def top_up():
      while queue and len(pending) < width:
        cell = queue.pop(0)
        pending[ex.submit(CellJob(), config, workdir, cell)] = cell

    top_up()
    say(f"slurm: {n} cells as local processes, {width} at a time; logs in {folder}")
  else:
    jobs = ex.map_array(CellJob(), [config] * n, [workdir] * n, cells)
    pending, top_up = dict(zip(jobs, cells)), lambda: None
    array_id = str(jobs[0].job_id).split("_")[0]
    say(f"slurm: {n} cells submitted as job array {array_id}; logs in {folder}")
  if not wait:
    say(f"when it is done: lrjax report --workdir {workdir}")
    return None
  poll = poll or (0.5 if options.cluster == "local" else 30.0)  # sacct is not to be hammered
  progress, failed = common.Progress(n, say), []
  while pending:
    for job in [j for j in pending if j.done()]:
      cell = pending.pop(job)
      try:
        progress.cell_done(cell, job.result())
      except Exception as e:  # a failed task: the error is in its log; go on with the others
        lines = str(e).strip().splitlines()
        error = f"{lines[-1] if lines else type(e).__name__} (log: {job.paths.stderr})"
        progress.cell_done(cell, None, error)
        failed.append(f"{cell.label()}: {error}")
    top_up()
    if pending:
      time.sleep(poll)
  return common.finish(workdir, failed, say)
