"""A one-line progress display for long runs: epoch, step, learning rate, loss, images/s."""

from __future__ import annotations

import sys
import time


class Progress:
  def __init__(self, num_epochs: int, steps_per_epoch: int, enabled: bool = True, stream=None):
    self.num_epochs, self.steps_per_epoch, self.enabled = num_epochs, steps_per_epoch, enabled
    self.stream = stream or sys.stderr
    self.tty = getattr(self.stream, "isatty", lambda: False)()
    self._last_line = 0.0

  def update(
    self, epoch: int, step_in_epoch: int, partial: dict, seconds: float, batch_size: int
  ) -> None:
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
    self.stream.write(("\r" + line) if self.tty else line + "\n")
    self.stream.flush()

  def epoch_done(self, record: dict) -> None:
    if not self.enabled:
      return
    end = "\n" if self.tty else ""
    self.stream.write(
      f"{end}epoch {record['epoch'] + 1}/{self.num_epochs}: lr {record['lr']:.4g}  "
      f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}  "
      f"test loss {record['test_loss']:.4f} acc {record['test_accuracy']:.4f}  "
      f"{record['seconds']:.1f}s  {record['images_per_second']:,.0f} img/s\n"
    )
    self.stream.flush()
