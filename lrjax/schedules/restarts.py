"""Cosine with restarts: cyclic cosine annealing (equal cycles) and SGDR.

`t` is the 0-based optimizer update. Both repeat forever unless `sgdr` is given a `cycle_limit`,
after which it holds its end value (timm's `CosineLRScheduler(cycle_limit=n)`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, periodic_ends, schedule_class
from lrjax.schedules.config import register
from lrjax.schedules.formulas import (
  cosine_mix,
  cosine_ramp,
  fraction_done,
  fraction_left,
  safe_div,
  safe_pow,
  whole_div,
  whole_mod,
)
from lrjax.schedules.kdecay import warp, with_k_decay
from lrjax.schedules.steps import (
  FLOAT32_BELOW_2_31,
  INT32_MAX,
  concrete_int,
  fold_periodic,
  host_scalar,
)


@schedule_class
class CosineAnnealing(Schedule):
  peak_value: Any
  total_steps: Any
  num_cycles: Any

  def _period(self) -> jax.Array:
    total, cycles = jnp.maximum(self.total_steps, 1), jnp.maximum(self.num_cycles, 1)
    # ceil(T / M) without T + M - 1, which overflows int32 for T near 2**31.
    return total // cycles + (total % cycles > 0).astype(jnp.int32)

  def _value(self, t):
    period = self._period()
    return self.peak_value * cosine_ramp(fraction_left(whole_mod(t, period), period))

  def _host_period(self) -> int | None:
    total, cycles = concrete_int(self.total_steps), concrete_int(self.num_cycles)
    if total is None or cycles is None or min(total, cycles) < 1:
      return None
    return -(-total // cycles)

  def _fold(self, step):
    period = self._host_period()
    return super()._fold(step) if period is None else fold_periodic(step, 0, period)

  def _cycle_ends(self, total_steps):
    period = self._host_period()
    if period is None:
      raise ValueError(f"cosine_annealing needs concrete durations for cycle ends, got {self!r}")
    return periodic_ends(period, total_steps)


@register(
  "cosine_annealing",
  CosineAnnealing,
  example=dict(peak_value=0.1, total_steps=100, num_cycles=4),
)
def cosine_annealing(peak_value: Any, total_steps: Any, num_cycles: Any) -> CosineAnnealing:
  r"""Cyclic cosine annealing with `num_cycles` equal cycles (Snapshot Ensembles).

  .. math::
    \eta(t) = \frac{\eta_0}{2}\left(\cos\frac{\pi\,(t \bmod P)}{P} + 1\right), \quad
    P = \lceil T / M \rceil

  with :math:`\eta_0` = `peak_value`, :math:`T` = `total_steps`, :math:`M` = `num_cycles`
  (Huang et al. 2017 write :math:`\bmod(t - 1, P)` for 1-based :math:`t`). A cycle's last step is
  just above 0, not 0; cycling goes on past :math:`T`. Same as `sgdr(peak_value, P)` and PyTorch
  `CosineAnnealingWarmRestarts(T_0=P)`.

  Args:
    peak_value: :math:`\eta_0`, finite and >= 0.
    total_steps: :math:`T`, a positive integer.
    num_cycles: :math:`M`, an integer in :math:`[1, T]`.

  Raises:
    ValueError: if `num_cycles` is not in [1, `total_steps`], `total_steps` is not positive, or
      `peak_value` is negative or not finite.

  Example:
    >>> s = lrjax.cosine_annealing(1.0, total_steps=8, num_cycles=2)
    >>> [round(float(s(t)), 4) for t in (0, 2, 4, 6)]
    [1.0, 0.5, 1.0, 0.5]
  """
  total_steps = checks.duration("total_steps", total_steps)
  num_cycles = checks.integer("num_cycles", num_cycles, minimum=1)
  checks.not_longer("num_cycles", num_cycles, "total_steps", total_steps)
  return CosineAnnealing(
    peak_value=checks.lr_value("peak_value", peak_value),
    total_steps=total_steps,
    num_cycles=num_cycles,
  )


@schedule_class
class SGDR(Schedule):
  peak_value: Any
  first_period: Any
  period_mult: Any
  peak_decay: Any
  end_value: Any
  cycle_limit: Any
  k_decay: Any

  def _cycle(self, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(cycle index, fraction of the cycle done, fraction left) of each step."""
    first = jnp.maximum(self.first_period, 1)
    equal = self.period_mult == 1
    # Equal cycles: integer floor and mod stay exact for every int32 step.
    phase = whole_mod(t, first)
    done_equal, left_equal = fraction_done(phase, first), fraction_left(phase, first)
    # Growing cycles: cycle i starts at S(i) = L (r**i - 1) / (r - 1) (float32, exact below 2**24
    # for integer r) and holds the steps ceil(S(i)) <= t < ceil(S(i + 1)). The log only guesses i
    # (it can round a cycle's first step down); integer comparisons with the S(i) used for the
    # phase settle it.
    r = jnp.where(equal, 2.0, self.period_mult)  # keeps log(r) and 1 / (r - 1) finite
    length0 = first.astype(jnp.float32)
    x = jnp.minimum(t.astype(jnp.float32) / length0 * (r - 1.0), 3e38)
    guess = jnp.clip(jnp.floor(jnp.log1p(x) / jnp.log(r)), 0, 2**30).astype(jnp.int32)

    def start(i):
      return length0 * (jax.lax.pow(r, i) - 1.0) / (r - 1.0)

    def reached(i):
      s = start(i)
      # No float32 lies strictly between FLOAT32_BELOW_2_31 and 2**31: s < 2**31 means it fits.
      return (s < 2.0**31) & (t >= jnp.ceil(jnp.minimum(s, FLOAT32_BELOW_2_31)).astype(jnp.int32))

    i = jnp.where(reached(guess), jnp.where(reached(guess + 1), guess + 1, guess), guess - 1)
    i = jnp.maximum(i, 0)
    s = jnp.minimum(start(i), FLOAT32_BELOW_2_31)
    whole = jnp.floor(s)
    # t - S(i) as an exact int32 difference plus a float fraction: float32 t loses whole steps
    # past 2**24.
    done = jnp.maximum((t - whole.astype(jnp.int32)).astype(jnp.float32) - (s - whole), 0.0)
    length = length0 * jax.lax.pow(r, i)
    done_grow = jnp.clip(safe_div(done, length), 0.0, 1.0)
    left_grow = jnp.clip(safe_div(length - done, length), 0.0, 1.0)
    return (
      jnp.where(equal, whole_div(t, first), i),
      jnp.where(equal, done_equal, done_grow),
      jnp.where(equal, left_equal, left_grow),
    )

  def _value(self, t):
    cycle, done, left = self._cycle(t)
    peak = self.peak_value * safe_pow(self.peak_decay, cycle.astype(jnp.float32))
    # A decayed peak never falls below the floor: later cycles flatten to end_value.
    peak = jnp.maximum(peak, self.end_value)
    v = with_k_decay(
      self.k_decay,
      lambda: cosine_mix(peak, self.end_value, done, left),
      lambda: cosine_mix(peak, self.end_value, *warp(done, left, self.k_decay)),
    )
    if self.cycle_limit is None:
      return v
    return jnp.where(cycle >= self.cycle_limit, self.end_value, v)

  def _host_mult(self) -> float | None:
    mult = host_scalar(self.period_mult)
    return None if mult is None else float(mult)

  def _fold(self, step):
    period = concrete_int(self.first_period)
    if period is None or period < 1 or self._host_mult() != 1.0:
      return super()._fold(step)
    # Fold into the latest cycle int32 can reach, so a per-cycle decay is as far along as it can be,
    # and no further than the cycle limit, whose first step then stands for all later ones.
    cycles = max(INT32_MAX // period - 1, 0)
    if self.cycle_limit is not None and concrete_int(self.cycle_limit) is not None:
      cycles = min(cycles, concrete_int(self.cycle_limit))
    return fold_periodic(step, 0, period, max_cycles=cycles)

  def _cycle_ends(self, total_steps):
    first, mult = concrete_int(self.first_period), self._host_mult()
    if first is None or mult is None:
      raise ValueError(
        f"sgdr needs a concrete first_period and period_mult for cycle ends, got {self!r}"
      )
    limit = None if self.cycle_limit is None else concrete_int(self.cycle_limit)
    if self.cycle_limit is not None and limit is None:
      raise ValueError(f"sgdr needs a concrete cycle_limit for cycle ends, got {self!r}")
    if mult == 1.0:
      return periodic_ends(first, total_steps)[:limit]
    # Cycle i holds the steps ceil(S(i)) <= t < ceil(S(i + 1)), with S in float32 as in `_cycle`.
    length0, r = np.float32(first), np.float32(mult)
    ends, i = [], 1
    while (not ends or ends[-1] < total_steps) and (limit is None or len(ends) < limit):
      start = length0 * (np.power(r, np.float32(i)) - np.float32(1)) / (r - np.float32(1))
      ends.append(int(np.ceil(np.float64(start))))
      i += 1
    return ends


@register(
  "sgdr",
  SGDR,
  example=dict(peak_value=0.1, first_period=10, period_mult=2.0, peak_decay=0.7),
)
def sgdr(
  peak_value: Any,
  first_period: Any,
  period_mult: Any = 1.0,
  peak_decay: Any = 1.0,
  end_value: Any = 0.0,
  *,
  cycle_limit: Any = None,
  k_decay: Any = 1.0,
) -> SGDR:
  r"""Cosine annealing with warm restarts (SGDR), cycles growing and peaks decaying.

  .. math::
    \eta(t) = \begin{cases}
      E + (\max(\eta_0 d^{\,i}, E) - E)\,\frac{1 + \cos(\pi\, (t_i / L_i)^k)}{2} & i < n \\
      E & i \ge n
    \end{cases}, \quad L_i = L\, r^{\,i}

  where cycle :math:`i` starts at :math:`S_i = L (r^i - 1)/(r - 1)` (:math:`S_i = iL` for
  :math:`r = 1`), :math:`t_i = t - S_i`, :math:`\eta_0` = `peak_value`, :math:`L` =
  `first_period`, :math:`r` = `period_mult`, :math:`d` = `peak_decay`, :math:`E` = `end_value`,
  :math:`n` = `cycle_limit` (:math:`\infty` by default: cycles go on forever) and :math:`k` =
  `k_decay` (k-decay, see `lrjax.schedules.kdecay`; 1 by default). For a non-integer :math:`r`
  the starts are fractional, as in Keras and timm (a cycle's first step is then just past its
  peak). Starts are float32: past 2**24 steps one may move by a rounding (a step in 10 million).
  The closed-form index of Keras and timm can round a cycle's first step into the previous cycle
  (in float64, :math:`L = r = 3`, step 363); lrjax checks the index against the starts.

  Same values as PyTorch `CosineAnnealingWarmRestarts(T_0=L, T_mult=r, eta_min=E)` (which takes
  only integer :math:`r` and has no decay), timm `CosineLRScheduler(t_initial=L, cycle_mul=r,
  cycle_decay=d, lr_min=E, cycle_limit=n, k_decay=k)` while :math:`\eta_0 d^i \ge E` (below,
  timm's peak falls under its `lr_min` where lrjax holds :math:`E`: with 0.1, 10, 2, 0.5, 0.02
  they differ from step 70), and optax `sgdr_schedule` with one dict per cycle. timm's default
  `cycle_limit=1` is one cycle, `cosine_decay(peak_value, L, end_value=E)`. Keras
  `CosineDecayRestarts(m_mul=d)` decays only the amplitude above the floor,
  :math:`E + (\eta_0 - E) d^i`, where lrjax (like timm) decays the peak itself. Past step
  2**31 - 1 a growing schedule (:math:`r > 1`) holds its value at that step.

  Args:
    peak_value: :math:`\eta_0`, the first peak, finite and >= 0.
    first_period: :math:`L`, the first cycle's length, a positive integer.
    period_mult: :math:`r >= 1`, the growth of each cycle's length (default 1: equal cycles).
    peak_decay: :math:`d \in [0, 1]`, the factor on each cycle's peak (default 1).
    end_value: :math:`E`, the floor of every cycle, finite, >= 0 and at most `peak_value`.
    cycle_limit: :math:`n`, the number of cycles before the rate holds :math:`E`, a positive
      integer, or None (the default) for no limit.
    k_decay: :math:`k > 0`, the power on each cycle's progress (default 1: the plain cosine).

  Returns:
    An `SGDR` schedule.

  Raises:
    ValueError: for an argument out of the ranges above, or a negative or non-finite value.

  Example:
    >>> s = lrjax.sgdr(1.0, first_period=4, period_mult=2.0)
    >>> [round(float(s(t)), 4) for t in (0, 2, 4, 8, 12)]
    [1.0, 0.5, 1.0, 0.5, 1.0]
    >>> s = lrjax.sgdr(1.0, first_period=4, cycle_limit=2, k_decay=2.0)
    >>> [round(float(s(t)), 4) for t in (0, 2, 4, 6, 8, 10**6)]
    [1.0, 0.8536, 1.0, 0.8536, 0.0, 0.0]
  """
  peak = checks.lr_value("peak_value", peak_value)
  end = checks.lr_value("end_value", end_value)
  checks.not_longer("end_value", end_value, "peak_value", peak_value)
  return SGDR(
    peak_value=peak,
    first_period=checks.duration("first_period", first_period),
    period_mult=checks.real("period_mult", period_mult, lo=1.0),
    peak_decay=checks.real("peak_decay", peak_decay, lo=0.0, hi=1.0),
    end_value=end,
    cycle_limit=None if cycle_limit is None else checks.duration("cycle_limit", cycle_limit),
    k_decay=checks.positive("k_decay", k_decay),
  )


__all__ = ["cosine_annealing", "sgdr"]
