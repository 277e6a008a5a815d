"""`lrjax compare --executor local`: cells in worker processes here, each on its own CPUs.

A small model does not keep two CPU cores busy with one program: on two cores, two cells at
once with one thread each train about 1.6 times the cells of one cell at a time with two
threads (the Fashion-MNIST ConvNet, `benchmarks/local_workers.py`; the scaling guide). This
executor starts `workers` processes (`--local.workers=N`, default one per CPU), pins each to its
own `CPUs / workers` CPUs where there are enough, and hands each a cell at a time through the
study's one loop (`base.run_cells`). A worker lives for the whole study, so it imports and
compiles once per kind of run, not once per cell.

Threads are part of a result's bits (`lrjax.runtime.threads`), and the study's runtime fixes
them for every executor (one thread per cell by default): each worker sets its process up with
that runtime as it starts, and the default number of workers is `CPUs / threads`, so
`--executor local` gives the same bits as one process. Where more workers are asked for than
the CPUs hold at that thread count, it says so.

A worker that dies (killed, out of memory) fails its cell, which the next run of the same
command resumes from its checkpoint; a fresh worker takes its place. SIGTERM or SIGINT to this
process reach the workers, which save a checkpoint after their current step and come back
`Stopped`; the command then exits with status 75 (rerun to resume).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait as wait_any
from typing import Any

from lrjax.executors import options as parse
from lrjax.executors.base import Executor, Failed, Stopped, one_line
from lrjax.runtime.threads import counted

STOP_GRACE_SECONDS = 120.0  # how long a signalled worker may take to save its checkpoint


@dataclasses.dataclass(frozen=True)
class LocalOptions:
  workers: int | None = None  # None: one per `config.runtime.threads` CPUs

  def __post_init__(self):
    w = self.workers
    if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 1):
      raise ValueError(f"--local.workers must be an integer >= 1, got {w!r}")

  @classmethod
  def from_flags(cls, flags: dict[str, str]) -> LocalOptions:
    """From `--local.FIELD=VALUE` texts; raises ValueError naming an unknown field or bad value."""
    return parse.dataclass_from_flags(cls, "local", flags)


def cpu_sets(cpus: Sequence[int], workers: int, threads: int) -> list[set[int] | None]:
  """Each worker's CPUs: consecutive blocks of `threads`, or None for all (too few CPUs to give
  every worker its own)."""
  if workers * threads > len(cpus):
    return [None] * workers
  ordered = sorted(cpus)
  return [set(ordered[i * threads : (i + 1) * threads]) for i in range(workers)]


@dataclasses.dataclass
class _Worker:
  process: Any
  conn: Any
  cpus: set[int] | None
  handle: int | None = None  # the cell it trains now


class LocalExecutor(Executor):
  """Cells in worker processes here (see the module docstring); `say` hears how they run."""

  def __init__(self, options: LocalOptions | None = None, say: Callable[[str], None] = print):
    options = options or LocalOptions()
    if not isinstance(options, LocalOptions):
      raise ValueError(f"options must be a LocalOptions, got {options!r}")
    self._cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    self._cpus = self._cpus or list(range(os.cpu_count() or 1))
    self._options, self._say = options, say
    self.capacity = options.workers or len(self._cpus)
    self._workers: list[_Worker] = []
    self._count, self._signal, self._previous = 0, None, {}
    self._spec: Any = None
    self._context = multiprocessing.get_context("spawn")  # a fresh JAX in every worker

  def start(self, spec: Any, say: Callable[[str], None]) -> None:
    import jax

    platform = jax.default_backend()
    if platform != "cpu" and self.capacity > 1:
      raise ValueError(
        f"--executor local splits this machine's CPUs among {self.capacity} workers, but the "
        f"backend is {platform}: run one process per device instead (the scaling guide)"
      )
    if self._options.workers is None:  # one worker per cell's share of the CPUs
      self.capacity = max(1, len(self._cpus) // spec.threads)
    sets = cpu_sets(self._cpus, self.capacity, spec.threads)
    where = "each on its own CPUs" if sets[0] is not None else "sharing the CPUs"
    workers, threads = counted(self.capacity, "worker process"), counted(spec.threads)
    self._say(f"local: {workers} of {threads} on {len(self._cpus)} CPUs, {where}")
    if sets[0] is None:
      self._say(
        f"    {self.capacity} x {threads} is more than the {len(self._cpus)} CPUs: the workers "
        f"share them (slower, same bits); --local.workers={max(1, len(self._cpus) // spec.threads)}"
        " fits them"
      )
    self._spec = spec
    self._workers = [self._start(cpus) for cpus in sets]
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._forward)

  def stop_requested(self) -> int | None:
    return self._signal

  def _start(self, cpus: set[int] | None) -> _Worker:
    mine, theirs = self._context.Pipe()
    process = self._context.Process(target=_serve, args=(theirs, cpus, self._spec), daemon=True)
    process.start()
    theirs.close()
    return _Worker(process, mine, cpus)

  def _forward(self, signum, frame) -> None:
    if self._signal is not None:  # forwarded once: a worker would take a second as insisting
      return
    self._signal = signum
    for w in self._workers:
      if w.handle is not None and w.process.is_alive():
        os.kill(w.process.pid, signum)

  def submit(self, cells, work):
    handles = []
    for cell in cells:
      worker = next(w for w in self._workers if w.handle is None)
      self._count += 1
      worker.handle = self._count
      worker.conn.send((self._count, work, cell))
      handles.append(self._count)
    return handles

  def wait(self, handles, timeout):
    wanted = set(handles)
    busy = [w for w in self._workers if w.handle in wanted]
    if self._signal is not None:
      timeout = STOP_GRACE_SECONDS  # the workers are saving checkpoints: let them
    ready = wait_any([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
    out = []
    for w in busy:
      got, closed = None, False
      if w.conn in ready:
        try:
          got = w.conn.recv() if w.conn.poll() else None
        except (EOFError, OSError):  # its end of the pipe closed: the worker died
          closed = True
      if got is not None:
        handle, outcome = got
      elif closed or w.process.sentinel in ready or not w.process.is_alive():
        w.process.join(5)  # reaped, so that its exit code is known
        handle = w.handle
        outcome = Failed(f"its worker process died (exit code {w.process.exitcode})")
        self._workers[self._workers.index(w)] = self._replace(w)
      else:
        continue
      w.handle = None
      if isinstance(outcome, Stopped):  # a worker stopped alone (signalled itself): stop too
        self._signal = self._signal or outcome.signum
      out.append((handle, outcome))
    return out

  def _replace(self, dead: _Worker) -> _Worker:
    dead.conn.close()
    return dead if self._signal is not None else self._start(dead.cpus)

  def close(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}
    for w in self._workers:
      try:
        w.conn.send(None)
      except OSError:  # it has gone already
        pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for w in self._workers:
      w.process.join(max(deadline - time.monotonic(), 0.1))
      if w.process.is_alive():
        w.process.terminate()
        w.process.join(5)
    self._workers = []


def _serve(conn: Any, cpus: set[int] | None, spec: Any) -> None:
  """A worker: pinned to `cpus` and set up with the study's runtime `spec`, it runs `work(cell)`
  for each cell it receives, until told to stop (None) or its driver has gone."""
  if cpus is not None:
    os.sched_setaffinity(0, cpus)
  # A terminal's Ctrl-C reaches the driver alone, which forwards it once to busy workers.
  os.setpgrp()
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  from lrjax import runtime

  try:
    runtime.setup(spec)  # once, before its first cell: every cell computes the same bits
    broken = None
  except Exception as e:  # every cell it is given fails with the reason, in one line
    broken = Failed(f"its worker could not take the study's runtime: {one_line(e)}")
  while True:
    try:
      message = conn.recv()
    except (EOFError, OSError):  # the driver has gone
      return
    if message is None:
      return
    handle, work, cell = message
    try:
      outcome: Any = broken or work(cell)
    except BaseException as e:  # reported, not raised: one cell's error is not the study's
      outcome = Failed(one_line(e))
    conn.send((handle, outcome))
