"""`lrjax compare --executor ray`: one Ray task per cell, on a local or an existing Ray cluster.

The driver starts a local cluster (`ray.init()`) or joins `--ray.address`, submits every
unfinished cell as a task asking for `cpus_per_cell` CPUs and `gpus_per_cell` GPUs (a fraction
lets several small runs share a GPU), and waits for them with `ray.wait`. A task whose worker
dies (a crash, SIGKILL, a lost node) or is preempted is retried up to `max_retries` times and
resumes from the cell's checkpoint. lrjax must be installed on every node of the cluster.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from typing import Any

from lrjax.executors import common


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
    if not isinstance(flags, dict):
      raise ValueError(f"flags must be a dict of field -> text, got {flags!r}")
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(flags) - set(fields))
    if unknown:
      raise ValueError(f"unknown option --ray.{unknown[0]}; --ray.FIELD is one of {fields}")
    values = {k: v if k == "address" else common.parse_value(v) for k, v in flags.items()}
    return cls(**values)


def _number(x: Any) -> bool:
  return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _count(x: Any, least: int) -> bool:
  return isinstance(x, int) and not isinstance(x, bool) and x >= least


def _train(config: Any, workdir: str, cell: Any, *after: Any) -> list[dict]:
  # `after`: the trunk's result, so that Ray starts a fork only once its trunk has trained.
  return common.work_cell(config, workdir, cell)


def run(
  config: Any, workdir: str, options: RayOptions, say: Callable[[str], None]
) -> dict[str, Any]:
  """Trains the study's unfinished cells as Ray tasks, then writes and returns the report.

  Raises:
    CellsFailed: after the report, if a cell failed for good (an error in training, or a worker
      lost more than `max_retries` times).
  """
  if not isinstance(options, RayOptions):
    raise ValueError(f"options must be a RayOptions, got {options!r}")
  import ray

  from lrjax.train import loop

  workdir = os.path.abspath(workdir)  # workers may run in another directory
  cells = common.prepare(config, workdir, say)
  if not cells:
    return common.finish(workdir, [], say)
  env = {}
  gpus = options.gpus_per_cell
  if gpus is not None and 0 < gpus < 1:
    # Several cells share a GPU: each JAX process must not take 75% of its memory up front.
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
  started = not ray.is_initialized()
  if started:
    ray.init(
      address=options.address,
      num_cpus=options.num_cpus,
      include_dashboard=False,
      log_to_driver=False,  # the driver prints progress; workers' logs stay in Ray's log folder
      logging_level=logging.ERROR,  # not Ray's start-up notes between the progress lines
      runtime_env={"env_vars": env} if env else None,
    )
  try:
    if gpus is None:
      gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    say(
      f"ray: {len(cells)} cells as tasks of {options.cpus_per_cell:g} CPU and {gpus:g} GPU on "
      f"{ray.cluster_resources().get('CPU', 0):g} CPUs"
    )
    task = ray.remote(_train).options(
      num_cpus=options.cpus_per_cell,
      num_gpus=gpus,
      max_retries=options.max_retries,
      # A preempted run saved its checkpoint: running the cell again resumes it.
      retry_exceptions=[loop.Preempted],
    )
    pending, trunks = {}, {}
    for cell in cells:
      key = (cell.names[0], cell.seed)
      after = [trunks[key]] if key in trunks else []
      ref = task.remote(config, workdir, cell, *after)
      if getattr(cell, "trunk", False):
        trunks[key] = ref
      pending[ref] = cell
    progress, failed = common.Progress(len(cells), say), []
    while pending:
      ready, _ = ray.wait(list(pending), num_returns=1)
      for ref in ready:
        cell = pending.pop(ref)
        try:
          progress.cell_done(cell, ray.get(ref))
        except Exception as e:  # a RayTaskError, a lost worker: report it, go on with the rest
          error = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
          progress.cell_done(cell, None, error)
          failed.append(f"{cell.label()}: {error}")
  finally:
    if started:
      ray.shutdown()
  return common.finish(workdir, failed, say)
