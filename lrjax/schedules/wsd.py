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
from lrjax.schedules.formulas import (
  DECAY_SHAPES,
  WARMUP_SHAPES,
  fraction_done,
  fraction_left,
  linear_warmup,
  safe_pow,
  shaped_decay,
  shaped_warmup,
  sin_squared_ramp,
)
from lrjax.schedules.steps import fits_int32, round_steps

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


STABLE_SHAPES = ("constant", "power")


@schedule_class
class WarmupStableDecay(Schedule):
  peak_value: Any
  warmup_steps: Any
  stable_steps: Any
  decay_steps: Any
  end_value: Any
  init_value: Any
  stable_power: Any
  stable_timescale: Any
  decay_shape: str = static_field()
  warmup_shape: str = static_field()
  stable_shape: str = static_field()

  def _value(self, t):
    w, d = self.warmup_steps, self.decay_steps
    # Clamped before subtracting so that no int32 sum of the three durations is ever formed.
    u = jnp.maximum(t - w, 0) - self.stable_steps
    if self.stable_shape == "power":
      down = self._power_stable(t, u)
    else:  # exactly the peak while stable (u <= 0)
      down = shaped_decay(self.peak_value, self.end_value, u, d, self.decay_shape)
    return shaped_warmup(self.init_value, self.peak_value, t, w, down, self.warmup_shape)

  def _power_stable(self, t, u):
    """timm's decaying stable phase: the decay multiplies the stable value, not the peak."""
    since_peak = jnp.maximum(t - self.warmup_steps, 0).astype(jnp.float32)
    scale = jnp.asarray(self.stable_timescale, jnp.float32)
    stable = self.peak_value * safe_pow(1.0 + since_peak / scale, -self.stable_power)
    stable = jnp.maximum(jnp.where(since_peak > 0, stable, self.peak_value), self.end_value)
    p = fraction_done(u, self.decay_steps)
    if self.decay_shape == "1-sqrt":
      f = 1.0 - jnp.sqrt(p)
    elif self.decay_shape == "cosine":
      f = 1.0 - sin_squared_ramp(p)
    else:
      f = fraction_left(u, self.decay_steps)
    f = jnp.where(p <= 0, 1.0, jnp.where(p >= 1, 0.0, f))  # exact at both ends of the decay
    return self.end_value + (stable - self.end_value) * f


