"""One way to run a study's cells: an `Executor` behind a small interface, and the one loop.

The study plans its cells (each with an `id`, a `label()` and the cells it runs `after`) and hands
them to `run_cells` with an executor and a `work` function (`work(cell) -> Outcome`, importable,
so that another process can run it). The loop submits a cell once every cell it depends on has
finished, as far as the executor has room; waits for outcomes; puts back a cell that another
process holds (`Held`) to try again after the executor's `poll` seconds, so several processes or
shards on one workdir share the work; and prints one progress line per cell. Executors differ
only in where `work` runs: here (`process.InProcess`), in worker processes on this machine
(`local.LocalExecutor`), in a Ray task (`ray.RayExecutor`) or a Slurm job (`slurm.SlurmExecutor`).

Every outcome is a value, returned the same way by every executor: `Done`, `Held` (another
process holds the cell), `Stopped` (SIGTERM or SIGINT stopped it after a checkpoint: the study
stops, or, where the executor says a lone worker was preempted, the cell is submitted again and
resumes) and `Failed`. Each executor's worker sets its process up once, with the study's
runtime (`lrjax.runtime.setup`), before its first cell: every cell computes the same bits
wherever it runs. Importing this module imports no part of the engine.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from lrjax.clock import so_far


@dataclasses.dataclass(frozen=True)
class Done:
  """The cell trained (or had trained): its members' summaries, in order."""

  summaries: list[dict]


@dataclasses.dataclass(frozen=True)
class Held:
  """Another live process holds the cell: try again later."""

  reason: str


@dataclasses.dataclass(frozen=True)
class Stopped:
  """SIGTERM or SIGINT stopped the cell after it saved a checkpoint at `step`."""

  step: int
  signum: int


@dataclasses.dataclass(frozen=True)
class Failed:
  """The cell failed for good in its worker; the error in one line."""

  error: str


Outcome = Done | Held | Stopped | Failed


@dataclasses.dataclass(frozen=True)
class Ran:
  """What `run_cells` did: the cells that failed ("label: error" each), and the signal that
  stopped the study (None where it ran to the end) with the step its last stopped cell saved."""

  failed: list[str]
  stopped: int | None = None
  step: int = 0


class CellsFailed(RuntimeError):
  """Some cells failed in their workers; the report holds the others."""


class Executor(abc.ABC):
  """Where `work(cell)` runs.

  Attributes:
    capacity: cells at once (None: no limit of its own).
    poll: seconds between looks at cells in other hands (and a `wait`'s longest wait).
    resubmit_stopped: a `Stopped` cell is a lone worker preempted (submit it again: it resumes)
      rather than the study being stopped.
  """

  capacity: int | None = 1
  poll: float = 2.0
  resubmit_stopped: bool = False

  @abc.abstractmethod
  def submit(self, cells: Sequence[Any], work: Callable[[Any], Outcome]) -> list[Any]:
    """Starts `work(cell)` for each cell; returns one handle per cell."""

  @abc.abstractmethod
  def wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[Any, Outcome]]:
    """The handles that have finished, with their outcomes; waits up to `timeout` seconds for
    the first one (an error in a worker is a `Failed` outcome, not an exception)."""

  def start(self, spec: Any, say: Callable[[str], None]) -> None:  # noqa: B027
    """Called once with the study's resolved runtime (an `lrjax.runtime.Spec`), before any
    `submit`: the executor's workers set their processes up with it. Where the runtime fits
    this executor badly (more threads than a worker's CPUs), it says so through `say`, and how
    to set it; it never changes it."""

  def stop_requested(self) -> int | None:
    """The signal that asked this study to stop (the executor saw it), or None."""
    return None

  def close(self) -> None:  # noqa: B027 (most executors start nothing to release)
    """Releases what the executor started (a local cluster, worker processes)."""


class CellProgress:
  """A study's progress over its cells: done of total, the time so far and, from the pace so
  far, the time left: the pace of the cells this process waited for, not counting those
  finished before it started or by others (a resumed study's first estimate would otherwise be
  near zero)."""

  def __init__(self, total: int, say: Callable[[str], None]):
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
      raise ValueError(f"total must be an integer >= 0, got {total!r}")
    self.total, self.done, self.say, self.t0 = total, 0, say, time.perf_counter()
    self.skipped = 0  # finished elsewhere: no time of ours

  def elapsed(self) -> float:
    return time.perf_counter() - self.t0

  def started(self, cell: Any) -> None:
    self.say(f"[{self.done + 1}/{self.total}] {cell.label()}: training ({self._where()})")

  def finished(self, cell: Any, text: str, *, elsewhere: bool = False) -> None:
    self.done += 1
    self.skipped += elsewhere
    self.say(f"[{self.done}/{self.total}] {cell.label()}: {text} ({self._where()})")

  def _where(self) -> str:
    return so_far(self.elapsed(), self.done - self.skipped, self.total - self.skipped)


