"""`lrjax compare` and `lrjax report`: a study in one process, in shards, or collected.

  lrjax compare --config study_smoke --workdir runs/smoke               # everything, here
  lrjax compare --config study_smoke --workdir runs/smoke --shard 0/2   # cells 0, 2, 4, ...
  lrjax report --workdir runs/smoke                                     # results from the shards

Under a Slurm job array `--shard` defaults to the array's task (`SLURM_ARRAY_TASK_ID` -
`SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`). Several plain `lrjax compare` processes on
one workdir share its cells: each claims a cell before training it, and each waits at the end for
the cells the others hold, so every one of them ends with the full report.

`--executor local` (worker processes on this machine, each on its own CPUs, `--local.workers=N`),
`--executor ray` (one Ray task per cell, `--ray.FIELD=VALUE`) and `--executor slurm` (one Slurm
job array through submitit, `--slurm.FIELD=VALUE`) keep this process as the driver: it hands the
cells out, waits, and writes the report (see `lrjax.executors`).

  lrjax compare --config study_fashion_mnist:tuned --workdir runs/tuned --executor local

  lrjax compare --config study_smoke --workdir runs/smoke --executor ray --ray.cpus_per_cell=1
  lrjax compare --config study_cifar10 --workdir /shared/c10 --executor slurm \
    --slurm.partition=gpu --slurm.gpus_per_task=1 --slurm.time=240 --slurm.array_parallelism=8
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping

from lrjax.cli.common import (
  add_config_flags,
  extra_hint,
  failure,
  parse_config_command,
  parser,
  run_command,
  usage_error,
)

# The extra each executor needs, and the module that extra installs.
EXECUTOR_EXTRAS = {"ray": ("ray", "ray"), "slurm": ("slurm", "submitit")}


def _shard(text: str) -> tuple[int, int]:
  m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
  if m is None or not int(m[1]) < int(m[2]):
    raise ValueError(text)
  return int(m[1]), int(m[2])


_shard.__name__ = "shard I/N with 0 <= I < N"


def slurm_array_shard(environ: Mapping[str, str]) -> tuple[int, int] | None:
  """(index, count) of this Slurm array task, or None outside a job array."""
  try:
    task = int(environ["SLURM_ARRAY_TASK_ID"])
    first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
    count = int(environ["SLURM_ARRAY_TASK_COUNT"])
  except (KeyError, ValueError):
    return None
  return (task - first, count) if 0 <= task - first < count else None


def compare(args: list[str]) -> int:
  p = parser("compare", "Train every schedule of a study for every seed; write the report.")
  add_config_flags(p, "directory of the study's runs and results")
  p.add_argument(
    "--shard",
    type=_shard,
    metavar="I/N",
    help="train only cells I, I+N, I+2N, ... of the study and write no report (`lrjax report` "
    "collects); default: the Slurm array task, if any",
  )
  p.add_argument(
    "--executor",
    default="process",
    help="where the cells train: process (here, the default), local (worker processes here, "
    "each on its own CPUs; --local.workers, default one per CPU), ray (one Ray task per cell; "
    "--ray.address, --ray.cpus_per_cell, --ray.gpus_per_cell, --ray.max_retries, "
    "--ray.num_cpus) or slurm (submitit job arrays; --slurm.FIELD=VALUE of "
    "submitit.SlurmExecutor, --slurm.cluster=local to run them as local processes)",
  )
  p.add_argument(
    "--no_wait",
    action="store_true",
    help="with --executor slurm: submit the cells that can start and return; `lrjax report` "
    "collects later",
  )
  from lrjax.executors import options as executor_options

  try:
    args, options = executor_options.split(args, ("local", "ray", "slurm"))
  except ValueError as e:
    raise usage_error(f"compare: {e}") from e
  from lrjax.config import study as study_lib

  ns, study = parse_config_command(p, args, study_lib.parse)
  kind = ns.executor
  if kind not in EXECUTORS:
    raise usage_error(f"compare: unknown --executor {kind!r}; one of {', '.join(EXECUTORS)}")
  for prefix, given in options.items():
    if given and kind != prefix:
      raise usage_error(f"compare: --{prefix}.{next(iter(given))} needs --executor {prefix}")
  if ns.no_wait and kind != "slurm":
    raise usage_error("compare: --no_wait needs --executor slurm")
  shard = ns.shard
  if kind == "process":
    shard = shard or slurm_array_shard(os.environ)
  elif shard is not None:
    raise usage_error(
      f"compare: --shard splits a study by hand; --executor {kind} spreads it itself"
    )
  make = _executor_factory(kind, options.get(kind, {}), ns.workdir)
  from lrjax import runtime
  from lrjax.compare import folders, runner
  from lrjax.executors.base import CellsFailed

  def run():
    # The process, set up once, under the study's runtime (the one it started with, if any):
    # cells trained here, and every executor's workers, run under the same.
    workdir = os.path.abspath(ns.workdir)
    runtime.setup(runner.study_spec(study, workdir), compiled=folders.compiled_dir(workdir))
    try:
      return runner.compare(study, ns.workdir, executor=make(), shard=shard, wait=not ns.no_wait)
    except CellsFailed as e:
      raise failure(f"compare: {e}") from e

  results = run_command(run)
  if results is not None:
    with open(os.path.join(ns.workdir, "results.md")) as f:
      print(f.read())
  return 0


EXECUTORS = ("process", "local", "ray", "slurm")


def _executor_factory(kind: str, flags: dict[str, str], workdir: str):
  """A function that makes the executor `kind` (once the study has set up its runtime)."""
  if kind == "process":
    from lrjax.executors.process import InProcess

    return InProcess
  if kind == "local":
    from lrjax.compare.runner import say_stderr
    from lrjax.executors import local

    try:
      opts = local.LocalOptions.from_flags(flags)
    except (ValueError, TypeError) as e:
      raise usage_error(f"compare: {e}") from e
    return lambda: local.LocalExecutor(opts, say_stderr)
  extra, module = EXECUTOR_EXTRAS[kind]
  if importlib.util.find_spec(module) is None:
    raise failure(extra_hint(f"compare --executor {kind}", extra))
  from lrjax.compare.runner import say_stderr

  try:
    if kind == "ray":
      from lrjax.executors import ray

      opts = ray.RayOptions.from_flags(flags)
      return lambda: ray.RayExecutor(opts, say_stderr)
    from lrjax.executors import slurm

    opts = slurm.SlurmOptions.from_flags(flags)
    return lambda: slurm.SlurmExecutor(opts, os.path.abspath(workdir), say_stderr)
  except (ValueError, TypeError) as e:
    raise usage_error(f"compare: {e}") from e


def report(args: list[str]) -> int:
  p = parser("report", "Collect a study's finished runs into results.json/.md/.csv and figures.")
  p.add_argument("--workdir", required=True, metavar="DIR", help="the study's workdir")
  ns = p.parse_args(args)
  if not os.path.exists(os.path.join(ns.workdir, "study.json")):
    raise usage_error(
      f"report: {ns.workdir} holds no study (no study.json): run `lrjax compare` first"
    )
  from lrjax.compare import results as results_lib

  results = run_command(lambda: results_lib.report_workdir(ns.workdir))
  with open(os.path.join(ns.workdir, "results.md")) as f:
    print(f.read())
  if results["missing"]:
    print(f"{len(results['missing'])} runs not finished: " + ", ".join(results["missing"]))
  return 0
