"""`lrjax compare --executor ray`: one Ray task per cell, on a local or an existing Ray cluster.

The driver starts a local cluster (`ray.init()`) or joins `--ray.address`; the study's loop
(`base.run_cells`) submits each cell whose dependencies have finished as a task asking for
`cpus_per_cell` CPUs and `gpus_per_cell` GPUs (a fraction lets several small runs share a GPU).
A task whose worker dies (a crash, SIGKILL, a lost node) is retried up to `max_retries` times
by Ray, and one stopped by a signal on its node comes back `Stopped` and is submitted again: both
resume from the cell's checkpoint. Each task sets its worker process up with the study's runtime
(`lrjax.runtime.setup`, once per process), so its bits do not depend on the CPUs Ray gives it:
the study's runtime decides (one thread per cell by default), whatever `cpus_per_cell` reserves;
where a cell runs more threads than its task reserves CPUs, the study says so. lrjax must be
installed on every node of the cluster.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

from lrjax.executors import options as parse
from lrjax.executors.base import Executor, Failed, Outcome, one_line


@dataclasses.dataclass(frozen=True)
class RayOptions:
  address: str | None = None  # None: start a local cluster for this study
  cpus_per_cell: float = 1.0
  gpus_per_cell: float | None = None  # None: 1 where the cluster has GPUs, else 0
  max_retries: int = 3  # of a cell whose worker died or was preempted
  num_cpus: int | None = None  # CPUs of the local cluster (default: all); not with address

  def __post_init__(self):
    if self.address is not None and (not isinstance(self.address, str) or not self.address):
      raise ValueError(f"--ray.address must be a cluster address, got {self.address!r}")
    if not _number(self.cpus_per_cell) or not self.cpus_per_cell > 0:
      raise ValueError(f"--ray.cpus_per_cell must be a positive number, got {self.cpus_per_cell!r}")
    gpus = self.gpus_per_cell
    if gpus is not None and (not _number(gpus) or gpus < 0 or (gpus > 1 and gpus % 1)):
      raise ValueError(
        "--ray.gpus_per_cell must be a number >= 0, whole above 1 (0.25: four cells share a "
        f"GPU), got {gpus!r}"
      )
    if not _count(self.max_retries, 0):
      raise ValueError(f"--ray.max_retries must be an integer >= 0, got {self.max_retries!r}")
    if self.num_cpus is not None and not _count(self.num_cpus, 1):
      raise ValueError(f"--ray.num_cpus must be an integer >= 1, got {self.num_cpus!r}")
    if self.num_cpus is not None and self.address is not None:
      raise ValueError(
        f"--ray.num_cpus sizes a local cluster; with --ray.address={self.address} the "
        "cluster has its own size"
      )

  @classmethod
  def from_flags(cls, flags: dict[str, str]) -> RayOptions:
    """From `--ray.FIELD=VALUE` texts; raises ValueError naming an unknown field or bad value."""
    return parse.dataclass_from_flags(cls, "ray", flags, keep_text=("address",))


def _number(x: Any) -> bool:
  return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _count(x: Any, least: int) -> bool:
  return isinstance(x, int) and not isinstance(x, bool) and x >= least


def _call(spec: Any, work: Callable[[Any], Outcome], cell: Any) -> Outcome:
  """A Ray task: its worker process set up with the study's runtime (once), then the cell."""
  from lrjax import runtime

  runtime.setup(spec)
  return work(cell)


class RayExecutor(Executor):
  """Cells as Ray tasks (see the module docstring); `say` hears where they run."""

  resubmit_stopped = True  # a task stopped by its node's signal resumes elsewhere

  def __init__(self, options: RayOptions, say: Callable[[str], None]):
    if not isinstance(options, RayOptions):
      raise ValueError(f"options must be a RayOptions, got {options!r}")
    import ray

    from lrjax.runtime import compile_cache

    self._ray, self.started = ray, not ray.is_initialized()
    self._spec: Any = None
    self._options = options
    # A cluster joined by address did not inherit this process's environment: its workers are
    # given the study's compile cache (a folder every node must see, like the study's).
    env = compile_cache.environment()
    gpus = options.gpus_per_cell
    if gpus is not None and 0 < gpus < 1:
      # Several cells share a GPU: each JAX process must not take 75% of its memory up front.
      env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if self.started:
      ray.init(
        address=options.address,
        num_cpus=options.num_cpus,
        include_dashboard=False,
        log_to_driver=False,  # the driver prints progress; workers' logs stay in Ray's folder
        logging_level=logging.ERROR,  # not Ray's start-up notes between the progress lines
        runtime_env={"env_vars": env} if env else None,
      )
    if gpus is None:
      gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    cpus = ray.cluster_resources().get("CPU", 0)
    self.capacity = None  # Ray queues what the cluster cannot start yet
    say(f"ray: cells as tasks of {options.cpus_per_cell:g} CPU and {gpus:g} GPU on {cpus:g} CPUs")
    self._task = ray.remote(_call).options(
      num_cpus=options.cpus_per_cell, num_gpus=gpus, max_retries=options.max_retries
    )

  def start(self, spec: Any, say: Callable[[str], None]) -> None:
    self._spec = spec
    cpus = self._options.cpus_per_cell
    if spec.threads > cpus:
      say(
        f"    each cell runs {spec.threads} threads (config.runtime.threads) on the {cpus:g} CPU "
        f"its task reserves: tasks will share CPUs; --ray.cpus_per_cell={spec.threads} reserves "
        "what they use (the threads, not the reservation, fix the bits)"
      )

  def submit(self, cells, work):
    return [self._task.remote(self._spec, work, cell) for cell in cells]

  def wait(self, handles, timeout):
    ray = self._ray
    ready, rest = ray.wait(list(handles), num_returns=1, timeout=timeout)
    if ready and rest:
      ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
    out = []
    for ref in ready:
      try:
        out.append((ref, ray.get(ref)))
      except Exception as e:  # a RayTaskError, a lost worker: that cell failed; go on
        out.append((ref, Failed(one_line(e))))
    return out

  def close(self) -> None:
    if self.started:
      self._ray.shutdown()
