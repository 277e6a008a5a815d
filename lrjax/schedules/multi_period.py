"""Multi-period warmup-stable-decay (WSD-S): one run that decays at several points and resumes.

`t` is the 0-based optimizer update. The warmup and decay shapes are `warmup_stable_decay`'s
(`lrjax.schedules.formulas`). The registered example has a horizon of 100 steps so that the
gallery plots line up.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import DECAY_SHAPES, WARMUP_SHAPES, shaped_decay, shaped_warmup
from lrjax.schedules.steps import round_steps


@schedule_class
class MultiPeriodWSD(Schedule):
  peak_value: Any
  warmup_steps: Any
  decay_points: Any
  decay_steps: Any
  end_value: Any
  init_value: Any
  decay_shape: str = static_field()
  warmup_shape: str = static_field()

  def _value(self, t):
    points, lengths = self.decay_points, self.decay_steps
    n = points.shape[-1]
    # The points at or before t: t is in period `passed` (past the last point when it is n).
    passed = jnp.sum(t[..., None] >= jnp.reshape(points, (1,) * t.ndim + (n,)), axis=-1)
    k = jnp.minimum(passed, n - 1)
    point = jnp.take(points, k)
    # One length for all: a scalar divisor, compiled as `warmup_stable_decay`'s (same bits).
    if jnp.size(lengths) == 1:
      length = jnp.reshape(lengths, ())
    else:
      length = jnp.take(lengths, k)
    # Validated: point - length >= 0, so no int32 sum is ever formed.
    u = t - (point - length)
    down = shaped_decay(self.peak_value, self.end_value, u, length, self.decay_shape)
    down = jnp.where(passed >= n, self.end_value, down)
    return shaped_warmup(
      self.init_value, self.peak_value, t, self.warmup_steps, down, self.warmup_shape
    )

  def _cycle_ends(self, total_steps):
    if checks.is_traced(self.decay_points):
      raise ValueError(f"wsd_s needs concrete decay_points for cycle ends, got {self!r}")
    return [int(p) for p in np.asarray(self.decay_points).ravel()]


@register(
  "wsd_s",
  MultiPeriodWSD,
  example=dict(peak_value=0.1, warmup_steps=10, decay_points=[40, 70, 100], decay_steps=10),
)
def wsd_s(
  peak_value: Any,
  warmup_steps: Any,
  decay_points: Any,
  decay_steps: Any = None,
  end_value: Any = 0.0,
  init_value: Any = 0.0,
  decay_shape: str = "1-sqrt",
  warmup_shape: str = "linear",
  *,
  decay_fraction: Any = None,
) -> MultiPeriodWSD:
  r"""Multi-period WSD (WSD-S): warm up, then decay before each of several points and resume.

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (\eta_p - \eta_i)\, g\!\left(\frac{t}{W}\right) & t < W \\
      \eta_p & W \le t < P_k - D_k \\
      \eta_e + (\eta_p - \eta_e)\, f\!\left(\frac{t - P_k + D_k}{D_k}\right)
        & P_k - D_k \le t < P_k \\
      \eta_e & t \ge P_n
    \end{cases}

  where :math:`k` is the period of :math:`t`, the first :math:`i` with :math:`t < P_i`, and
  :math:`\eta_p` = `peak_value`, :math:`W` = `warmup_steps`, :math:`P_1 < \dots < P_n` =
  `decay_points`, :math:`D_i` = `decay_steps` (one for all points, or one per point),
  :math:`\eta_e` = `end_value`, :math:`\eta_i` = `init_value`, and :math:`f` and :math:`g` the
  decay and warmup shapes of `warmup_stable_decay`: :math:`f(p)` = :math:`1 - \sqrt{p}`
  (`"1-sqrt"`), :math:`1 - p` (`"linear"`) or :math:`\tfrac12(1 + \cos \pi p)` (`"cosine"`).
  Each decay fits in its period, :math:`D_i \le P_i - P_{i-1}` with :math:`P_0 = 0`, and the
  first starts after the warmup, :math:`W + D_1 \le P_1`. The value is exactly :math:`\eta_i`
  at 0, exactly :math:`\eta_p` from :math:`W` and from every :math:`P_i` (:math:`i < n`) up to
  the next decay's start, and exactly :math:`\eta_e` from :math:`P_n` on. The decay before
  :math:`P_i` is :math:`D_i` updates long: the model after :math:`P_i` updates is the decayed
  one (evaluate or keep it there: `cycle_ends` returns the points), and the update at
  :math:`P_i` is the first of the next period, at the peak again.

  This is WSD-S (Wen et al. 2024, "Understanding Warmup-Stable-Decay Learning Rates: A River
  Valley Loss Landscape Perspective"): training goes on *from the decayed state*, so one run
  gives a decayed model at every point for the cost of the longest. With one point it is
  `warmup_stable_decay(peak_value, W, P_1 - W - D_1, D_1, ...)`, equal at every step.

  **The pre-decay variant** (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training
  Beyond Fixed Training Durations") forks each decay off the *pre-decay* state of one constant
  run (the trunk), and trains each decay point's run with `wsd_s` of that one point. In a
  study it is a `wsd_fork` arm with the decay points as `config.study.budgets`
  (`lrjax.config.study`): the trunk trains once per seed and each budget's cooldown, the last
  `cooldown` fraction of the budget, forks off it; the schedule each fork trains with is
  `wsd_s(peak_value, W, [P], decay_fraction=cooldown, ...)` with :math:`P` the budget in steps.

  Args:
    peak_value: :math:`\eta_p`, finite and >= 0.
    warmup_steps: :math:`W`, an integer >= 0.
    decay_points: :math:`P_1, \dots, P_n`, at least one, strictly increasing integer steps.
    decay_steps: :math:`D_i`, a positive integer for every point, or a sequence of one per
      point (or give `decay_fraction`).
    end_value: :math:`\eta_e`, the value each decay reaches (default 0).
    init_value: :math:`\eta_i`, the value at step 0 (default 0).
    decay_shape: `"1-sqrt"` (default, as `wsd_fork` arms), `"linear"` or `"cosine"`.
    warmup_shape: `"linear"`, `"cosine"`, `"1-sqrt"` or `"exponential"`.
    decay_fraction: :math:`D_i` as a fraction in (0, 1] of the period since the previous point,
      :math:`P_i - P_{i-1}` (the first period starts at step 0 and holds the warmup), one for
      all points or one per point; rounded to the nearest step, at least one. Not with
      `decay_steps`; the schedule stores the resolved `decay_steps`.

  Returns:
    A `MultiPeriodWSD` schedule.

  Raises:
    ValueError: if a value is negative or not finite, `warmup_steps` or a point is not an
      integer, `decay_points` is empty, unsorted or repeats a step, neither or both of
      `decay_steps` and `decay_fraction` are given, a decay is not a positive integer, a
      fraction is outside (0, 1], there is not one per point, a decay is longer than its
      period or the first overlaps the warmup, a shape is unknown, or the warmup is
      `"exponential"` from `init_value` 0.

  Example:
    >>> s = lrjax.wsd_s(1.0, 2, decay_points=[10, 20], decay_steps=4, decay_shape="linear")
    >>> [round(float(s(t)), 4) for t in (0, 1, 2, 6, 7, 9, 10, 16, 19, 20)]
    [0.0, 0.5, 1.0, 1.0, 0.75, 0.25, 1.0, 1.0, 0.25, 0.0]
    >>> s = lrjax.wsd_s(1.0, 2, [10, 30], decay_fraction=0.2)
    >>> s.decay_steps.tolist(), s.cycle_ends(30)
    ([2, 4], (10, 30))
  """
  warmup_steps = checks.steps("warmup_steps", warmup_steps)
  points = checks.sorted_boundaries("decay_points", decay_points, strict=True)
  if not checks.is_traced(points) and np.size(points) == 0:
    raise ValueError(f"decay_points must list at least one step, got {decay_points!r}")
  if (decay_steps is None) == (decay_fraction is None):
    raise ValueError(
      "give one of decay_steps and decay_fraction, got "
      f"decay_steps={decay_steps!r}, decay_fraction={decay_fraction!r}"
    )
  if decay_fraction is not None:
    decay_steps = _from_fractions(decay_fraction, points)
  given = decay_steps
  decay_steps = checks.duration("decay_steps", decay_steps)
  if np.ndim(decay_steps) > 1:
    raise ValueError(f"decay_steps must be an integer or a 1-D sequence, got {given!r}")
  if np.ndim(decay_steps) == 1:
    checks.same_length(("decay_points", "decay_steps"), points, decay_steps)
  _check_periods(warmup_steps, points, decay_steps)
  init_value = checks.lr_value("init_value", init_value)
  warmup_shape = checks.choice("warmup_shape", warmup_shape, WARMUP_SHAPES)
  checks.positive_for_exponential(init_value, warmup_shape)
  return MultiPeriodWSD(
    peak_value=checks.lr_value("peak_value", peak_value),
    warmup_steps=warmup_steps,
    decay_points=points,
    decay_steps=decay_steps,
    end_value=checks.lr_value("end_value", end_value),
    init_value=init_value,
    decay_shape=checks.choice("decay_shape", decay_shape, DECAY_SHAPES),
    warmup_shape=warmup_shape,
  )


def _periods(points: Any) -> np.ndarray:
  """P_i - P_{i-1} with P_0 = 0, as int64."""
  return np.diff(np.asarray(points, np.int64), prepend=0)


def _from_fractions(decay_fraction: Any, points: Any) -> np.ndarray:
  """round(fraction * period) steps for each point, at least one."""
  if checks.is_traced(points):
    raise ValueError("decay_points must be concrete with decay_fraction")
  fractions = checks.real(
    "decay_fraction", decay_fraction, lo=0.0, hi=1.0, lo_open=True, what="in (0, 1]"
  )
  if checks.is_traced(fractions):
    raise ValueError("decay_fraction must be concrete (the decays are computed from it)")
  if np.ndim(fractions) > 1:
    raise ValueError(f"decay_fraction must be a number or a 1-D sequence, got {decay_fraction!r}")
  if np.ndim(fractions) == 1:
    checks.same_length(("decay_points", "decay_fraction"), points, decay_fraction)
  # float64 products of the float64 fractions, as a study rounds `cooldown * epochs` of a fork.
  f = np.broadcast_to(np.asarray(decay_fraction, np.float64), np.shape(points))
  return round_steps(f * _periods(points)).astype(np.int32)


def _check_periods(warmup_steps: Any, points: Any, decay_steps: Any) -> None:
  """Each decay fits in its period; the first one after the warmup."""
  if any(checks.is_traced(x) for x in (warmup_steps, points, decay_steps)):
    return
  lengths = np.broadcast_to(np.asarray(decay_steps, np.int64), np.shape(points))
  p = np.asarray(points, np.int64)
  for i, (period, d) in enumerate(zip(_periods(points), lengths)):
    if d > period:
      since = (
        f"decay_points[0] = {p[0]} (from step 0)"
        if i == 0
        else f"decay_points[{i}] - decay_points[{i - 1}] = {p[i]} - {p[i - 1]} = {period}"
      )
      raise ValueError(f"decay_steps[{i}] = {d} is longer than its period, {since}")
  w = int(np.asarray(warmup_steps))
  if w + lengths[0] > p[0]:
    raise ValueError(
      f"the first decay must start after the warmup, got warmup_steps + decay_steps[0] = "
      f"{w} + {lengths[0]} > decay_points[0] = {p[0]}"
    )


__all__ = ["wsd_s"]
