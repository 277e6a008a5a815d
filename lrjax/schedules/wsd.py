"""Schedules for open-ended training: inverse square root and warmup-stable-decay (WSD).

`t` is the 0-based optimizer update. Both schedules hold or slowly lower the peak so that
training can be stopped or extended late; WSD adds a short final decay. Registered examples
use a horizon of 100 steps so that the gallery plots line up.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import fraction_done, interpolate, linear_warmup, sin_squared_ramp
from lrjax.schedules.steps import fits_int32

_DEFAULT_TIMESCALE = 10_000


@schedule_class
class InverseSqrt(Schedule):
  peak_value: Any
  warmup_steps: Any
  timescale: Any
  init_value: Any

  def _value(self, t, t_float=None):
    w = self.warmup_steps
    if t_float is None:
      d = jnp.maximum(t - w, 0).astype(jnp.float32)
    else:
      d = jnp.maximum(t_float - jnp.asarray(w, jnp.float32), 0.0)
    scale = jnp.maximum(self.timescale, 1).astype(jnp.float32)
    down = self.peak_value / jnp.sqrt((scale + d) / scale)
    # Exactly the peak at t = W: XLA may divide by multiplying with a rounded reciprocal.
    down = jnp.where(d > 0, down, self.peak_value)
    return linear_warmup(self.init_value, self.peak_value, t, w, down)

  def _tail(self, t_float, t):
    # The value keeps falling past int32, where no int32 step has it: use the float step.
    return self._value(t, t_float)


@register("inverse_sqrt", InverseSqrt, example=dict(peak_value=0.1, warmup_steps=10))
def inverse_sqrt(
  peak_value: Any, warmup_steps: Any, timescale: Any = None, init_value: Any = 0.0
) -> InverseSqrt:
  r"""Linear warmup, then decay with the inverse square root of the steps since the peak.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (\eta_p - \eta_i)\,\frac{t}{W} & t < W \\
      \eta_p \big/ \sqrt{1 + (t - W)/s} & t \ge W
    \end{cases}

  with :math:`\eta_p` = `peak_value`, :math:`W` = `warmup_steps`, :math:`s` = `timescale`
  and :math:`\eta_i` = `init_value`. The decay is continuous at the peak and never stops:
  a concrete step past :math:`2^{31} - 1` (say `2**62`) is evaluated in float32 rather than
  saturated.

  Same values as Hugging Face `get_inverse_sqrt_schedule(W, timescale)`, big_vision
  `"rsqrt"` (with `shift=0`) and timm `WSDLRScheduler(stable_fn="rsqrt")` (Ran, W = s = 4,
  :math:`\eta_p` = 1: 0, .25, .5, .75, 1, .8944, .7071, .5, .2 at t = 0, 1, 2, 3, 4, 5, 8,
  16, 100). `timescale=None` means :math:`W` when :math:`W > 0` and 10,000 otherwise (as
  Hugging Face); the resolved number is stored, so `replace(warmup_steps=...)` keeps it.
  This is not Noam's schedule :math:`d^{-1/2} \min(t^{-1/2}, t W^{-3/2})`, whose decay
  starts from :math:`t = 0` rather than from the peak.

  Args:
    peak_value: :math:`\eta_p`, finite and >= 0.
    warmup_steps: :math:`W`, an integer >= 0.
    timescale: :math:`s`, a positive integer: the value halves after :math:`3s` steps past
      the peak. None picks :math:`W`, or 10,000 when :math:`W = 0`.
    init_value: :math:`\eta_i`, the value at step 0 (default 0).

  Returns:
    An `InverseSqrt` schedule.

  Raises:
    ValueError: if a value is negative or not finite, `warmup_steps` is negative or not an
      integer, or `timescale` is not a positive integer.

  Example:
    >>> s = lrjax.schedules.wsd.inverse_sqrt(1.0, warmup_steps=4)
    >>> [round(float(s(t)), 4) for t in (0, 2, 4, 5, 16)]
    [0.0, 0.5, 1.0, 0.8944, 0.5]
  """
  warmup_steps = checks.steps("warmup_steps", warmup_steps)
  if timescale is None:
    if checks.is_traced(warmup_steps):
      timescale = jnp.where(warmup_steps > 0, warmup_steps, _DEFAULT_TIMESCALE)
    else:
      w = np.asarray(warmup_steps)
      timescale = np.where(w > 0, w, _DEFAULT_TIMESCALE).astype(np.int32)
  return InverseSqrt(
    peak_value=checks.lr_value("peak_value", peak_value),
    warmup_steps=warmup_steps,
    timescale=checks.duration("timescale", timescale),
    init_value=checks.lr_value("init_value", init_value),
  )


DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@schedule_class
class WarmupStableDecay(Schedule):
  peak_value: Any
  warmup_steps: Any
  stable_steps: Any
  decay_steps: Any
  end_value: Any
  init_value: Any
  decay_shape: str = static_field()

  def _value(self, t):
    w, d = self.warmup_steps, self.decay_steps
    # Clamped before subtracting so that no int32 sum of the three durations is ever formed.
    u = jnp.maximum(t - w, 0) - self.stable_steps
    if self.decay_shape == "1-sqrt":
      p = fraction_done(u, d)
      down = self.end_value + (self.peak_value - self.end_value) * (1.0 - jnp.sqrt(p))
      down = jnp.where(p <= 0, self.peak_value, down)  # exactly the peak while stable
    else:
      shape = sin_squared_ramp if self.decay_shape == "cosine" else None
      down = interpolate(self.peak_value, self.end_value, u, d, shape)
    return linear_warmup(self.init_value, self.peak_value, t, w, down)


@register(
  "warmup_stable_decay",
  WarmupStableDecay,
  example=dict(peak_value=0.1, warmup_steps=10, stable_steps=70, decay_steps=20),
)
def warmup_stable_decay(
  peak_value: Any,
  warmup_steps: Any,
  stable_steps: Any,
  decay_steps: Any,
  end_value: Any = 0.0,
  init_value: Any = 0.0,
  decay_shape: str = "linear",
) -> WarmupStableDecay:
  r"""Warmup-stable-decay (WSD, "trapezoid"): warm up, hold the peak, then decay quickly.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (\eta_p - \eta_i)\,\frac{t}{W} & t < W \\
      \eta_p & W \le t < W + S \\
      \eta_e + (\eta_p - \eta_e)\, f\!\left(\frac{t - W - S}{D}\right) & W + S \le t < W + S + D \\
      \eta_e & t \ge W + S + D
    \end{cases}

  with :math:`\eta_p` = `peak_value`, :math:`W, S, D` = `warmup_steps`, `stable_steps`,
  `decay_steps`, :math:`\eta_i` = `init_value`, :math:`\eta_e` = `end_value`, and the decay
  shape :math:`f(p)` = :math:`1 - p` (`"linear"`), :math:`\tfrac12(1 + \cos \pi p)`
  (`"cosine"`) or :math:`1 - \sqrt{p}` (`"1-sqrt"`, Hägele et al. 2024). The value is exactly
  :math:`\eta_p` from :math:`W` to :math:`W + S` and exactly :math:`\eta_e` from
  :math:`W + S + D` on.

  Hugging Face `get_wsd_schedule(W, D, num_stable_steps=S, decay_type=...,
  min_lr_ratio=m)` gives the same values with :math:`\eta_i = \eta_e = m\,\eta_p`: its warmup
  starts at the floor, not at 0 (Ran, W=2, S=4, D=4, m=.1, linear: .1, .55, 1, 1, 1, 1, 1,
  .775, .55, .325, .1, .1). timm `WSDLRScheduler` (warmup prefix, `stable_fn="constant"`)
  matches with :math:`\eta_i = 0`. Durations here are separate, not a total that contains
  them; `wsd` is the same function.

  Args:
    peak_value: :math:`\eta_p`, finite and >= 0.
    warmup_steps: :math:`W`, an integer >= 0.
    stable_steps: :math:`S`, an integer >= 0.
    decay_steps: :math:`D`, a positive integer.
    end_value: :math:`\eta_e`, the final value (default 0).
    init_value: :math:`\eta_i`, the value at step 0 (default 0).
    decay_shape: `"linear"`, `"cosine"` or `"1-sqrt"`.

  Returns:
    A `WarmupStableDecay` schedule.

  Raises:
    ValueError: if a value is negative or not finite, a duration is negative or not an
      integer, `decay_steps` is 0, the three durations add up to more than
      :math:`2^{31} - 1`, or `decay_shape` is unknown.

  Example:
    >>> s = lrjax.schedules.wsd.warmup_stable_decay(1.0, 2, 4, 4, decay_shape="1-sqrt")
    >>> [round(float(s(t)), 4) for t in (0, 1, 2, 6, 7, 10)]
    [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]
  """
  warmup_steps = checks.steps("warmup_steps", warmup_steps)
  stable_steps = checks.steps("stable_steps", stable_steps)
  decay_steps = checks.duration("decay_steps", decay_steps)
  fits_int32(warmup_steps=warmup_steps, stable_steps=stable_steps, decay_steps=decay_steps)
  return WarmupStableDecay(
    peak_value=checks.lr_value("peak_value", peak_value),
    warmup_steps=warmup_steps,
    stable_steps=stable_steps,
    decay_steps=decay_steps,
    end_value=checks.lr_value("end_value", end_value),
    init_value=checks.lr_value("init_value", init_value),
    decay_shape=checks.choice("decay_shape", decay_shape, DECAY_SHAPES),
  )


wsd = warmup_stable_decay

__all__ = ["inverse_sqrt", "warmup_stable_decay", "wsd"]
