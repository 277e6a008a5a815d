"""Monotone decays: constant, time-based, step (drop-based), exponential, linear, polynomial, tanh.

The chapter writes these per epoch; here `t` is the 0-based optimizer update. Wrap a schedule in
`lrjax.per_epoch` to hold its value for a whole epoch as the chapter's per-epoch formulas do.
Registered examples use a horizon of 100 steps so that the gallery plots line up. Polynomial decay
(with k-decay and Keras's cycling) is in `lrjax.schedules.polynomial` and importable from here too.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import (
  fraction_left,
  lerp,
  linear_ramp,
  safe_div,
  whole_div,
  whole_mod,
)
from lrjax.schedules.polynomial import polynomial_decay as polynomial_decay


@schedule_class
class Constant(Schedule):
  value: Any

  def _value(self, t):
    return jnp.broadcast_to(jnp.asarray(self.value, jnp.float32), jnp.shape(t))


@register("constant", Constant, example=dict(value=0.1))
def constant(value: Any) -> Constant:
  r"""A constant learning rate.

  .. math:: \eta(t) = v

  Args:
    value: the learning rate :math:`v`, finite and >= 0.

  Returns:
    A `Constant` schedule.

  Raises:
    ValueError: if `value` is negative or not finite.

  Example:
    >>> float(lrjax.constant(0.1)(10**12))
    0.10000000149011612
  """
  return Constant(value=checks.lr_value("value", value))


@schedule_class
class TimeBasedDecay(Schedule):
  init_value: Any
  decay_rate: Any

  def _value(self, t):
    return self.init_value / (1.0 + self.decay_rate * t.astype(jnp.float32))

  def _tail(self, t_float, t):
    return self._value(t_float)  # never settles: evaluate huge steps in float32


@register("time_based_decay", TimeBasedDecay, example=dict(init_value=0.1, decay_rate=0.05))
def time_based_decay(init_value: Any, decay_rate: Any) -> TimeBasedDecay:
  r"""Time-based (inverse-time) decay, the chapter's first schedule.

  .. math:: \eta(t) = \frac{\eta_0}{1 + d\,t}

  where :math:`\eta_0` is `init_value` and :math:`d` is `decay_rate`. This is Keras 2's
  optimizer argument `decay=d` (applied per iteration) and Keras `InverseTimeDecay` with
  `decay_steps=1`. The chapter's rule for choosing it is :math:`d = \eta_0 / \text{epochs}` per
  iteration (its example's "0.01" for 0.1 over 100 epochs contradicts the rule; lrjax follows
  the rule: 0.001).

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    decay_rate: :math:`d >= 0`, per step; 0 gives a constant.

  Raises:
    ValueError: if a value is negative or not finite.
  """
  return TimeBasedDecay(
    init_value=checks.lr_value("init_value", init_value),
    decay_rate=checks.non_negative("decay_rate", decay_rate),
  )


@schedule_class
class StepDecay(Schedule):
  init_value: Any
  drop_factor: Any
  drop_every: Any

  def _value(self, t):
    # Integer floor: a float32 t / drop_every loses exactness past 2**24 steps.
    drops = whole_div(t, jnp.maximum(self.drop_every, 1))
    return self.init_value * jnp.power(self.drop_factor, drops.astype(jnp.float32))


@register("step_decay", StepDecay, example=dict(init_value=0.1, drop_factor=0.5, drop_every=25))
def step_decay(init_value: Any, drop_factor: Any, drop_every: Any) -> StepDecay:
  r"""Drop-based (step) decay: multiply by `drop_factor` every `drop_every` steps.

  .. math:: \eta(t) = \eta_0 \cdot f^{\lfloor t / k \rfloor}

  with :math:`f` = `drop_factor` and :math:`k` = `drop_every`. The first drop happens *at*
  step :math:`k` (as optax staircase `exponential_decay`, Keras `ExponentialDecay(staircase=True)`,
  PyTorch `StepLR` and timm `StepLRScheduler`).

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    drop_factor: :math:`f > 0` (0.5 halves the learning rate; > 1 grows it).
    drop_every: :math:`k`, a positive integer number of steps.

  Raises:
    ValueError: if `drop_factor <= 0`, `drop_every` is not a positive integer, or a value is
      negative or not finite.
  """
  return StepDecay(
    init_value=checks.lr_value("init_value", init_value),
    drop_factor=checks.positive("drop_factor", drop_factor),
    drop_every=checks.duration("drop_every", drop_every),
  )


@schedule_class
class ExponentialDecay(Schedule):
  init_value: Any
  transition_steps: Any
  decay_rate: Any
  transition_begin: Any
  end_value: Any
  staircase: bool = static_field()

  def _value(self, t):
    d = jnp.maximum(t - self.transition_begin, 0)
    k = jnp.maximum(self.transition_steps, 1)
    whole = p = whole_div(d, k).astype(jnp.float32)
    # Split into whole and fractional transitions so the exponent stays exact for huge t.
    if not self.staircase:
      p = whole + whole_mod(d, k).astype(jnp.float32) / k.astype(jnp.float32)
    # Exactly init_value before decay starts (pow(r, 0) is 1 anyway); selecting it outright also
    # measured cheaper in scalar loops than the bare pow.
    v = jnp.where(d <= 0, self.init_value, self.init_value * jnp.power(self.decay_rate, p))
    if self.end_value is None:
      return v
    return jnp.where(
      self.decay_rate < 1, jnp.maximum(v, self.end_value), jnp.minimum(v, self.end_value)
    )


@register(
  "exponential_decay",
  ExponentialDecay,
  example=dict(init_value=0.1, transition_steps=20, decay_rate=0.5, end_value=0.005),
)
def exponential_decay(
  init_value: Any,
  transition_steps: Any,
  decay_rate: Any,
  transition_begin: Any = 0,
  staircase: bool = False,
  end_value: Any = None,
) -> ExponentialDecay:
  r"""Exponential decay, continuous or staircase, with a begin step and an end value (optax's).

  .. math::
    \eta(t) = \operatorname{clip}_{E}\Big(\eta_0 \cdot r^{\,p}\Big), \quad
    p = \frac{\max(t - b, 0)}{k} \;\Big(\text{floored if staircase}\Big)

  with :math:`r` = `decay_rate`, :math:`k` = `transition_steps`, :math:`b` = `transition_begin`;
  :math:`\operatorname{clip}_E` is :math:`\max(\cdot, E)` when :math:`r < 1` and
  :math:`\min(\cdot, E)` when :math:`r \ge 1` (no clip without `end_value`). Same values as
  `optax.exponential_decay`; unlike optax, a zero `decay_rate` or `transition_steps` raises
  instead of silently giving a constant.

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    transition_steps: :math:`k`, a positive integer.
    decay_rate: :math:`r > 0`.
    transition_begin: :math:`b`, steps held at `init_value` first (integer >= 0).
    staircase: decay in whole transitions (a step function) instead of continuously.
    end_value: optional bound :math:`E` (a floor when decaying, a ceiling when growing).

  Raises:
    ValueError: for non-positive `transition_steps` or `decay_rate`, a negative
      `transition_begin`, or a negative or non-finite value.
  """
  return ExponentialDecay(
    init_value=checks.lr_value("init_value", init_value),
    transition_steps=checks.duration("transition_steps", transition_steps),
    decay_rate=checks.positive("decay_rate", decay_rate),
    transition_begin=checks.steps("transition_begin", transition_begin),
    end_value=None if end_value is None else checks.lr_value("end_value", end_value),
    staircase=checks.flag("staircase", staircase),
  )


@schedule_class
class LinearDecay(Schedule):
  init_value: Any
  total_steps: Any
  end_value: Any

  def _value(self, t):
    return linear_ramp(self.init_value, self.end_value, t, self.total_steps)


@register("linear_decay", LinearDecay, example=dict(init_value=0.1, total_steps=100))
def linear_decay(init_value: Any, total_steps: Any, end_value: Any = 0.0) -> LinearDecay:
  r"""Linear decay from `init_value` to `end_value` at `total_steps`, then constant.

  .. math:: \eta(t) = E + (\eta_0 - E)\,\frac{T - \min(t, T)}{T}

  The chapter's form is :math:`E = 0`: :math:`\eta_0 (1 - \min(t, T)/T)`. `end_value` may exceed
  `init_value` (a linear ramp up). Same values as `optax.linear_schedule` and Keras
  `PolynomialDecay(power=1)`.

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    total_steps: :math:`T`, a positive integer.
    end_value: :math:`E`, finite and >= 0 (default 0).

  Raises:
    ValueError: for a non-positive `total_steps` or a negative or non-finite value.
  """
  return LinearDecay(
    init_value=checks.lr_value("init_value", init_value),
    total_steps=checks.duration("total_steps", total_steps),
    end_value=checks.lr_value("end_value", end_value),
  )


@schedule_class
class TanhDecay(Schedule):
  init_value: Any
  total_steps: Any
  lower: Any
  upper: Any
  end_value: Any

  def _value(self, t):
    left = fraction_left(t, self.total_steps)
    span = self.upper - self.lower
    # g(r) = (1 - tanh(x)) / 2 = sigmoid(-2 x) with x = upper - span * (1 - r): the rescaled
    # (g(r) - g(1)) / (g(0) - g(1)) factors into two positive, decreasing terms, which keeps full
    # relative precision next to T (where a plain difference cancels) and is monotone in float32.
    x = self.upper - span * left
    head = jnp.exp(jax.nn.log_sigmoid(-2.0 * x) - jax.nn.log_sigmoid(-2.0 * self.lower))
    tail = safe_div(jnp.expm1(-2.0 * span * left), jnp.expm1(-2.0 * span))
    w = jnp.clip(head * tail, 0.0, 1.0)
    w = jnp.where(left >= 1, 1.0, jnp.where(left <= 0, 0.0, w))
    return lerp(self.init_value, self.end_value, 1.0 - w, w)


@register("tanh_decay", TanhDecay, example=dict(init_value=0.1, total_steps=100))
def tanh_decay(
  init_value: Any,
  total_steps: Any,
  lower: Any = -7.0,
  upper: Any = 3.0,
  end_value: Any = 0.0,
) -> TanhDecay:
  r"""Tanh decay (Hsueh et al. 2018), rescaled to start and end exactly at its values.

  .. math::
    \eta(t) = E + (\eta_0 - E)\,\frac{g(r) - g(1)}{g(0) - g(1)}, \quad
    g(r) = \frac{1 - \tanh(a (1 - r) + b\, r)}{2}, \quad r = \frac{\min(t, T)}{T}

  with :math:`a` = `lower`, :math:`b` = `upper`. timm `TanhLRScheduler(lb=a, ub=b)` uses
  :math:`E + (\eta_0 - E)\, g(r)` unscaled: with the defaults it starts at
  :math:`0.9999992\,\eta_0` and jumps to :math:`E` at :math:`T` from about
  :math:`E + 0.0025(\eta_0 - E)`. lrjax rescales so that :math:`\eta(0) = \eta_0` and
  :math:`\eta(T) = E` exactly, without the jump; elsewhere it differs from timm by at most
  0.25% of :math:`\eta_0 - E`.

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    total_steps: :math:`T`, a positive integer.
    lower: :math:`a`, the tanh argument at step 0 (default -7), finite.
    upper: :math:`b`, the tanh argument at step :math:`T` (default 3), finite and > `lower`.
    end_value: :math:`E`, finite and >= 0 (default 0).

  Raises:
    ValueError: if `lower >= upper`, `total_steps` is not positive, or a value is negative or
      not finite.

  Example:
    >>> s = lrjax.tanh_decay(1.0, 10)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10)]
    [1.0, 0.982, 0.0]
  """
  lower = checks.real("lower", lower)
  upper = checks.real("upper", upper)
  if not checks.is_traced(lower) and not checks.is_traced(upper):
    if not np.all(np.asarray(lower) < np.asarray(upper)):
      raise ValueError(f"lower must be less than upper = {upper.tolist()}, got {lower.tolist()}")
  return TanhDecay(
    init_value=checks.lr_value("init_value", init_value),
    total_steps=checks.duration("total_steps", total_steps),
    lower=lower,
    upper=upper,
    end_value=checks.lr_value("end_value", end_value),
  )


__all__ = [
  "constant",
  "time_based_decay",
  "step_decay",
  "exponential_decay",
  "linear_decay",
  "polynomial_decay",
  "tanh_decay",
]
