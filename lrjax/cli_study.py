"""`lrjax compare` and `lrjax report`: a study in one process, in shards, or collected.

  lrjax compare --config study_smoke --workdir runs/smoke               # everything, here
  lrjax compare --config study_smoke --workdir runs/smoke --shard 0/2   # cells 0, 2, 4, ...
  lrjax report --workdir runs/smoke                                     # results from the shards

Under a Slurm job array `--shard` defaults to the array's task (`SLURM_ARRAY_TASK_ID` -
`SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`). Several plain `lrjax compare` processes on
one workdir share its cells: each claims a cell before training it, and each waits at the end for
the cells the others hold, so every one of them ends with the full report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from lrjax.cli import _add_config_flags, _parse_config_command, _parser, _run, _usage


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
  p = _parser("compare", "Train every schedule of a study for every seed; write the report.")
  _add_config_flags(p, "directory of the study's runs and results")
  p.add_argument(
    "--shard",
    type=_shard,
    metavar="I/N",
    help="train only cells I, I+N, I+2N, ... of the study and write no report (`lrjax report` "
    "collects); default: the Slurm array task, if any",
  )
  ns, config = _parse_config_command(p, args)
  from lrjax.compare import runner

  shard = ns.shard or slurm_array_shard(os.environ)
  _run(lambda: runner.compare(config, ns.workdir, shard=shard))
  if shard is None:
    with open(os.path.join(ns.workdir, "results.md")) as f:
      print(f.read())
  return 0


def report(args: list[str]) -> int:
  p = _parser("report", "Collect a study's finished runs into results.json/.md/.csv and figures.")
  p.add_argument("--workdir", required=True, metavar="DIR", help="the study's workdir")
  ns = p.parse_args(args)
  if not os.path.exists(os.path.join(ns.workdir, "study.json")):
    raise _usage(f"report: {ns.workdir} holds no study (no study.json): run `lrjax compare` first")
  from lrjax.compare import runner

  results = _run(lambda: runner.report_workdir(ns.workdir))
  with open(os.path.join(ns.workdir, "results.md")) as f:
    print(f.read())
  if results["missing"]:
    print(f"{len(results['missing'])} runs not finished: " + ", ".join(results["missing"]))
  return 0
