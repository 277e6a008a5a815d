"""`lrjax compare --executor slurm`: a study's cells as Slurm array tasks, through submitit.

`--slurm.FIELD=VALUE` sets a field of `submitit.SlurmExecutor` (partition, time in minutes,
gpus_per_task, cpus_per_task, array_parallelism, mem, account, qos, ...). The study's loop
(`base.run_cells`) submits the cells that can start as one job array (a forked cooldown's cells
once their trunk has finished, as a second array). Each task sets its process up with the
study's runtime first (`lrjax.runtime.setup`). A task that is preempted or reaches its time
limit is requeued by submitit (`CellJob.checkpoint`) and resumes from the cell's checkpoint;
`max_num_timeout` bounds the requeues after time-outs. `--slurm.cluster=local` runs the same
tasks as local processes (`submitit.LocalExecutor`, `array_parallelism` at a time, default one
per CPU core, `time` still the limit): a dry run off a cluster, or a study on one big machine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time
from collections.abc import Callable
from typing import Any

from lrjax.executors import options as parse
from lrjax.executors.base import Executor, Failed, Stopped, one_line

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
    values = {k: v if k in ("cluster", "folder") else parse.value(v) for k, v in flags.items()}
    own = {k: values.pop(k) for k in OWN if k in values}
    # Slurm's own default time is often short; submitit's is 5 minutes.
    return cls(**own, fields={"time": 240, "signal_delay_s": 120, **values})


class CellJob:
  """One array task: sets its process up with the study's runtime `spec`, then runs
  `work(cell)`. submitit calls `checkpoint` on preemption or time-out (it sends SIGUSR2) and
  requeues what it returns: this same job, which resumes from the cell's checkpoint."""

  def __call__(self, spec: Any, work: Any, cell: Any) -> Any:
    from lrjax import runtime
    from lrjax.runtime.preemption import StopSignal

    runtime.setup(spec)
    usr = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))
    requeue = signal.getsignal(usr)  # submitit's: checkpoint(), requeue, exit

    def stop_then_requeue(signum, frame):
      loop = StopSignal.innermost()
      if loop is not None and loop.signum is None:
        # In the training loop: let it finish the step and save it, not lose the steps since
        # the last checkpoint; the cell then comes back `Stopped`, below.
        loop.request(signal.SIGTERM)
      elif callable(requeue):
        requeue(signum, frame)

    signal.signal(usr, stop_then_requeue)
    try:
      outcome = work(cell)
      if isinstance(outcome, Stopped) and callable(requeue):
        requeue(usr, None)  # under submitit (SIGUSR2 or Slurm's SIGTERM): requeue and exit
      return outcome
    finally:
      signal.signal(usr, requeue)

  def checkpoint(self, spec: Any, work: Any, cell: Any):
    import submitit

    return submitit.helpers.DelayedSubmission(self, spec, work, cell)


class SlurmExecutor(Executor):
  """Cells as Slurm array tasks, or as local processes (see the module docstring)."""

  def __init__(self, options: SlurmOptions, workdir: str, say: Callable[[str], None]):
    if not isinstance(options, SlurmOptions):
      raise ValueError(f"options must be a SlurmOptions, got {options!r}")
    if options.cluster == "slurm" and shutil.which("sbatch") is None:
      raise OSError(
        "--executor slurm submits with sbatch, which is not on PATH: run on a Slurm login node, "
        "or try the array locally with --slurm.cluster=local"
      )
    import submitit

    self.options, self.say, self._told, self._spec = options, say, False, None
    self.folder = options.folder or os.path.join(workdir, "slurm", "%j")
    fields = dict(options.fields)
    if options.cluster == "local":
      # Local processes have no array to throttle them: `array_parallelism` (default: one per
      # CPU core) at a time.
      self.capacity = fields.get("array_parallelism", os.cpu_count() or 1)
      ex = submitit.LocalExecutor(self.folder, max_num_timeout=options.max_num_timeout)
      gpus = fields.get("gpus_per_task", fields.get("gpus_per_node", 0))
      ex.update_parameters(
        timeout_min=fields["time"], signal_delay_s=fields["signal_delay_s"], gpus_per_node=gpus
      )
      self.poll = 0.5
    else:
      self.capacity = None  # the array's own parallelism throttles it
      ex = submitit.SlurmExecutor(self.folder, max_num_timeout=options.max_num_timeout)
      ex.update_parameters(**{"job_name": "lrjax-compare", **fields})
      self.poll = 30.0  # sacct is not to be hammered
    self._ex = ex

  def start(self, spec: Any, say: Callable[[str], None]) -> None:
    self._spec = spec

  def submit(self, cells, work):
    if self.options.cluster == "local":
      if not self._told:
        self.say(
          f"slurm: cells as local processes, {self.capacity} at a time; logs in {self.folder}"
        )
        self._told = True
      return [self._ex.submit(CellJob(), self._spec, work, cell) for cell in cells]
    n = len(cells)
    jobs = self._ex.map_array(CellJob(), [self._spec] * n, [work] * n, list(cells))
    array_id = str(jobs[0].job_id).split("_")[0]
    self.say(f"slurm: {n} cells submitted as job array {array_id}; logs in {self.folder}")
    return jobs

  def wait(self, handles, timeout):
    done = [j for j in handles if j.done()]
    if not done:
      time.sleep(min(timeout, self.poll))
      done = [j for j in handles if j.done()]
    out = []
    for job in done:
      try:
        out.append((job, job.result()))
      except Exception as e:  # a failed task: the error is in its log; go on with the others
        out.append((job, Failed(f"{one_line(e)} (log: {job.paths.stderr})")))
    return out
