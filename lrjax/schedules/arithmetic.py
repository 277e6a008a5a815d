"""Arithmetic on schedules: scale, add, multiply and clip, and the operators that build them.

`a + b`, `a * b` and `0.5 * a` on schedules build `add`, `multiply` and `scale`: the operators
are defined here, with the combinators, and set on `Schedule` when this module is imported (which
importing `lrjax` or any `lrjax.schedules` module does). Each result is a registered schedule
whose children are schedules (see `lrjax.schedules.composite` for folding and cycles).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class
from lrjax.schedules.composite import Pair, Wrapper, evaluate
from lrjax.schedules.config import register
from lrjax.schedules.decay import Constant, constant, linear_decay, step_decay


@schedule_class
class Scale(Wrapper):
  schedule: Schedule
  factor: Any

  def _value(self, t):
    return self.factor * evaluate(self.schedule, t)


@register("scale", Scale, example=dict(schedule=linear_decay(0.2, 100), factor=0.5))
def scale(schedule: Schedule, factor: Any) -> Scale:
  r"""Multiplies a schedule by a constant: :math:`\eta(t) = c\, s(t)` (also `c * schedule`).

  Args:
    schedule: an lrjax schedule.
    factor: :math:`c`, finite and >= 0 (may be traced).

  Raises:
    ValueError: if `schedule` is not a schedule or `factor` is negative or not finite.
  """
  return Scale(
    schedule=checks.schedule("schedule", schedule), factor=checks.non_negative("factor", factor)
  )


def _as_schedule(name: str, x: Any) -> Schedule:
  if isinstance(x, Schedule):
    return x
  return Constant(value=checks.lr_value(name, x))


@schedule_class
class Add(Pair):
  a: Schedule
  b: Schedule

  def _value(self, t):
    return evaluate(self.a, t) + evaluate(self.b, t)


@register("add", Add, example=dict(a=linear_decay(0.09, 100), b=constant(0.01)))
def add(a: Any, b: Any) -> Add:
  r"""The sum of two schedules, :math:`\eta(t) = a(t) + b(t)` (also `a + b`).

  A number for either argument becomes `lrjax.constant(number)`: `schedule + 1e-4` works.

  Folding past 2**31 - 1 goes through the child that depends on the step when the other is
  constant; when both depend on it, a step is folded where both children fold it alike and
  saturates elsewhere.

  Args:
    a: an lrjax schedule or a learning rate (finite, >= 0).
    b: an lrjax schedule or a learning rate (finite, >= 0).

  Raises:
    ValueError: if an argument is neither a schedule nor a finite, non-negative number.
  """
  return Add(a=_as_schedule("a", a), b=_as_schedule("b", b))


@schedule_class
class Multiply(Pair):
  a: Schedule
  b: Schedule

  def _value(self, t):
    return evaluate(self.a, t) * evaluate(self.b, t)


@register("multiply", Multiply, example=dict(a=linear_decay(0.1, 100), b=step_decay(1.0, 0.5, 25)))
def multiply(a: Any, b: Any) -> Multiply:
  r"""The product of two schedules, :math:`\eta(t) = a(t)\, b(t)` (also `a * b`).

  Use a schedule of multipliers starting at 1 for `b` to modulate `a`, as big_vision's
  multiplicative warmup and cooldown or PyTorch's `ChainedScheduler` do. A number becomes
  `lrjax.constant(number)` (`scale` is the same for a constant factor). Folding as in `add`.

  Args:
    a: an lrjax schedule or a finite, non-negative number.
    b: an lrjax schedule or a finite, non-negative number.

  Raises:
    ValueError: if an argument is neither a schedule nor a finite, non-negative number.
  """
  return Multiply(a=_as_schedule("a", a), b=_as_schedule("b", b))


@schedule_class
class Clip(Wrapper):
  schedule: Schedule
  min_value: Any
  max_value: Any

  def _value(self, t):
    v = jnp.maximum(evaluate(self.schedule, t), self.min_value)
    return v if self.max_value is None else jnp.minimum(v, self.max_value)


@register(
  "clip",
  Clip,
  example=dict(schedule=linear_decay(0.2, 100), min_value=0.01, max_value=0.1),
)
def clip(schedule: Schedule, min_value: Any = 0.0, max_value: Any = None) -> Clip:
  r"""Bounds a schedule: :math:`\eta(t) = \min(\max(s(t), m), M)`.

  Args:
    schedule: an lrjax schedule.
    min_value: :math:`m`, finite and >= 0 (default 0: no lower bound for a learning rate).
    max_value: :math:`M`, finite and >= `min_value`, or None for no upper bound.

  Raises:
    ValueError: if `schedule` is not a schedule, a bound is negative or not finite, or
      `min_value > max_value`.
  """
  min_value = checks.lr_value("min_value", min_value)
  if max_value is not None:
    max_value = checks.lr_value("max_value", max_value)
    checks.not_longer("min_value", min_value, "max_value", max_value)
  return Clip(
    schedule=checks.schedule("schedule", schedule), min_value=min_value, max_value=max_value
  )


def _operand(x: Any) -> bool:
  """Schedules combine with schedules and numbers; anything else gets Python's TypeError."""
  return isinstance(x, (Schedule, int, float, np.number, np.ndarray, jax.Array)) and not isinstance(
    x, bool
  )


def _add(self: Schedule, other: Any) -> Schedule:
  return add(self, other) if _operand(other) else NotImplemented


def _mul(self: Schedule, other: Any) -> Schedule:
  if not _operand(other):
    return NotImplemented
  return multiply(self, other) if isinstance(other, Schedule) else scale(self, other)


# Both operations commute, so the reflected operators are the same functions.
Schedule.__add__ = Schedule.__radd__ = _add  # type: ignore[method-assign]
Schedule.__mul__ = Schedule.__rmul__ = _mul  # type: ignore[method-assign]

__all__ = ["scale", "add", "multiply", "clip"]
