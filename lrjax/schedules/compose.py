"""Combinators in time: join, warmup, per-epoch holding, repetition, shift and choice.

Each combinator is itself a registered schedule whose children are schedules, so a composition is
one pytree (jit it, vmap it over any leaf) and its config is a nested dict. Combinators of values
(scale, add, multiply, clip) are in `lrjax.schedules.arithmetic`; how both fold steps past
2**31 - 1 through their children is in `lrjax.schedules.composite`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, periodic_ends, schedule_class, static_field
from lrjax.schedules.composite import (
  Composite,
  Wrapper,
  ends_after,
  evaluate,
  fold_after,
  fold_below,
  host_int,
)
from lrjax.schedules.config import register
from lrjax.schedules.decay import linear_decay, step_decay
from lrjax.schedules.formulas import WARMUP_SHAPES, shaped_warmup, whole_div, whole_mod
from lrjax.schedules.steps import concrete_int, saturate


@schedule_class
class Join(Composite):
  schedules: tuple[Schedule, ...]
  boundaries: Any

  def _value(self, t):
    out = evaluate(self.schedules[0], t)
    # Every piece is evaluated at a non-negative local step, so unselected pieces stay finite and
    # so do gradients through jnp.where. Later pieces win at equal boundaries, as in optax.
    for i, s in enumerate(self.schedules[1:]):
      b = self.boundaries[i]
      out = jnp.where(t >= b, evaluate(s, jnp.maximum(t - b, 0)), out)
    return out

  def _fold_to(self, step, limit):
    if len(self.schedules) == 1:
      return fold_below(self.schedules[0], step, limit)
    return fold_after(self.schedules[-1], step, self.boundaries[-1], limit)

  def _cycle_ends(self, total_steps):
    if checks.is_traced(self.boundaries):
      raise ValueError(
        f"join.boundaries must be concrete to compute cycle ends, got {self.boundaries!r}"
      )
    starts = [0, *np.asarray(self.boundaries).tolist()]
    ends = [*starts[1:], total_steps]
    for s, start, stop in zip(self.schedules, starts, ends):
      # A piece's last cycle is cut at the next boundary.
      yield from ends_after(s, start, min(max(stop, start), total_steps))


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
class Warmup(Composite):
  schedule: Schedule
  warmup_steps: Any
  init_value: Any
  warmup_shape: str = static_field()

  def _value(self, t):
    w = self.warmup_steps
    peak = evaluate(self.schedule, jnp.zeros_like(t))
    after = evaluate(self.schedule, jnp.maximum(t - w, 0))
    return shaped_warmup(self.init_value, peak, t, w, after, self.warmup_shape)

  def _fold_to(self, step, limit):
    return fold_after(self.schedule, step, self.warmup_steps, limit)

  def _cycle_ends(self, total_steps):
    return ends_after(self.schedule, host_int(self, "warmup_steps"), total_steps)


@register(
  "warmup", Warmup, example=dict(schedule=linear_decay(0.1, 90), warmup_steps=10, init_value=0.0)
)
def warmup(
  schedule: Schedule, warmup_steps: Any, init_value: Any = 0.0, warmup_shape: str = "linear"
) -> Warmup:
  r"""Prefixes a warmup from `init_value` to the schedule's first value.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (s(0) - \eta_i)\, g(t / W) & t < W \\
      s(t - W) & t \ge W
    \end{cases}

  with :math:`W` = `warmup_steps`, :math:`\eta_i` = `init_value` and the warmup shape
  :math:`g(p)` = :math:`p` (`"linear"`, the default), :math:`\tfrac12(1 - \cos \pi p)`
  (`"cosine"`), :math:`1 - \sqrt{1 - p}` (`"1-sqrt"`, slow at first and steep at the end), or
  the geometric ramp :math:`\eta_i (s(0) / \eta_i)^{t / W}` in place of the first line
  (`"exponential"`, which needs :math:`\eta_i > 0`); Hugging Face's
  `get_wsd_schedule(warmup_type=...)` has the first three. The wrapped schedule starts after the
  warmup (a prefix, as optax's `warmup_*` schedules and timm's `warmup_prefix=True`),
  so the curve is continuous at :math:`W` and the whole run is :math:`W` steps longer. The first
  update uses `init_value`; a 0 there (the default) wastes that update, a small positive value
  does not. With `warmup_steps=0` the values are the schedule's.

  Args:
    schedule: the lrjax schedule that follows the warmup.
    warmup_steps: :math:`W`, an integer >= 0 (may be traced).
    init_value: :math:`\eta_i`, finite and >= 0.
    warmup_shape: `"linear"`, `"cosine"`, `"1-sqrt"` or `"exponential"`.

  Raises:
    ValueError: if `schedule` is not a schedule, `warmup_steps` is negative or not an integer,
      `init_value` is negative or not finite, `warmup_shape` is unknown, or the warmup is
      `"exponential"` from `init_value` 0.
  """
  init_value = checks.lr_value("init_value", init_value)
  warmup_shape = checks.choice("warmup_shape", warmup_shape, WARMUP_SHAPES)
  checks.positive_for_exponential(init_value, warmup_shape)
  return Warmup(
    schedule=checks.schedule("schedule", schedule),
    warmup_steps=checks.steps("warmup_steps", warmup_steps),
    init_value=init_value,
    warmup_shape=warmup_shape,
  )


@schedule_class
class PerEpoch(Wrapper):
  schedule: Schedule
  steps_per_epoch: Any

  def _value(self, t):
    return evaluate(self.schedule, whole_div(t, jnp.maximum(self.steps_per_epoch, 1)))

  def _fold_to(self, step, limit):
    spe = concrete_int(self.steps_per_epoch)
    # Epochs up to this bound keep spe * epoch + (spe - 1) <= limit.
    epoch_limit = None if spe is None else (limit + 1) // spe - 1
    if epoch_limit is None or epoch_limit < 0:
      return saturate(step, limit)
    epoch = fold_below(self.schedule, step // spe, epoch_limit)
    return np.where(step > limit, spe * epoch + step % spe, step)

  def _cycle_ends(self, total_steps):
    spe = host_int(self, "steps_per_epoch")
    # Epochs the run starts (the last may be partial); a cycle ends with its last epoch.
    epochs = -(-total_steps // spe)
    return (min(e * spe, total_steps) for e in self.schedule.cycle_ends(epochs))


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
class Repeat(Wrapper):
  schedule: Schedule
  period: Any

  def _value(self, t):
    return evaluate(self.schedule, whole_mod(t, jnp.maximum(self.period, 1)))

  def _fold_to(self, step, limit):
    p = concrete_int(self.period)
    if p is None:
      return saturate(step, limit)
    return np.where(step > limit, fold_below(self.schedule, step % p, limit), step)

  def _cycle_ends(self, total_steps):
    p = host_int(self, "period")
    inner = self.schedule.cycle_ends(p)
    # Every period is a cycle; the child's own cycles end inside each period.
    for start in range(0, total_steps, p):
      yield from (start + e for e in inner if start + e <= total_steps)
    yield from periodic_ends(p, total_steps)


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
class Shift(Wrapper):
  schedule: Schedule
  offset: Any

  def _value(self, t):
    return evaluate(self.schedule, jnp.maximum(t - self.offset, 0))

  def _fold_to(self, step, limit):
    return fold_after(self.schedule, step, self.offset, limit)

  def _cycle_ends(self, total_steps):
    return ends_after(self.schedule, host_int(self, "offset"), total_steps)


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
class Choose(Composite):
  schedules: tuple[Schedule, ...]
  index: Any

  def _value(self, t):
    out = evaluate(self.schedules[0], t)
    for i, s in enumerate(self.schedules[1:], 1):
      out = jnp.where(self.index == i, evaluate(s, t), out)
    return out

  def _fold_to(self, step, limit):
    i = concrete_int(self.index)
    if i is None:
      return saturate(step, limit)
    return fold_below(self.schedules[i], step, limit)

  def _tail(self, t_float, t):
    i = concrete_int(self.index)
    return None if i is None else self.schedules[i]._tail(t_float, t)

  def _cycle_ends(self, total_steps):
    return self.schedules[host_int(self, "index")].cycle_ends(total_steps)


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
