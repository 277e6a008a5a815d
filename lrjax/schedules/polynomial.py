"""Polynomial decay, with timm's k-decay and Keras's `cycle=True`.

`t` is the 0-based optimizer update. Without `cycle`, the decay clamps at its end value past its
horizon; with it, the horizon grows to the next multiple of `total_steps` (Keras's
`PolynomialDecay(cycle=True)`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, periodic_ends, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import (
  exact_gap,
  fraction_from,
  known_equal,
  linear_ramp,
  power_of,
  unit_scale,
  whole_div,
  whole_mod,
)
from lrjax.schedules.kdecay import warp, with_k_decay
from lrjax.schedules.steps import concrete_int


@schedule_class
class PolynomialDecay(Schedule):
  init_value: Any
  total_steps: Any
  power: Any
  end_value: Any
  k_decay: Any
  cycle: bool = static_field()

  def _value(self, t):
    def fractions():
      """(done, left, first step, last step) of the progress."""
      if self.cycle:
        done, left, multiple = self._cycled(t)
        return done, left, t <= 0, multiple
      total = self.total_steps
      return fraction_from(t, total, True), fraction_from(t, total, False), t <= 0, t >= total

    def plain():
      if not self.cycle:
        return self._plain(t)
      _, left, first, last = fractions()
      return self._from_left(left, first, last)

    def warped():
      done, left, first, last = fractions()
      return self._from_left(warp(done, left, self.k_decay)[1], first, last)

    return with_k_decay(self.k_decay, plain, warped)

  def _cycled(self, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(t / H, (H - t) / H, whether t is a multiple of T) with H the first multiple of T >= t.

    H = T at t = 0, as in Keras. Integer floor and remainder keep H - t exact for every int32 t.
    """
    d = jnp.maximum(self.total_steps, 1)
    r = whole_mod(t, d)
    multiple = (r == 0) & (t > 0)
    multiplier = whole_div(t, d) + (r > 0).astype(jnp.int32) + (t == 0).astype(jnp.int32)
    span = multiplier.astype(jnp.float32) * d.astype(jnp.float32)
    left = jnp.where(multiple, 0, jnp.where(t == 0, d, d - r)).astype(jnp.float32) / span
    done = jnp.where(multiple, 1.0, t.astype(jnp.float32) / span)
    return done, left, multiple

  def _plain(self, t: jax.Array) -> jax.Array:
    total = self.total_steps
    if known_equal(self.power, 1.0):
      return linear_ramp(self.init_value, self.end_value, t, total)
    tc = jnp.minimum(t, total)
    scale, gap = unit_scale(total), exact_gap(self.end_value, self.init_value)
    if scale is not None and gap is not None and known_equal(self.power > 0, True):
      # Known values: left is exactly 1 at t = 0 and 0 at T, and end + gap is exactly init, so
      # both ends are exact without pins (the same values as below, within an ulp).
      left = (total - tc).astype(jnp.float32) * scale
      return self.end_value + gap * power_of(left, self.power)
    return self._from_left(fraction_from(t, total, False), tc <= 0, tc >= total)

  def _from_left(self, left: jax.Array, first: jax.Array, last: jax.Array) -> jax.Array:
    v = self.end_value + (self.init_value - self.end_value) * power_of(left, self.power)
    # end + (init - end) * 1 is not always init in float32 (and x / T may be x * (1 / T)): pin
    # the first step. At the end, left is exactly 0 and so is left ** p for p > 0; p = 0 needs
    # the pin.
    v = jnp.where(first, self.init_value, v)
    return v if known_equal(self.power > 0, True) else jnp.where(last, self.end_value, v)

  def _cycle_ends(self, total_steps):
    if not self.cycle:
      return ()
    period = concrete_int(self.total_steps)
    if period is None:
      raise ValueError(
        f"polynomial_decay needs a concrete total_steps for cycle ends, got {self!r}"
      )
    # The rate reaches its end at each multiple of T and rises at the next step.
    return periodic_ends(period, total_steps, offset=1)


@register(
  "polynomial_decay",
  PolynomialDecay,
  example=dict(init_value=0.1, total_steps=100, power=5.0),
)
def polynomial_decay(
  init_value: Any,
  total_steps: Any,
  power: Any,
  end_value: Any = 0.0,
  *,
  cycle: bool = False,
  k_decay: Any = 1.0,
) -> PolynomialDecay:
  r"""Polynomial decay from `init_value` to `end_value` at `total_steps`, then constant.

  .. math::
    \eta(t) = E + (\eta_0 - E)\left(1 - \left(\frac{\min(t, T)}{T}\right)^{k}\right)^{p}

  The chapter's form is :math:`E = 0, k = 1`: :math:`\eta_0 ((T - \min(t, T)) / T)^p`. The
  value is exactly :math:`\eta_0` at :math:`t = 0` and exactly :math:`E` for :math:`t \ge T`
  (also for :math:`p < 1`, where a naive :math:`1 - t/T` under jit leaves a residue). Same values
  as `optax.polynomial_schedule`, Keras `PolynomialDecay(cycle=False)`, timm
  `PolyLRScheduler(t_initial=T, power=p, lr_min=E, k_decay=k)` and, for :math:`E = 0`,
  PyTorch `PolynomialLR`. The k-decay exponent :math:`k` (Zhang and Li 2020, see
  `lrjax.schedules.kdecay`) reads the progress as :math:`(t / T)^k`.

  With `cycle=True` (Keras's), :math:`T` becomes :math:`H = T \max(\lceil t / T \rceil, 1)`, the
  first multiple of :math:`T` at or past :math:`t`, and :math:`\min(t, T)` becomes :math:`t`: the
  rate reaches :math:`E` at every multiple of :math:`T` and rises at the next step, to decay
  again over a horizon :math:`T` longer (:math:`t = T + 1` reads
  :math:`(T + 1) / 2T`). Its cycles end one step after each multiple (`cycle_ends`). Past step
  2**31 - 1 it holds its value at that step.

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    total_steps: :math:`T`, a positive integer.
    power: :math:`p >= 0` (1 is linear; 0 gives a constant :math:`\eta_0`).
    end_value: :math:`E`, finite and >= 0 (default 0).
    cycle: Keras's `cycle`: decay again over the next multiple of :math:`T` (default False).
    k_decay: :math:`k > 0`, the power on the progress (default 1: the plain polynomial).

  Returns:
    A `PolynomialDecay` schedule.

  Raises:
    ValueError: for a non-positive `total_steps` or `k_decay`, a negative `power`, a negative
      or non-finite value, or a `cycle` that is not True or False.

  Example:
    >>> s = lrjax.polynomial_decay(1.0, 10, 2.0)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10, 11)]
    [1.0, 0.25, 0.0, 0.0]
    >>> s = lrjax.polynomial_decay(1.0, 10, 2.0, cycle=True)
    >>> [round(float(s(t)), 4) for t in (0, 5, 10, 11, 20, 21)]
    [1.0, 0.25, 0.0, 0.2025, 0.0, 0.09]
  """
  return PolynomialDecay(
    init_value=checks.lr_value("init_value", init_value),
    total_steps=checks.duration("total_steps", total_steps),
    power=checks.non_negative("power", power),
    end_value=checks.lr_value("end_value", end_value),
    k_decay=checks.positive("k_decay", k_decay),
    cycle=checks.flag("cycle", cycle),
  )


__all__ = ["polynomial_decay"]