@register(
  "warmup_stable_decay",
  WarmupStableDecay,
  example=dict(peak_value=0.1, warmup_steps=10, stable_steps=70, decay_steps=20),
)
def warmup_stable_decay(
  peak_value: Any,
  warmup_steps: Any = None,
  stable_steps: Any = None,
  decay_steps: Any = None,
  end_value: Any = 0.0,
  init_value: Any = 0.0,
  decay_shape: str = "linear",
  warmup_shape: str = "linear",
  *,
  total_steps: Any = None,
  warmup_fraction: Any = None,
  decay_fraction: Any = None,
  stable_shape: str = "constant",
  stable_power: Any = 0.5,
  stable_timescale: Any = None,
) -> WarmupStableDecay:
  r"""Warmup-stable-decay (WSD, "trapezoid"): warm up, hold the peak, then decay quickly.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (\eta_p - \eta_i)\, g\!\left(\frac{t}{W}\right) & t < W \\
      \eta_p & W \le t < W + S \\
      \eta_e + (\eta_p - \eta_e)\, f\!\left(\frac{t - W - S}{D}\right) & W + S \le t < W + S + D \\
      \eta_e & t \ge W + S + D
    \end{cases}

  with :math:`\eta_p` = `peak_value`, :math:`W, S, D` = `warmup_steps`, `stable_steps`,
  `decay_steps`, :math:`\eta_i` = `init_value`, :math:`\eta_e` = `end_value`, the decay
  shape :math:`f(p)` = :math:`1 - p` (`"linear"`), :math:`\tfrac12(1 + \cos \pi p)`
  (`"cosine"`) or :math:`1 - \sqrt{p}` (`"1-sqrt"`, Hägele et al. 2024), and the warmup shape
  :math:`g(p)` = :math:`p` (`"linear"`), :math:`\tfrac12(1 - \cos \pi p)` (`"cosine"`),
  :math:`1 - \sqrt{1 - p}` (`"1-sqrt"`), or the geometric ramp
  :math:`\eta_i (\eta_p / \eta_i)^{p}` in place of the first line (`"exponential"`, which needs
  :math:`\eta_i > 0`). The value is exactly :math:`\eta_i` at 0, exactly :math:`\eta_p` from
  :math:`W` to :math:`W + S` and exactly :math:`\eta_e` from :math:`W + S + D` on.

  **A decaying stable phase** (timm's `stable_fn="power"`, the Power scheduler's law, and
  big_vision's rsqrt with a cooldown at `stable_power=0.5`): with `stable_shape="power"` the
  second and third lines become :math:`\sigma(t)` and
  :math:`\eta_e + (\sigma(t) - \eta_e)\, f(\cdot)`, where
  :math:`\sigma(t) = \max\big(\eta_p (1 + (t - W)/\tau)^{-a},\ \eta_e\big)`, :math:`a` =
  `stable_power` and :math:`\tau` = `stable_timescale` (default :math:`W`): the decay then
  multiplies the decaying stable value, as timm's `WSDLRScheduler` does.

  **Sized from a total.** Give `total_steps` :math:`T` instead of `stable_steps`: the stable
  phase is what the warmup and the decay leave, :math:`S = T - W - D`. `warmup_fraction` and
  `decay_fraction` give :math:`W` and :math:`D` as fractions of :math:`T`, rounded to the
  nearest step (a positive fraction lasts at least one step), as configs write WSD today
  (`warmup_stable_decay(0.1, total_steps=10_000, warmup_fraction=0.01, decay_fraction=0.2)`).
  The schedule stores the resolved :math:`W, S, D` (its config has no total), so
  `replace(stable_steps=...)` changes the length and `replace(total_steps=...)` is refused.

  Hugging Face `get_wsd_schedule(num_warmup_steps=W, num_decay_steps=D,
  num_training_steps=T, warmup_type=..., decay_type=..., min_lr_ratio=m)` gives the same
  values with the same `total_steps`, shapes, and :math:`\eta_i = \eta_e = m\,\eta_p`: its warmup
  starts at the floor, not at 0 (Ran, W=2, S=4, D=4, m=.1, linear: .1, .55, 1, 1, 1, 1, 1,
  .775, .55, .325, .1, .1); HF has no exponential warmup, and its default decay is cosine where
  lrjax's is linear. timm `WSDLRScheduler` (warmup prefix, `stable_fn="constant"`) matches with
  :math:`\eta_i = 0` and a linear warmup. `wsd` is the same function.

  Args:
    peak_value: :math:`\eta_p`, finite and >= 0.
    warmup_steps: :math:`W`, an integer >= 0 (or give `warmup_fraction`; None and no fraction
      means 0).
    stable_steps: :math:`S`, an integer >= 0, or None with `total_steps`.
    decay_steps: :math:`D`, a positive integer (or give `decay_fraction`).
    end_value: :math:`\eta_e`, the final value (default 0).
    init_value: :math:`\eta_i`, the value at step 0 (default 0).
    decay_shape: `"linear"`, `"cosine"` or `"1-sqrt"`.
    warmup_shape: `"linear"`, `"cosine"`, `"1-sqrt"` or `"exponential"`.
    total_steps: :math:`T = W + S + D`, a positive integer; with `stable_steps` too, they must
      agree.
    warmup_fraction: :math:`W / T` in [0, 1) (needs `total_steps`; not with `warmup_steps`).
    decay_fraction: :math:`D / T` in (0, 1] (needs `total_steps`; not with `decay_steps`).
    stable_shape: `"constant"` (WSD) or `"power"` (a stable phase that decays).
    stable_power: :math:`a > 0`, the exponent of `"power"` (0.5: inverse square root).
    stable_timescale: :math:`\tau`, a positive integer; None means :math:`W` (which must then
      be positive). Stored resolved; unused (None) with `"constant"`.

  Returns:
    A `WarmupStableDecay` schedule.

  Raises:
    ValueError: if a value is negative or not finite, a duration is negative or not an
      integer, `decay_steps` is 0 or missing, neither `stable_steps` nor `total_steps` is
      given, the warmup and decay do not fit in `total_steps`, a duration is given both in steps
      and as a fraction, a fraction is given without `total_steps` or is out of range, the three
      durations add up to more than :math:`2^{31} - 1`, a shape is unknown, or the warmup is
      `"exponential"` from `init_value` 0.

  Example:
    >>> s = lrjax.schedules.wsd.warmup_stable_decay(1.0, 2, 4, 4, decay_shape="1-sqrt")
    >>> [round(float(s(t)), 4) for t in (0, 1, 2, 6, 7, 10)]
    [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]
    >>> s = lrjax.warmup_stable_decay(1.0, warmup_steps=2, decay_steps=4, total_steps=10)
    >>> int(s.stable_steps)
    4
  """
  warmup_steps, stable_steps, decay_steps = _resolve_durations(
    warmup_steps, stable_steps, decay_steps, total_steps, warmup_fraction, decay_fraction
  )
  fits_int32(warmup_steps=warmup_steps, stable_steps=stable_steps, decay_steps=decay_steps)
  init_value = checks.lr_value("init_value", init_value)
  warmup_shape = checks.choice("warmup_shape", warmup_shape, WARMUP_SHAPES)
  checks.positive_for_exponential(init_value, warmup_shape)
  stable_shape = checks.choice("stable_shape", stable_shape, STABLE_SHAPES)
  if stable_shape == "constant":
    stable_timescale = None
  elif stable_timescale is None:
    if checks.is_traced(warmup_steps) or int(np.asarray(warmup_steps)) == 0:
      raise ValueError(
        "stable_timescale is None and warmup_steps is 0 (or traced): give a positive "
        "stable_timescale for stable_shape='power'"
      )
    stable_timescale = warmup_steps
  return WarmupStableDecay(
    peak_value=checks.lr_value("peak_value", peak_value),
    warmup_steps=warmup_steps,
    stable_steps=stable_steps,
    decay_steps=decay_steps,
    end_value=checks.lr_value("end_value", end_value),
    init_value=init_value,
    stable_power=checks.positive("stable_power", stable_power),
    stable_timescale=None
    if stable_timescale is None
    else checks.duration("stable_timescale", stable_timescale),
    decay_shape=checks.choice("decay_shape", decay_shape, DECAY_SHAPES),
    warmup_shape=warmup_shape,
    stable_shape=stable_shape,
  )


