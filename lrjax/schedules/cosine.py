"""Cosine-shaped schedules: cosine decay (with warmup), cyclic cosine annealing and SGDR.

`t` is the 0-based optimizer update. Decays clamp at their end value past their horizon (as optax,
Keras and timm; PyTorch `CosineAnnealingLR` and Hugging Face cosine instead keep following the
cosine and rise again); the cyclic schedules repeat forever.
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
  cosine_between,
  cosine_mix,
  cosine_ramp,
  fraction_done,
  fraction_left,
  interpolate,
  safe_div,
  safe_pow,
  whole_div,
  whole_mod,
)
from lrjax.schedules.steps import (
  FLOAT32_BELOW_2_31,
  INT32_MAX,
  concrete_int,
  fold_periodic,
  host_scalar,
)


@schedule_class
class CosineDecay(Schedule):
  init_value: Any
  decay_steps: Any
  end_value: Any
  exponent: Any

  def _value(self, t):
    return cosine_between(self.init_value, self.end_value, t, self.decay_steps, self.exponent)


@register("cosine_decay", CosineDecay, example=dict(init_value=0.1, decay_steps=100))
def cosine_decay(
  init_value: Any,
  decay_steps: Any,
  *,
  end_value: Any = None,
  exponent: Any = 1.0,
  alpha: Any = None,
) -> CosineDecay:
  r"""Cosine decay from `init_value` to `end_value` over `decay_steps`, then constant.

  .. math::
    \eta(t) = E + (\eta_0 - E)\left(\frac{1 + \cos(\pi \min(t, D) / D)}{2}\right)^{p}

  Exactly :math:`\eta_0` at :math:`t = 0` and :math:`E` for :math:`t \ge D`. Same values as
  `optax.cosine_decay_schedule(init_value, D, alpha=E / init_value, exponent=p)`, Keras
  `CosineDecay(alpha=E / init_value)` and timm `CosineLRScheduler(lr_min=E)`. PyTorch
  `CosineAnnealingLR` rises again after :math:`D`.

  The arguments after `decay_steps` are keyword-only: optax's third positional argument is the
  ratio `alpha`, lrjax's end is a value, so `cosine_decay(0.1, 1000, 0.1)` would mean two things.
  optax's `alpha=a` is accepted and means `end_value = a * init_value`.

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    decay_steps: :math:`D`, a positive integer.
    end_value: :math:`E`, finite and >= 0 (default 0); may exceed `init_value` (a ramp up).
    exponent: :math:`p >= 0` (default 1; 0 gives a constant :math:`\eta_0`).
    alpha: optax's end ratio :math:`E / \eta_0` (finite, >= 0), instead of `end_value`.

  Raises:
    ValueError: for a non-positive `decay_steps`, a negative `exponent`, a bad value, or both
      `end_value` and `alpha`.

  Example:
    >>> s = lrjax.cosine_decay(1.0, 10)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10, 10**9)]
    [1.0, 0.5, 0.0, 0.0]
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
    return cosine_mix(peak, self.end_value, done, left)

  def _host_mult(self) -> float | None:
    mult = host_scalar(self.period_mult)
    return None if mult is None else float(mult)

  def _fold(self, step):
    period = concrete_int(self.first_period)
    if period is None or period < 1 or self._host_mult() != 1.0:
      return super()._fold(step)
    # Fold into the latest cycle int32 can reach, so a per-cycle decay is as far along as it can be.
    return fold_periodic(step, 0, period, max_cycles=max(INT32_MAX // period - 1, 0))

  def _cycle_ends(self, total_steps):
    first, mult = concrete_int(self.first_period), self._host_mult()
    if first is None or mult is None:
      raise ValueError(
        f"sgdr needs a concrete first_period and period_mult for cycle ends, got {self!r}"
      )
    if mult == 1.0:
      return periodic_ends(first, total_steps)
    # Cycle i holds the steps ceil(S(i)) <= t < ceil(S(i + 1)), with S in float32 as in `_cycle`.
    length0, r = np.float32(first), np.float32(mult)
    ends, i = [], 1
    while not ends or ends[-1] < total_steps:
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
) -> SGDR:
  r"""Cosine annealing with warm restarts (SGDR), cycles growing and peaks decaying.

  .. math::
    \eta(t) = E + (\max(\eta_0 d^{\,i}, E) - E)\,\frac{1 + \cos(\pi\, t_i / L_i)}{2},
    \quad L_i = L\, r^{\,i}

  where cycle :math:`i` starts at :math:`S_i = L (r^i - 1)/(r - 1)` (:math:`S_i = iL` for
  :math:`r = 1`), :math:`t_i = t - S_i`, :math:`\eta_0` = `peak_value`, :math:`L` =
  `first_period`, :math:`r` = `period_mult`, :math:`d` = `peak_decay`, :math:`E` = `end_value`.
  Cycles go on forever. For a non-integer :math:`r` the starts are fractional, as in Keras and
  timm (a cycle's first step is then just past its peak). Starts are float32: past 2**24 steps
  one may move by a rounding (a step in 10 million). The closed-form index of Keras and timm can
  round a cycle's first step into the previous cycle (in float64, :math:`L = r = 3`, step 363);
  lrjax checks the index against the starts.

  Same values as PyTorch `CosineAnnealingWarmRestarts(T_0=L, T_mult=r, eta_min=E)` (which takes
  only integer :math:`r` and has no decay), timm `CosineLRScheduler(cycle_mul=r,
  cycle_decay=d, lr_min=E)` with an unlimited `cycle_limit` while :math:`\eta_0 d^i \ge E`
  (below, timm's peak falls under its `lr_min` where lrjax holds :math:`E`: with 0.1, 10, 2,
  0.5, 0.02 they differ from step 70), and optax `sgdr_schedule` with one dict per cycle. Keras
  `CosineDecayRestarts(m_mul=d)` decays only the amplitude above the floor,
  :math:`E + (\eta_0 - E) d^i`, where lrjax (like timm) decays the peak itself. Past step
  2**31 - 1 a growing schedule (:math:`r > 1`) holds its value at that step.

  Args:
    peak_value: :math:`\eta_0`, the first peak, finite and >= 0.
    first_period: :math:`L`, the first cycle's length, a positive integer.
    period_mult: :math:`r >= 1`, the growth of each cycle's length (default 1: equal cycles).
    peak_decay: :math:`d \in [0, 1]`, the factor on each cycle's peak (default 1).
    end_value: :math:`E`, the floor of every cycle, finite, >= 0 and at most `peak_value`.

  Raises:
    ValueError: for an argument out of the ranges above, or a negative or non-finite value.

  Example:
    >>> s = lrjax.sgdr(1.0, first_period=4, period_mult=2.0)
    >>> [round(float(s(t)), 4) for t in (0, 2, 4, 8, 12)]
    [1.0, 0.5, 1.0, 0.5, 1.0]
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
  )


__all__ = ["cosine_annealing", "cosine_decay", "sgdr", "warmup_cosine_decay"]