def run_cells(
  cells: Sequence[Any],
  executor: Executor,
  work: Callable[[Any], Outcome],
  *,
  finished: Callable[[Any], bool],
  describe: Callable[[list[dict]], str],
  say: Callable[[str], None],
  wait: bool = True,
) -> Ran:
  """Runs every unfinished cell of `cells` once through `executor` (see the module docstring).
  `finished(cell)` reads the workdir (so cells that other processes finish count too),
  `describe(summaries)` is a finished cell's result in words. Without `wait`, submits the cells
  that can start now and returns.

  A cell whose dependency failed here fails too; one whose dependency is in no one's hands
  (another shard's, not started yet) waits for it. Once a signal stops the study, nothing more
  is submitted, and the loop returns when the cells in training have stopped.
  """
  poll = executor.poll
  if not poll > 0:
    raise ValueError(f"the executor's poll must be a positive number of seconds, got {poll!r}")
  progress = CellProgress(len(cells), say)
  todo = []
  for cell in cells:
    if finished(cell):
      progress.finished(cell, "finished earlier, skipped", elsewhere=True)
    else:
      todo.append(cell)
  running: dict[Any, Any] = {}  # handle -> cell
  not_before: dict[str, float] = {}
  announced: set[str] = set()
  failed: dict[str, str] = {}
  stopped: Stopped | None = None
  while (todo and stopped is None) or running:
    signum = executor.stop_requested()
    if signum is not None and stopped is None:
      stopped = Stopped(0, signum)
    now = time.monotonic()
    ready, room = [], 0 if stopped is not None else _room(executor, len(running))
    for cell in list(todo):
      lost = [d for d in cell.after if d.id in failed]
      if lost:
        todo.remove(cell)
        failed[cell.id] = f"{cell.label()}: {lost[0].label()} failed before it"
        progress.finished(cell, f"FAILED: {lost[0].label()} failed before it")
      elif len(ready) < room and not_before.get(cell.id, 0) <= now:
        if finished(cell):  # since the start: another process (a shard, a worker) finished it
          todo.remove(cell)
          progress.finished(cell, "finished by another process", elsewhere=True)
        elif all(finished(d) for d in cell.after):
          ready.append(cell)
    for cell in ready:
      todo.remove(cell)
      if executor.capacity == 1 and cell.id not in announced:
        progress.started(cell)
    if ready:
      running.update(zip(executor.submit(ready, work), ready))
    if not wait:
      say(f"submitted {len(ready)} cells" + (f"; {len(todo)} wait for others" if todo else ""))
      return Ran([])
    if not running:
      if todo and stopped is None:
        time.sleep(poll)  # everything left waits for another process or a dependency
      continue
    for handle, outcome in executor.wait(list(running), timeout=poll):
      cell = running.pop(handle)
      if isinstance(outcome, Done):
        progress.finished(cell, describe(outcome.summaries))
      elif isinstance(outcome, Stopped) and executor.resubmit_stopped and stopped is None:
        todo.append(cell)  # its worker alone was preempted: it resumes from its checkpoint
        say(f"    {cell.label()}: its worker was stopped after a checkpoint; submitted again")
      elif isinstance(outcome, Stopped):
        todo.append(cell)
        stopped = outcome if stopped is None or not stopped.step else stopped
      elif isinstance(outcome, Held):
        todo.append(cell)
        not_before[cell.id] = time.monotonic() + poll
        if executor.capacity == 1 and cell.id not in announced:
          say(f"    {outcome.reason}; waiting for it")
        announced.add(cell.id)
      else:
        failed[cell.id] = f"{cell.label()}: {outcome.error}"
        progress.finished(cell, f"FAILED: {outcome.error}")
  if stopped is not None:
    return Ran(list(failed.values()), stopped.signum, stopped.step)
  return Ran(list(failed.values()))


def _room(executor: Executor, running: int) -> int:
  return 1 << 30 if executor.capacity is None else max(executor.capacity - running, 0)


def one_line(error: BaseException) -> str:
  """An error in one line: its last non-empty line, or its type's name."""
  lines = [line for line in str(error).strip().splitlines() if line.strip()]
  return lines[-1].strip() if lines else type(error).__name__