def _from_fraction(name: str, fraction: Any, total: int, lo_open: bool, hi_open: bool) -> int:
  """round(fraction * total) steps, at least one for a positive fraction."""
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)):
    raise ValueError(f"{name} must be a number, got {fraction!r}")
  lo_bad = fraction <= 0 if lo_open else fraction < 0
  hi_bad = fraction >= 1 if hi_open else fraction > 1
  if lo_bad or hi_bad or not np.isfinite(fraction):
    rng = ("(0, " if lo_open else "[0, ") + ("1)" if hi_open else "1]")
    raise ValueError(f"{name} must be in {rng}, got {fraction!r}")
  return round_steps(float(fraction) * total)


def _resolve_durations(warmup, stable, decay, total, warmup_fraction, decay_fraction):
  """(W, S, D) as checked leaves, from steps or from fractions of a total (host values)."""
  if total is None:
    for name, value in (("warmup_fraction", warmup_fraction), ("decay_fraction", decay_fraction)):
      if value is not None:
        raise ValueError(f"{name} needs total_steps, got {name}={value!r} and no total_steps")
    if stable is None:
      raise ValueError("stable_steps is None: give stable_steps, or total_steps to infer it")
  else:
    total = checks.duration("total_steps", total)
    if checks.is_traced(total):
      raise ValueError("total_steps must be concrete (the stable phase is computed from it)")
    t = int(np.asarray(total))
    for name, steps, fraction in (
      ("warmup", warmup, warmup_fraction),
      ("decay", decay, decay_fraction),
    ):
      if steps is not None and fraction is not None:
        raise ValueError(
          f"{name}_steps={steps!r} and {name}_fraction={fraction!r} both given: give one"
        )
    if warmup_fraction is not None:
      warmup = _from_fraction("warmup_fraction", warmup_fraction, t, False, True)
    if decay_fraction is not None:
      decay = _from_fraction("decay_fraction", decay_fraction, t, True, False)
  warmup = checks.steps("warmup_steps", 0 if warmup is None else warmup)
  if decay is None:
    raise ValueError("decay_steps is None: give decay_steps, or decay_fraction with total_steps")
  decay = checks.duration("decay_steps", decay)
  if total is None:
    return warmup, checks.steps("stable_steps", stable), decay
  if checks.is_traced(warmup) or checks.is_traced(decay):
    raise ValueError("warmup_steps and decay_steps must be concrete with total_steps")
  w, d = int(np.asarray(warmup)), int(np.asarray(decay))
  if w + d > t:
    raise ValueError(
      f"total_steps must hold the warmup and the decay, got total_steps={t} < "
      f"warmup_steps + decay_steps = {w} + {d}"
    )
  if stable is not None:
    s = checks.steps("stable_steps", stable)
    if checks.is_traced(s) or int(np.asarray(s)) != t - w - d:
      raise ValueError(
        f"stable_steps={stable!r} disagrees with total_steps={t}: W + S + D must equal T "
        f"(S = {t - w - d}); give one of them"
      )
    return warmup, s, decay
  return warmup, checks.steps("stable_steps", t - w - d), decay


wsd = warmup_stable_decay

__all__ = ["inverse_sqrt", "warmup_stable_decay", "wsd"]
