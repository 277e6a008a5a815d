"""Combinators: join, warmup, per-epoch holding, repetition, shift and arithmetic on schedules.

Each combinator is itself a registered schedule whose children are schedules, so a composition is
one pytree (jit it, vmap it over any leaf) and its config is a nested dict. `a + b`, `a * b` and
`0.5 * a` on schedules build `add`, `multiply` and `scale`.

Folding (steps past 2**31 - 1, see `Schedule._fold`): a combinator folds a step through its child
so that, for example, `repeat(s, 100)` at step 2**62 equals `s` at step 2**62 % 100. An inner
fold must land low enough that the outer formula maps it back into int32 (an epoch index times
`steps_per_epoch`, a step plus a warmup length); children from other modules only fold past
2**31 - 1, and where their fold does not land low enough the step saturates instead, which is
exact for a child that is constant from there on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import INT32_MAX, Schedule, fraction_done, schedule_class
from lrjax.schedules.config import register
from lrjax.schedules.decay import Constant, constant, linear_decay, step_decay


def _eval(s: Schedule, t: jax.Array) -> jax.Array:
  return s._value(t).astype(jnp.float32)


def _concrete_int(x: Any) -> int | None:
  """The Python int of a scalar leaf, or None when traced or batched (then folds saturate)."""
  if checks.is_traced(x):
    return None
  a = np.asarray(x)
  return int(a) if a.ndim == 0 else None


def _step_free(s: Schedule) -> bool:
  return isinstance(s, Constant) or (isinstance(s, _Composed) and s._step_free())


def _fold_below(s: Schedule, step: np.ndarray, limit: int) -> np.ndarray:
  """Maps the int64 steps of `s` past `limit` to steps <= limit where `s` has the same value."""
  if isinstance(s, _Composed):
    return s._fold_to(step, limit)
  if _step_free(s):
    return np.minimum(step, limit)
  folded = np.where(step > INT32_MAX, s._fold(step), step)
  return np.where(step > limit, np.minimum(folded, limit), step)


def _fold_after(child: Schedule, step: np.ndarray, offset: Any, limit: int) -> np.ndarray:
  """Fold for a child that sees `step - offset`."""
  o = _concrete_int(offset)
  if o is None or o > limit:
    return np.minimum(step, limit)
  inner = _fold_below(child, step - o, limit - o)
  return np.where(step > limit, o + inner, step)


class _Composed(Schedule):
  """A schedule with schedule children: folds through them (see the module docstring)."""

  def _fold(self, step: np.ndarray) -> np.ndarray:
    return self._fold_to(np.asarray(step, np.int64), INT32_MAX)

  def _fold_to(self, step: np.ndarray, limit: int) -> np.ndarray:
    return np.minimum(step, limit)

  def _step_free(self) -> bool:
    return False


class _Wrapper(_Composed):
  """A combinator of one child `schedule`: folds through it and is constant when it is."""

  def _fold_to(self, step: np.ndarray, limit: int) -> np.ndarray:
    return _fold_below(self.schedule, step, limit)

  def _step_free(self) -> bool:
    return _step_free(self.schedule)


class _Pair(_Composed):
  """A combinator of two children `a` and `b` (see `add` for its fold)."""

  def _fold_to(self, step: np.ndarray, limit: int) -> np.ndarray:
    a, b = self.a, self.b
    if _step_free(a) or _step_free(b):
      return _fold_below(b if _step_free(a) else a, step, limit)
    fa, fb = _fold_below(a, step, limit), _fold_below(b, step, limit)
    # A folded step is valid for both children only where their folds agree; saturate elsewhere.
    return np.where(fa == fb, fa, np.minimum(step, limit))

  def _step_free(self) -> bool:
    return _step_free(self.a) and _step_free(self.b)


@schedule_class
class Join(_Composed):
  schedules: tuple[Schedule, ...]
  boundaries: Any

  def _value(self, t):
    out = _eval(self.schedules[0], t)
    # Every piece is evaluated at a non-negative local step, so unselected pieces stay finite and
    # so do gradients through jnp.where. Later pieces win at equal boundaries, as in optax.
    for i, s in enumerate(self.schedules[1:]):
      b = self.boundaries[i]
      out = jnp.where(t >= b, _eval(s, jnp.maximum(t - b, 0)), out)
    return out

  def _fold_to(self, step, limit):
    if len(self.schedules) == 1:
      return _fold_below(self.schedules[0], step, limit)
    return _fold_after(self.schedules[-1], step, self.boundaries[-1], limit)


def _schedule_list(name: str, xs: Any) -> tuple[Schedule, ...]:
  if isinstance(xs, Schedule) or not isinstance(xs, Sequence) or not xs:
    raise ValueError(f"{name} must be a non-empty list of lrjax schedules, got {xs!r}")
  return tuple(checks.schedule(f"{name}[{i}]", s) for i, s in enumerate(xs))


@register(
  "join",
  Join,
  example=dict(
    schedules=[linear_decay(0.0, 10, end_value=0.1), linear_decay(0.1, 90, end_value=0.001)],
    boundaries=[10],
  ),
)
def join(schedules: Sequence[Schedule], boundaries: Any) -> Join:
  r"""Runs schedules one after another, each restarted at its own step 0 (`optax.join_schedules`).

  .. math:: \eta(t) = s_i(t - b_{i-1}) \quad \text{for } b_{i-1} \le t < b_i

  with :math:`b_{-1} = 0` and :math:`b_n = \infty`. At a boundary the next schedule takes over
  at its step 0; at equal boundaries the later schedule wins. Same values as
  `optax.join_schedules` and PyTorch `SequentialLR` (both switch *at* the boundary).

  Args:
    schedules: a non-empty list of :math:`n + 1` lrjax schedules.
    boundaries: :math:`n` sorted, non-negative integer steps (may be traced).

  Raises:
    ValueError: if `schedules` is empty or holds a non-schedule, if `boundaries` are negative,
      not integers or not sorted, or if `len(schedules) != len(boundaries) + 1`.
  """
  schedules = _schedule_list("schedules", schedules)
  boundaries = checks.sorted_boundaries("boundaries", boundaries)
  checks.same_length(("boundaries", "schedules"), boundaries, schedules, offset=1)
  return Join(schedules=schedules, boundaries=boundaries)


@schedule_class
class Warmup(_Composed):
  schedule: Schedule
  warmup_steps: Any
  init_value: Any

  def _value(self, t):
    w = self.warmup_steps
    peak = _eval(self.schedule, jnp.zeros_like(t))
    ramp = self.init_value + (peak - self.init_value) * fraction_done(t, w)
    return jnp.where(t < w, ramp, _eval(self.schedule, jnp.maximum(t - w, 0)))

  def _fold_to(self, step, limit):
    return _fold_after(self.schedule, step, self.warmup_steps, limit)


@register(
  "warmup", Warmup, example=dict(schedule=linear_decay(0.1, 90), warmup_steps=10, init_value=0.0)
)
def warmup(schedule: Schedule, warmup_steps: Any, init_value: Any = 0.0) -> Warmup:
  r"""Prefixes a linear warmup from `init_value` to the schedule's first value.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (s(0) - \eta_i)\, t / W & t < W \\
      s(t - W) & t \ge W
    \end{cases}

  with :math:`W` = `warmup_steps` and :math:`\eta_i` = `init_value`. The wrapped schedule starts
  after the warmup (a prefix, as optax's `warmup_*` schedules and timm's `warmup_prefix=True`),
  so the curve is continuous at :math:`W` and the whole run is :math:`W` steps longer. The first
  update uses `init_value`; a 0 there (the default) wastes that update, a small positive value
  does not. With `warmup_steps=0` the values are the schedule's.

  Args:
    schedule: the lrjax schedule that follows the warmup.
    warmup_steps: :math:`W`, an integer >= 0 (may be traced).
    init_value: :math:`\eta_i`, finite and >= 0.

  Raises:
    ValueError: if `schedule` is not a schedule, `warmup_steps` is negative or not an integer,
      or `init_value` is negative or not finite.
  """
  return Warmup(
    schedule=checks.schedule("schedule", schedule),
    warmup_steps=checks.steps("warmup_steps", warmup_steps),
    init_value=checks.lr_value("init_value", init_value),
  )


@schedule_class
class PerEpoch(_Wrapper):
  schedule: Schedule
  steps_per_epoch: Any

  def _value(self, t):
    return _eval(self.schedule, t // jnp.maximum(self.steps_per_epoch, 1))

  def _fold_to(self, step, limit):
    spe = _concrete_int(self.steps_per_epoch)
    # Epochs up to this bound keep spe * epoch + (spe - 1) <= limit.
    epoch_limit = None if spe is None else (limit + 1) // spe - 1
    if epoch_limit is None or epoch_limit < 0:
      return np.minimum(step, limit)
    epoch = _fold_below(self.schedule, step // spe, epoch_limit)
    return np.where(step > limit, spe * epoch + step % spe, step)


@register("per_epoch", PerEpoch, example=dict(schedule=step_decay(0.1, 0.5, 3), steps_per_epoch=10))
def per_epoch(schedule: Schedule, steps_per_epoch: Any) -> PerEpoch:
  r"""Reads the wrapped schedule in epochs and holds each value for a whole epoch.

  .. math:: \eta(t) = s(\lfloor t / E \rfloor)

  with :math:`E` = `steps_per_epoch`. The wrapped schedule's durations count *epochs*: its
  value changes only at steps :math:`kE`, exactly as a per-epoch Keras
  `LearningRateScheduler` or a PyTorch scheduler whose `step()` is called at each epoch's end
  (epoch :math:`k` is trained with :math:`s(k)`). For a smooth per-step curve over an epoch-long
  horizon, give the schedule durations in steps instead.

  Args:
    schedule: an lrjax schedule whose step argument is the 0-based epoch.
    steps_per_epoch: :math:`E`, a positive integer (may be traced).

  Raises:
    ValueError: if `schedule` is not a schedule or `steps_per_epoch` is not a positive integer.
  """
  return PerEpoch(
    schedule=checks.schedule("schedule", schedule),
    steps_per_epoch=checks.duration("steps_per_epoch", steps_per_epoch),
  )


@schedule_class
class Repeat(_Wrapper):
  schedule: Schedule
  period: Any

  def _value(self, t):
    return _eval(self.schedule, t % jnp.maximum(self.period, 1))

  def _fold_to(self, step, limit):
    p = _concrete_int(self.period)
    if p is None:
      return np.minimum(step, limit)
    return np.where(step > limit, _fold_below(self.schedule, step % p, limit), step)


@register("repeat", Repeat, example=dict(schedule=linear_decay(0.1, 25), period=25))
def repeat(schedule: Schedule, period: Any) -> Repeat:
  r"""Restarts the schedule every `period` steps.

  .. math:: \eta(t) = s(t \bmod P)

  Args:
    schedule: the lrjax schedule for one period.
    period: :math:`P`, a positive integer (may be traced).

  Raises:
    ValueError: if `schedule` is not a schedule or `period` is not a positive integer.
  """
  return Repeat(
    schedule=checks.schedule("schedule", schedule),
    period=checks.duration("period", period),
  )


@schedule_class
class Shift(_Wrapper):
  schedule: Schedule
  offset: Any

  def _value(self, t):
    return _eval(self.schedule, jnp.maximum(t - self.offset, 0))

  def _fold_to(self, step, limit):
    return _fold_after(self.schedule, step, self.offset, limit)


@register("shift", Shift, example=dict(schedule=linear_decay(0.1, 80), offset=20))
def shift(schedule: Schedule, offset: Any) -> Shift:
  r"""Delays the schedule by `offset` steps, holding its first value meanwhile.

  .. math:: \eta(t) = s(\max(t - D, 0))

  Args:
    schedule: an lrjax schedule.
    offset: :math:`D`, an integer >= 0 (may be traced).

  Raises:
    ValueError: if `schedule` is not a schedule or `offset` is negative or not an integer.
  """
  return Shift(
    schedule=checks.schedule("schedule", schedule), offset=checks.steps("offset", offset)
  )


@schedule_class
class Scale(_Wrapper):
  schedule: Schedule
  factor: Any

  def _value(self, t):
    return self.factor * _eval(self.schedule, t)


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
class Add(_Pair):
  a: Schedule
  b: Schedule

  def _value(self, t):
    return _eval(self.a, t) + _eval(self.b, t)


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
class Multiply(_Pair):
  a: Schedule
  b: Schedule

  def _value(self, t):
    return _eval(self.a, t) * _eval(self.b, t)


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
class Clip(_Wrapper):
  schedule: Schedule
  min_value: Any
  max_value: Any

  def _value(self, t):
    v = jnp.maximum(_eval(self.schedule, t), self.min_value)
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


__all__ = ["join", "warmup", "per_epoch", "repeat", "shift", "scale", "add", "multiply", "clip"]
