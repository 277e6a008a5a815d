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
  """Turns SIGTERM/SIGINT into a flag that the loop reads between steps (a step cannot be cut)."""

  def __init__(self):
    self.signum, self._previous, self._at = None, {}, 0.0

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
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
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
