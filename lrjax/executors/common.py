"""What every way of spreading a study's cells shares: the plan, the worker, progress, the report.

`lrjax compare --executor ray|slurm` keeps the driver (the command) apart from the workers (Ray
tasks, Slurm array tasks): the driver writes `study.json`, plans the cells, hands each unfinished
cell to one worker and writes the report once all are back; a worker trains its cell through
`runner.train_cell`, the same function as every other way, so results do not depend on the
executor. A worker that dies is retried by its executor and resumes from the cell's checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from lrjax.compare import runner
from lrjax.train import records
from lrjax.train.claim import ClaimedError
from lrjax.train.progress import so_far

EXECUTORS = ("process", "ray", "slurm")


class CellsFailed(RuntimeError):
  """Some cells failed in their workers; the report holds the others."""


def parse_value(text: str) -> Any:
  """`--ray.X=VALUE` / `--slurm.X=VALUE` text as an int, float, bool or, failing those, str."""
  if not isinstance(text, str):
    raise ValueError(f"text must be a str, got {text!r}")
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return {"true": True, "false": False}.get(text.lower(), text)


def split_options(args: list[str], prefixes: tuple[str, ...]) -> tuple[list[str], dict]:
  """(other arguments, {prefix: {field: text}}) of `--PREFIX.FIELD=VALUE` or `--PREFIX.FIELD V`.

  Raises:
    ValueError: an option without a value or field, or one given twice.
  """
  if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
    raise ValueError(f"args must be a list of str, got {args!r}")
  rest, out, i = [], {p: {} for p in prefixes}, 0
  while i < len(args):
    arg = args[i]
    prefix = next((p for p in prefixes if arg.startswith(f"--{p}.")), None)
    if prefix is None:
      rest.append(arg)
      i += 1
      continue
    field, eq, text = arg[len(prefix) + 3 :].partition("=")
    if not eq:
      if i + 1 >= len(args) or args[i + 1].startswith("--"):
        raise ValueError(f"--{prefix}.{field} needs a value: --{prefix}.{field}=VALUE")
      text, i = args[i + 1], i + 1
    if not field.isidentifier():
      raise ValueError(f"--{prefix}.FIELD needs a field name, got {arg!r}")
    if field in out[prefix]:
      raise ValueError(f"--{prefix}.{field} is given twice")
    out[prefix][field] = text
    i += 1
  return rest, out


def prepare(config: Any, workdir: str, say: Callable[[str], None]) -> list[runner.Cell]:
  """Writes the study's `study.json` and returns its cells; finished ones are said and dropped."""
  if not isinstance(workdir, str) or not workdir:
    raise ValueError(f"workdir must be a non-empty path, got {workdir!r}")
  os.makedirs(workdir, exist_ok=True)
  records.write_json(os.path.join(workdir, "study.json"), config.to_dict())
  cells = runner.plan(config, workdir, say)
  todo = [c for c in cells if not runner.finished(workdir, c)]
  if len(todo) < len(cells):
    say(f"{len(cells) - len(todo)} of {len(cells)} cells finished earlier, skipped")
  return todo


def work_cell(config: Any, workdir: str, cell: runner.Cell, poll: float = 2.0) -> list[dict]:
  """A worker's whole job: trains (or resumes) `cell` and returns its members' summaries.

  A cell that another live process holds (the claim of a killed worker on another host lives
  until its lease ends) is waited for, then taken over or read once finished, so a retried
  worker never trains a cell twice at once.
  """
  if not poll > 0:
    raise ValueError(f"poll must be a positive number of seconds, got {poll!r}")
  # A worker is a fresh process: XLA reads its flags once, before the first computation.
  from lrjax.train import devices, xla_cpu

  xla_cpu.tune()
  # A cell on several hosts (e.g. --slurm.nodes=2 with LRJAX_DISTRIBUTED=1 exported): every
  # task joins one jax.distributed run, and the cell trains data-parallel across them.
  devices.maybe_initialize_distributed()
  while True:
    try:
      return runner.train_cell(config, workdir, cell, quiet=True)
    except ClaimedError:
      time.sleep(poll)


class Progress:
  """Cells done of total, the time so far and, from the pace so far, the time left."""

  def __init__(self, total: int, say: Callable[[str], None]):
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
      raise ValueError(f"total must be an integer >= 0, got {total!r}")
    self.total, self.done, self.say, self.t0 = total, 0, say, time.perf_counter()

  def elapsed(self) -> float:
    return time.perf_counter() - self.t0

  def cell_done(self, cell: runner.Cell, summaries: list[dict] | None, error: str = "") -> None:
    self.done += 1
    where = so_far(self.elapsed(), self.done, self.total)
    if summaries is None:
      self.say(f"[{self.done}/{self.total}] {cell.label()}: FAILED ({where}): {error}")
      return
    scores = ", ".join(_score(s) for s in summaries)
    self.say(f"[{self.done}/{self.total}] {cell.label()}: {scores} ({where})")


def _score(summary: dict) -> str:
  if summary.get("diverged"):
    return f"diverged at step {summary['diverged']['step']}"
  return f"test accuracy {summary['final_test_accuracy']:.4f}"


def finish(workdir: str, failed: list[str], say: Callable[[str], None]) -> dict[str, Any]:
  """Writes the report of whatever finished; raises CellsFailed after it if any cell failed."""
  results = runner.report_workdir(workdir)
  say(f"report: {os.path.join(workdir, 'results.md')}")
  if failed:
    raise CellsFailed(
      f"{len(failed)} cells failed ({'; '.join(failed)}); the report holds the others. "
      "Run the same command again to retry them: finished runs are kept."
    )
  return results


def say_stderr(text: str) -> None:
  print(text, file=sys.stderr, flush=True)
