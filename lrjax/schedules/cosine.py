"""Cosine decays: cosine decay (with k-decay) and cosine decay after a linear warmup.

`t` is the 0-based optimizer update. Decays clamp at their end value past their horizon (as optax,
Keras and timm; PyTorch `CosineAnnealingLR` and Hugging Face cosine instead keep following the
cosine and rise again). The cyclic cosines (`cosine_annealing`, `sgdr`) are in
`lrjax.schedules.restarts` and importable from here too.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class
from lrjax.schedules.config import register
from lrjax.schedules.formulas import (
  cosine_between,
  cosine_mix,
  fraction_done,
  fraction_left,
  interpolate,
)
from lrjax.schedules.kdecay import warp, with_k_decay
from lrjax.schedules.restarts import cosine_annealing as cosine_annealing
from lrjax.schedules.restarts import sgdr as sgdr


@schedule_class
class CosineDecay(Schedule):
  init_value: Any
  decay_steps: Any
  end_value: Any
  exponent: Any
  k_decay: Any

  def _value(self, t):
    init, end, total, p = self.init_value, self.end_value, self.decay_steps, self.exponent

    def warped():
      done, left = warp(fraction_done(t, total), fraction_left(t, total), self.k_decay)
      return cosine_mix(init, end, done, left, p)

    return with_k_decay(self.k_decay, lambda: cosine_between(init, end, t, total, p), warped)


@register("cosine_decay", CosineDecay, example=dict(init_value=0.1, decay_steps=100))
def cosine_decay(
  init_value: Any,
  decay_steps: Any,
  *,
  end_value: Any = None,
  exponent: Any = 1.0,
  alpha: Any = None,
  k_decay: Any = 1.0,
) -> CosineDecay:
  r"""Cosine decay from `init_value` to `end_value` over `decay_steps`, then constant.

  .. math::
    \eta(t) = E + (\eta_0 - E)\left(\frac{1 + \cos(\pi\, (\min(t, D) / D)^{k})}{2}\right)^{p}

  Exactly :math:`\eta_0` at :math:`t = 0` and :math:`E` for :math:`t \ge D`. Same values as
  `optax.cosine_decay_schedule(init_value, D, alpha=E / init_value, exponent=p)`, Keras
  `CosineDecay(alpha=E / init_value)` and timm `CosineLRScheduler(t_initial=D, lr_min=E,
  k_decay=k)`. PyTorch `CosineAnnealingLR` rises again after :math:`D`. The k-decay exponent
  :math:`k` (Zhang and Li 2020, see `lrjax.schedules.kdecay`) reads the progress as
  :math:`(t / D)^k`: above 1 the rate stays high longer and falls faster at the end.

  The arguments after `decay_steps` are keyword-only: optax's third positional argument is the
  ratio `alpha`, lrjax's end is a value, so `cosine_decay(0.1, 1000, 0.1)` would mean two things.
  optax's `alpha=a` is accepted and means `end_value = a * init_value`.

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    decay_steps: :math:`D`, a positive integer.
    end_value: :math:`E`, finite and >= 0 (default 0); may exceed `init_value` (a ramp up).
    exponent: :math:`p >= 0` (default 1; 0 gives a constant :math:`\eta_0`).
    alpha: optax's end ratio :math:`E / \eta_0` (finite, >= 0), instead of `end_value`.
    k_decay: :math:`k > 0`, the power on the progress (default 1: the plain cosine).

  Returns:
    A `CosineDecay` schedule.

  Raises:
    ValueError: for a non-positive `decay_steps` or `k_decay`, a negative `exponent`, a bad
      value, or both `end_value` and `alpha`.

  Example:
    >>> s = lrjax.cosine_decay(1.0, 10)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10, 10**9)]
    [1.0, 0.5, 0.0, 0.0]
    >>> s = lrjax.cosine_decay(1.0, 10, k_decay=2.0)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10)]
    [1.0, 0.8536, 0.0]
  """
  init_value = checks.lr_value("init_value", init_value)
  if alpha is not None:
    if end_value is not None:
      raise ValueError(f"give end_value or alpha, not both: got {end_value!r} and {alpha!r}")
    end_value = checks.non_negative("alpha", alpha) * init_value
  return CosineDecay(
    init_value=init_value,
    decay_steps=checks.duration("decay_steps", decay_steps),
    end_value=checks.lr_value("end_value", 0.0 if end_value is None else end_value),
    exponent=checks.non_negative("exponent", exponent),
    k_decay=checks.positive("k_decay", k_decay),
  )


@schedule_class
class WarmupCosineDecay(Schedule):
  init_value: Any
  peak_value: Any
  warmup_steps: Any
  decay_steps: Any
  end_value: Any
  exponent: Any

  def _value(self, t):
    w = self.warmup_steps
    warm = interpolate(self.init_value, self.peak_value, t, w)
    # t and w are non-negative int32: their differences cannot overflow.
    after, span = jnp.maximum(t - w, 0), self.decay_steps - w
    decay = cosine_between(self.peak_value, self.end_value, after, span, self.exponent)
    return jnp.where(t < w, warm, decay)


@register(
  "warmup_cosine_decay",
  WarmupCosineDecay,
  example=dict(init_value=0.0, peak_value=0.1, warmup_steps=10, decay_steps=100),
)
def warmup_cosine_decay(
  init_value: Any,
  peak_value: Any,
  warmup_steps: Any,
  decay_steps: Any,
  end_value: Any = 0.0,
  exponent: Any = 1.0,
) -> WarmupCosineDecay:
  r"""Linear warmup from `init_value` to `peak_value`, then cosine decay to `end_value`.

  .. math::
    \eta(t) = \begin{cases}
      \eta_0 + (P - \eta_0)\, t / W & t < W \\
      E + (P - E)\left(\frac{1 + \cos(\pi \min(t - W, D - W) / (D - W))}{2}\right)^{p}
        & t \ge W
    \end{cases}

  As in `optax.warmup_cosine_decay_schedule` (same values), `decay_steps` :math:`D` is the
  whole length *including* the warmup. Keras `CosineDecay(warmup_steps=W)` and timm
  (`warmup_prefix=True`) count the decay after the warmup: pass `decay_steps = W + D_keras`.
  Hugging Face `get_cosine_schedule_with_warmup` starts the warmup at 0 and does not clamp
  past :math:`D`. Unlike optax, `peak_value = 0` and traced durations are allowed.

  Args:
    init_value: :math:`\eta_0`, the value at step 0, finite and >= 0.
    peak_value: :math:`P`, reached at step :math:`W`, finite and >= 0.
    warmup_steps: :math:`W`, an integer >= 0 (0: no warmup).
    decay_steps: :math:`D`, the total length, an integer greater than :math:`W`.
    end_value: :math:`E`, finite and >= 0 (default 0).
    exponent: :math:`p >= 0` of the cosine (default 1).

  Raises:
    ValueError: if `warmup_steps >= decay_steps`, a duration or `exponent` is out of range, or
      a value is negative or not finite.

  Example:
    >>> s = lrjax.warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=10)
    >>> [round(float(s(t)), 4) for t in (0, 1, 2, 6, 10)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
  """
  warmup_steps = checks.steps("warmup_steps", warmup_steps)
  decay_steps = checks.duration("decay_steps", decay_steps)
  checks.not_longer("warmup_steps", warmup_steps, "decay_steps", decay_steps, strict=True)
  return WarmupCosineDecay(
    init_value=checks.lr_value("init_value", init_value),
    peak_value=checks.lr_value("peak_value", peak_value),
    warmup_steps=warmup_steps,
    decay_steps=decay_steps,
    end_value=checks.lr_value("end_value", end_value),
    exponent=checks.non_negative("exponent", exponent),
  )


__all__ = ["cosine_annealing", "cosine_decay", "sgdr", "warmup_cosine_decay"]
