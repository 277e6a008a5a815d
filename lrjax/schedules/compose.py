"""Combinators in time: join, warmup, per-epoch holding, repetition and shift.

Each combinator is itself a registered schedule whose children are schedules, so a composition is
one pytree (jit it, vmap it over any leaf) and its config is a nested dict. Combinators of values
(scale, add, multiply, clip) are in `lrjax.schedules.arithmetic`.

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
from lrjax.schedules.base import INT32_MAX, Schedule, schedule_class
from lrjax.schedules.config import register
from lrjax.schedules.decay import Constant, linear_decay, step_decay
from lrjax.schedules.formulas import fraction_done, whole_div, whole_mod


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
    return _eval(self.schedule, whole_div(t, jnp.maximum(self.steps_per_epoch, 1)))

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
    return _eval(self.schedule, whole_mod(t, jnp.maximum(self.period, 1)))

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
class Choose(_Composed):
  schedules: tuple[Schedule, ...]
  index: Any

  def _value(self, t):
    out = _eval(self.schedules[0], t)
    for i, s in enumerate(self.schedules[1:], 1):
      out = jnp.where(self.index == i, _eval(s, t), out)
    return out

  def _fold_to(self, step, limit):
    i = _concrete_int(self.index)
    if i is None:
      return np.minimum(step, limit)
    return _fold_below(self.schedules[i], step, limit)

  def _tail(self, t_float, t):
    i = _concrete_int(self.index)
    return None if i is None else self.schedules[i]._tail(t_float, t)


@register(
  "choose",
  Choose,
  example=dict(schedules=[linear_decay(0.1, 100), step_decay(0.1, 0.5, 25)], index=1),
)
def choose(schedules: Sequence[Schedule], index: Any) -> Choose:
  r"""The schedule `schedules[index]`, with `index` a leaf: vmap over it to mix kinds.

  .. math:: \eta(t) = s_k(t), \quad k = \text{index}

  Schedules of different kinds are different pytrees, which `jax.vmap` cannot stack. `choose`
  holds them all and picks one by an integer leaf, so a population of runs with, say, a step
  decay and a cosine shares one program: vmap over `index`, not over the schedules. Every
  schedule is evaluated (scalar work) and the chosen value is selected.

  Args:
    schedules: a non-empty list of lrjax schedules.
    index: an integer in [0, len(schedules) - 1] (may be traced).

  Raises:
    ValueError: if `schedules` is empty or holds a non-schedule, or `index` is out of range.

  Example:
    >>> s = [lrjax.constant(0.1), lrjax.linear_decay(0.1, 10)]
    >>> [round(float(lrjax.choose(s, i)(5)), 4) for i in (0, 1)]
    [0.1, 0.05]
  """
  schedules = _schedule_list("schedules", schedules)
  index = checks.integer("index", index, minimum=0)
  if not checks.is_traced(index) and np.any(np.asarray(index) >= len(schedules)):
    raise ValueError(
      f"index must be in [0, {len(schedules) - 1}] (one of {len(schedules)} schedules), got "
      f"{np.asarray(index).tolist()}"
    )
  return Choose(schedules=schedules, index=index)


__all__ = ["choose", "join", "warmup", "per_epoch", "repeat", "shift"]
