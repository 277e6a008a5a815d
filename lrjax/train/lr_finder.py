"""`lrjax find-lr`: Smith's learning-rate range test.

Trains a fresh model for a few hundred steps while the learning rate grows exponentially from
`min_lr` to `max_lr` (an `exponential_decay` with a growth rate, so the same jitted step as
training), records the loss at every step, and stops once the smoothed loss exceeds
`diverge_factor` times its minimum. The suggestion is the learning rate at the steepest descent
of the smoothed loss, capped at a tenth of the learning rate where the smoothed loss is lowest
(Smith 2017, section 3.3; the "min / 10" rule of fastai).
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np

import lrjax
from lrjax.plot.range_test import plot_range_test
from lrjax.train import build, records


def smooth_losses(losses: np.ndarray, beta: float = 0.9) -> np.ndarray:
  """Bias-corrected exponential moving average, as the range test is usually plotted."""
  out, avg = np.empty_like(losses), 0.0
  for i, x in enumerate(losses):
    avg = beta * avg + (1 - beta) * x
    out[i] = avg / (1 - beta ** (i + 1))
  return out


def suggest(lrs: np.ndarray, losses: np.ndarray) -> dict[str, float]:
  """The suggested initial learning rate from a range test's (lr, loss) curve."""
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
  """Runs the range test on `config`'s model and data; writes lr_finder.json and .png."""
  if not (0 < min_lr < max_lr < math.inf):
    raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
  if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 5:
    raise ValueError(f"num_steps must be an integer >= 5, got {num_steps!r}")
  if not diverge_factor > 1:
    raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")
  os.makedirs(workdir, exist_ok=True)
  run = build.build(config)
  # lr(t) = min_lr * (max_lr / min_lr) ** (t / num_steps): exponential growth, capped at max_lr.
  schedule = lrjax.exponential_decay(min_lr, num_steps, max_lr / min_lr, end_value=max_lr)
  state = run.init_state()
  lrs, losses = [], []
  epoch, perm, i = 0, None, run.steps_per_epoch
  for t in range(num_steps):
    if i >= run.steps_per_epoch:
      perm, epoch, i = run.epoch_order(epoch), epoch + 1, 0
    state, metrics = run.train_step(state, run.train_batch(perm, i), schedule)
    i += 1
    m = jax.device_get(metrics)
    lrs.append(float(m["lr"]))
    losses.append(float(m["loss"]))
    smooth = smooth_losses(np.asarray(losses))
    if not np.isfinite(losses[-1]) or (t > 10 and smooth[-1] > diverge_factor * smooth.min()):
      break
    if not quiet and t % 20 == 0:
      print(f"step {t}: lr {lrs[-1]:.3g} loss {losses[-1]:.4f}", flush=True)
  finite = np.isfinite(losses)
  lrs_a, losses_a = np.asarray(lrs)[finite], np.asarray(losses)[finite]
  result = {
    "lrs": lrs_a.tolist(),
    "losses": losses_a.tolist(),
    "steps_run": len(lrs),
    **suggest(lrs_a, losses_a),
  }
  records.write_json(os.path.join(workdir, "lr_finder.json"), result)
  result["figure"] = plot_range_test(result, os.path.join(workdir, "lr_finder.png"))
  return result
