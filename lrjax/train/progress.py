"""A one-line progress display for long runs: epoch, step, lr, loss, images/s, time left."""

from __future__ import annotations

import math
import sys
import time

from lrjax.clock import duration


class RunProgress:
  """Progress of one run (or one population) over `num_epochs` epochs.

  The estimate of the time left is this process's own pace (steps done since it started, over
  the wall time since then) applied to the steps left, so compilation slows the first estimate
  and a resumed run does not count the steps of an earlier process.
  """

  def __init__(
    self,
    num_epochs: int,
    steps_per_epoch: int,
    enabled: bool = True,
    stream=None,
    start_step: int = 0,
  ):
    self.num_epochs, self.steps_per_epoch, self.enabled = num_epochs, steps_per_epoch, enabled
    self.stream = stream or sys.stderr
    self.tty = getattr(self.stream, "isatty", lambda: False)()
    self._last_line, self._start_step, self._t0 = 0.0, start_step, time.monotonic()
    self._step = start_step

  def time_left(self) -> float:
    done = self._step - self._start_step
    left = self.num_epochs * self.steps_per_epoch - self._step
    if done <= 0:
      return math.nan
    return left * (time.monotonic() - self._t0) / done

  def update(
    self, epoch: int, step_in_epoch: int, partial: dict, seconds: float, batch_size: int
  ) -> None:
    self._step = epoch * self.steps_per_epoch + step_in_epoch
    if not self.enabled:
      return
    now = time.monotonic()
    # Without a terminal, a line at most every 10 s keeps logs short.
    if not self.tty and now - self._last_line < 10 and step_in_epoch < self.steps_per_epoch:
      return
    self._last_line = now
    width = 24
    done = int(width * step_in_epoch / self.steps_per_epoch)
    bar = "#" * done + "." * (width - done)
    line = (
      f"epoch {epoch + 1}/{self.num_epochs} [{bar}] {step_in_epoch}/{self.steps_per_epoch}"
      f"  lr {partial.get('last_lr', float('nan')):.4g}"
      f"  loss {partial.get('last_loss', float('nan')):.4f}"
    )
    if seconds > 0:
      line += f"  {step_in_epoch * batch_size / seconds:,.0f} img/s"
    line += f"  {duration(self.time_left())} left"
    self.stream.write(("\r" + line) if self.tty else line + "\n")
    self.stream.flush()

  def epoch_done(self, record: dict, label: str | None = None) -> None:
    if not self.enabled:
      return
    end = "\n" if self.tty else ""
    who = f"{label}: " if label else ""
    # Validation first: it is what chooses (best epoch, tuning); the test figures are reported.
    evaluated = ""  # a tuning run evaluates validation alone, at its last epoch
    for split, short in (("validation", "val"), ("test", "test")):
      if f"{split}_accuracy" in record:
        loss, acc = record[f"{split}_loss"], record[f"{split}_accuracy"]
        evaluated += f"{short} loss {loss:.4f} acc {acc:.4f}  "
    self.stream.write(
      f"{end}{who}epoch {record['epoch'] + 1}/{self.num_epochs}: lr {record['lr']:.4g}  "
      f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}  {evaluated}"
      f"{record['seconds']:.1f}s  {record['images_per_second']:,.0f} img/s  "
      f"{duration(self.time_left())} left\n"
    )
    self.stream.flush()
