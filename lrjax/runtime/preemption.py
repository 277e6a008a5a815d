"""Preemption: SIGTERM or SIGINT stop a run between two steps, after a checkpoint there.

Slurm, Kubernetes and spot VMs send SIGTERM some time before they kill a job. A jitted step
cannot be interrupted, so the handler only sets a flag; the host loop reads it after each step,
saves a checkpoint at that step and raises `Preempted`, and the command line exits with status 75.
"""

from __future__ import annotations

import signal
import threading
import time

SAME_REQUEST_SECONDS = 1.0


class Preempted(RuntimeError):
  """A run stopped on SIGTERM/SIGINT after saving a checkpoint at `step`; rerun to resume."""

  def __init__(self, step: int, signum: int):
    name = signal.Signals(signum).name
    super().__init__(
      f"stopped by {name} at step {step}; its checkpoint is saved: run the same command to resume"
    )
    self.step, self.signum = step, signum

  def __reduce__(self):  # rebuilt from its arguments (Ray and submitit pickle exceptions)
    return (Preempted, (self.step, self.signum))


class StopSignal:
  """Turns SIGTERM/SIGINT into a flag that the loop reads between steps (a step cannot be cut).

  `innermost()` is the one a running loop holds, so that another handler (a Slurm task's
  preemption notice) can `request` the same orderly stop.
  """

  _entered: list[StopSignal] = []

  def __init__(self):
    self.signum, self._previous, self._at = None, {}, 0.0

  @classmethod
  def innermost(cls) -> StopSignal | None:
    """The innermost `StopSignal` entered in this process, or None."""
    return cls._entered[-1] if cls._entered else None

  def request(self, signum: int) -> None:
    """Asks for the stop that `signum` would have asked for (nothing if one is asked already)."""
    if self.signum is None:
      self.signum, self._at = signum, time.monotonic()

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    StopSignal._entered.append(self)
    return self

  def _handle(self, signum, frame):
    if self.signum is not None:
      # The same signal again within a second is the same request, delivered twice (Slurm
      # signals every process of a job, and a study's driver forwards it to its workers);
      # a later or another one is the user insisting.
      if signum == self.signum and time.monotonic() - self._at < SAME_REQUEST_SECONDS:
        return
      raise KeyboardInterrupt
    self.signum, self._at = signum, time.monotonic()

  def __exit__(self, *exc):
    if self in StopSignal._entered:
      StopSignal._entered.remove(self)
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
