"""`lrjax find-lr`: Smith's learning-rate range test, on the engine's `Trainer`.

Trains a fresh model for up to `num_steps` steps while the learning rate grows exponentially
from `min_lr` to `max_lr` (an `exponential_decay` with a growth rate), records the loss at every
step, and stops once the smoothed loss exceeds `diverge_factor` times its minimum or stops being
finite. The suggestion is the learning rate at the steepest descent of the smoothed loss, capped
at a tenth of the learning rate where the smoothed loss is lowest (Smith 2017, section 3.3; the
"min / 10" rule of fastai). It runs under the config's runtime, as training does, and writes
`lr_finder.json` and `lr_finder.png` into its workdir; nothing else (no checkpoints: a range
test is short and is simply run again).
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

from lrjax import runtime as runtime_lib
from lrjax.config.experiment import Experiment
from lrjax.files.atomic import write_json
from lrjax.plot.lr_finder import plot_range_test
from lrjax.train import build
from lrjax.train.trainer import Member, Moment, Observer, Stop, Trainer

__all__ = ["find_lr", "smooth_losses", "suggest"]


def smooth_losses(losses: np.ndarray, beta: float = 0.9) -> np.ndarray:
  """Bias-corrected exponential moving average, as the range test is usually plotted.

  Args:
    losses: the loss at each step.
    beta: the average's decay, in [0, 1).

  Returns:
    A float64 array of the length of `losses`; at step i, the average of the losses up to i,
    weighted by `beta ** age` and divided by `1 - beta ** (i + 1)`.

  Example:
    >>> from lrjax.lr_finder import smooth_losses
    >>> smooth_losses(np.array([2.0, 1.0]), beta=0.5).round(4).tolist()
    [2.0, 1.3333]
  """
  out, avg = np.empty(len(losses), np.float64), 0.0
  for i, x in enumerate(losses):
    avg = beta * avg + (1 - beta) * x
    out[i] = avg / (1 - beta ** (i + 1))
  return out


def suggest(lrs: np.ndarray, losses: np.ndarray) -> dict[str, float]:
  """The suggested initial learning rate from a range test's (lr, loss) curve.

  The learning rate of the steepest descent of the smoothed loss (against log10 of the rate)
  before its minimum, capped at a tenth of the rate of the minimum.

  Args:
    lrs: the learning rates, increasing.
    losses: the loss at each of them, finite.

  Returns:
    `{"suggested_lr", "steepest_lr", "min_loss_lr", "min_smoothed_loss"}`.

  Example:
    >>> from lrjax.lr_finder import suggest
    >>> lrs = np.geomspace(1e-4, 10, 11)
    >>> losses = [2.3, 2.3, 2.3, 2.2, 1.9, 1.4, 1.0, 0.9, 1.2, 3.0, 9.0]
    >>> found = suggest(lrs, losses)
    >>> round(found["suggested_lr"], 4), found["min_loss_lr"]
    (0.0316, 1.0)
  """
  smooth = smooth_losses(np.asarray(losses, np.float64))
  best = int(np.nanargmin(smooth))
  log_lr = np.log10(lrs)
  # Steepest descent before the minimum: the most negative slope of loss against log10(lr).
  slope = np.gradient(smooth[: best + 1], log_lr[: best + 1]) if best >= 2 else np.zeros(1)
  steepest = int(np.argmin(slope)) if best >= 2 else 0
  return {
    "suggested_lr": float(min(lrs[steepest], lrs[best] / 10)),
    "steepest_lr": float(lrs[steepest]),
    "min_loss_lr": float(lrs[best]),
    "min_smoothed_loss": float(smooth[best]),
  }


class RangeCurve(Observer):
  """Syncs after every step, keeps (lr, loss), and stops the loop once the loss diverges."""

  def __init__(self, diverge_factor: float, quiet: bool):
    self.diverge_factor, self.quiet = diverge_factor, quiet
    self.lrs: list[float] = []
    self.losses: list[float] = []

  def wants_sync(self, trainer: Trainer, step: int) -> bool:
    return True

  def see(self, trainer: Trainer, moment: Moment) -> Stop | None:
    for step, m in moment.fetched:
      self.lrs.append(float(m["lr"]))
      self.losses.append(float(m["loss"]))
      smooth = smooth_losses(np.asarray(self.losses))
      t = len(self.losses) - 1
      if not np.isfinite(self.losses[-1]) or (
        t > 10 and smooth[-1] > self.diverge_factor * smooth.min()
      ):
        return Stop("diverged")
      if not self.quiet and step % 20 == 0:
        print(f"step {step}: lr {self.lrs[-1]:.3g} loss {self.losses[-1]:.4f}", file=sys.stderr)
    return None


def find_lr(
  config: Any,
  workdir: str,
  *,
  min_lr: float = 1e-5,
  max_lr: float = 10.0,
  num_steps: int = 200,
  diverge_factor: float = 4.0,
  quiet: bool = False,
) -> dict[str, Any]:
  """Runs the range test on `config`'s model and data; writes lr_finder.json and .png.

  The config's schedule is replaced by the exponential growth; its model, data, optimizer and
  runtime are used as training would use them (see the module docstring).

  Args:
    config: an `Experiment`, or a training config to check (`lrjax.config.load`); the process
      runs under its runtime (`lrjax.runtime.setup`, once, where the process started).
    workdir: the folder of `lr_finder.json` and `lr_finder.png` (created).
    min_lr: the first learning rate, positive.
    max_lr: the last learning rate, above `min_lr` and finite.
    num_steps: steps of the test at most, an integer >= 5.
    diverge_factor: stop once the smoothed loss exceeds this factor (> 1) times its minimum.
    quiet: no progress lines.

  Returns:
    `{"lrs", "losses", "smoothed_losses", "steps_run", "figure"}` and the keys of `suggest`;
    steps whose loss was not finite are left out of the curves.

  Raises:
    ValueError: for arguments out of range (a `ConfigError` for a field of `config`).
  """
  if not (0 < min_lr < max_lr < math.inf):
    raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
  if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 5:
    raise ValueError(f"num_steps must be an integer >= 5, got {num_steps!r}")
  if not diverge_factor > 1:
    raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")
  experiment = Experiment.of(config)
  os.makedirs(workdir, exist_ok=True)
  # lr(t) = min_lr * (max_lr / min_lr) ** (t / num_steps): exponential growth, capped there.
  growth = {
    "name": "exponential_decay",
    "init_value": min_lr,
    "transition_steps": num_steps,
    "decay_rate": max_lr / min_lr,
    "end_value": max_lr,
  }
  epochs = math.ceil(num_steps / build.length(experiment).steps_per_epoch)
  experiment = experiment.replace({"schedule": growth, "num_epochs": epochs})
  run = build.build(experiment, runtime_lib.for_run(experiment.runtime))
  curve = RangeCurve(diverge_factor, quiet)
  member = Member(run, workdir)
  trainer = Trainer(
    [member], workdir, observers=[curve], evaluate=False, max_steps=num_steps, keep=False
  )
  trainer.fit()
  finite = np.isfinite(curve.losses)
  lrs, losses = np.asarray(curve.lrs)[finite], np.asarray(curve.losses)[finite]
  result = {
    "lrs": lrs.tolist(),
    "losses": losses.tolist(),
    "smoothed_losses": smooth_losses(losses).tolist(),
    "steps_run": len(curve.lrs),
    **suggest(lrs, losses),
  }
  write_json(os.path.join(workdir, "lr_finder.json"), result)
  result["figure"] = plot_range_test(result, os.path.join(workdir, "lr_finder.png"))
  return result
