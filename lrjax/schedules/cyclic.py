"""Schedules that rise and fall: the triangle (BERT) schedule, Smith's cyclical LR and 1cycle.

`t` is the 0-based optimizer update. The triangle and 1cycle are constant after their horizon;
`cyclical` repeats forever, and a concrete step past 2**31 - 1 is folded to the same phase.
Registered examples use a horizon of 100 steps so that the gallery plots line up.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, periodic_ends, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import (
  fraction_done,
  fraction_left,
  interpolate,
  linear_warmup,
  safe_pow,
  sin_squared_ramp,
  whole_div,
  whole_mod,
)
from lrjax.schedules.steps import INT32_MAX, concrete_int, fits_int32, fold_periodic


@schedule_class
class Triangle(Schedule):
  peak_value: Any
  warmup_steps: Any
  total_steps: Any
  init_value: Any
  end_value: Any

  def _value(self, t):
    w, total = self.warmup_steps, self.total_steps
    # `interpolate` ends at end_value also for a decay of no length (warmup_steps == total_steps).
    down = interpolate(self.peak_value, self.end_value, t - w, total - w)
    return linear_warmup(self.init_value, self.peak_value, t, w, down)


@register("triangle", Triangle, example=dict(peak_value=0.1, warmup_steps=10, total_steps=100))
def triangle(
  peak_value: Any,
  warmup_steps: Any,
  total_steps: Any,
  init_value: Any = 0.0,
  end_value: Any = 0.0,
) -> Triangle:
  r"""The triangle schedule: linear warmup to the peak, then linear decay (BERT's schedule).

  .. math::
    \eta(t) = \begin{cases}
      \eta_i + (\eta_p - \eta_i)\,\frac{t}{W} & t < W \\
      \eta_e + (\eta_p - \eta_e)\,\frac{T - t}{T - W} & W \le t < T \\
      \eta_e & t \ge T
    \end{cases}

  with :math:`\eta_p` = `peak_value`, :math:`W` = `warmup_steps`, :math:`T` = `total_steps`,
  :math:`\eta_i` = `init_value` and :math:`\eta_e` = `end_value` (both 0 in the chapter).
  The value is exactly :math:`\eta_p` at :math:`t = W` and exactly :math:`\eta_e` from
  :math:`T` on. `W = 0` is a pure linear decay; `W = T` a pure ramp that drops to
  :math:`\eta_e` at :math:`T`.

  Same values as `optax.join_schedules([optax.linear_schedule(init, peak, W),
  optax.linear_schedule(peak, end, T - W)], [W])` and as Hugging Face
  `get_linear_schedule_with_warmup(W, T)` (which always starts and ends at 0). Unlike optax
  (whose `linear_schedule` with no length stays at its start), `W = T` ends at :math:`\eta_e`.

  Args:
    peak_value: :math:`\eta_p`, finite and >= 0.
    warmup_steps: :math:`W`, an integer in :math:`[0, T]`.
    total_steps: :math:`T`, a positive integer.
    init_value: :math:`\eta_i`, the value at step 0 (default 0).
    end_value: :math:`\eta_e`, the value from step :math:`T` on (default 0).

  Returns:
    A `Triangle` schedule.

  Raises:
    ValueError: if a value is negative or not finite, `total_steps` is not a positive integer,
      `warmup_steps` is negative or longer than `total_steps`.

  Example:
    >>> s = lrjax.schedules.cyclic.triangle(1.0, warmup_steps=2, total_steps=10)
    >>> [round(float(s(t)), 3) for t in (0, 1, 2, 6, 10, 11)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
  """
  warmup_steps = checks.steps("warmup_steps", warmup_steps)
  total_steps = checks.duration("total_steps", total_steps)
  checks.not_longer("warmup_steps", warmup_steps, "total_steps", total_steps)
  return Triangle(
    peak_value=checks.lr_value("peak_value", peak_value),
    warmup_steps=warmup_steps,
    total_steps=total_steps,
    init_value=checks.lr_value("init_value", init_value),
    end_value=checks.lr_value("end_value", end_value),
  )


CYCLICAL_MODES = ("triangular", "triangular2", "exp_range")


@schedule_class
class Cyclical(Schedule):
  min_value: Any
  max_value: Any
  step_size_up: Any
  step_size_down: Any
  mode: str = static_field()
  gamma: Any

  def _value(self, t):
    up, down = self.step_size_up, self.step_size_down
    period = jnp.maximum(up + down, 1)
    r = whole_mod(t, period)  # integer phase: a float32 t / period loses exactness past 2**24 steps
    s = jnp.where(r < up, fraction_done(r, up), fraction_left(r - up, down))
    if self.mode == "triangular2":
      s = s * jnp.power(jnp.float32(0.5), whole_div(t, period).astype(jnp.float32))
    elif self.mode == "exp_range":
      s = s * safe_pow(self.gamma, t.astype(jnp.float32))
    return self.min_value + (self.max_value - self.min_value) * s

  def _host_period(self) -> int | None:
    up, down = concrete_int(self.step_size_up), concrete_int(self.step_size_down)
    return None if up is None or down is None else up + down

  def _fold(self, step: np.ndarray) -> np.ndarray:
    period = self._host_period()
    if period is None:
      return super()._fold(step)
    period = max(period, 1)
    # Keep the phase and as many whole cycles as int32 holds: the decaying modes have reached
    # min_value (to float32 precision) long before that.
    return fold_periodic(step, 0, period, max_cycles=max((INT32_MAX - period + 1) // period, 0))

  def _cycle_ends(self, total_steps):
    period = self._host_period()
    if period is None:
      raise ValueError(
        f"cyclical step sizes must be concrete to compute cycle ends, got "
        f"{self.step_size_up!r}, {self.step_size_down!r}"
      )
    return periodic_ends(period, total_steps)


@register(
  "cyclical",
  Cyclical,
  example=dict(min_value=0.01, max_value=0.1, step_size_up=25),
)
def cyclical(
  min_value: Any,
  max_value: Any,
  step_size_up: Any,
  step_size_down: Any = None,
  mode: str = "triangular",
  gamma: Any = 1.0,
) -> Cyclical:
  r"""Smith's cyclical learning rate: a triangle wave between `min_value` and `max_value`.

  .. math::
    \eta(t) = \eta_{\min} + (\eta_{\max} - \eta_{\min})\, s(r)\, a(t), \quad
    r = t \bmod (U + D), \quad
    s(r) = \begin{cases} r / U & r < U \\ (U + D - r) / D & r \ge U \end{cases}

  with :math:`U` = `step_size_up`, :math:`D` = `step_size_down` and the amplitude
  :math:`a(t)` set by `mode`: `"triangular"` :math:`1`; `"triangular2"`
  :math:`2^{-\lfloor t / (U + D) \rfloor}` (halved every cycle); `"exp_range"`
  :math:`\gamma^t`. Each cycle starts at :math:`\eta_{\min}` and peaks at step :math:`U`.

  Same values as PyTorch `CyclicLR(base_lr=min_value, max_lr=max_value, ...)` with
  `scale_fn=None` (Smith 2017, arXiv 1506.01186). Unlike PyTorch, `gamma` must be in
  :math:`(0, 1]` so the values stay in :math:`[\eta_{\min}, \eta_{\max}]`. PyTorch's
  `cycle_momentum=True` is the companion schedule `lrjax.cyclical_momentum`. A concrete step past
  :math:`2^{31} - 1` keeps its phase; the cycle count is then capped at what int32 holds,
  which is exact for `"triangular"` and reaches :math:`\eta_{\min}` to float32 precision for
  the decaying modes with cycles shorter than about :math:`10^7` steps.

  Args:
    min_value: :math:`\eta_{\min}`, finite and >= 0.
    max_value: :math:`\eta_{\max}`, finite and >= `min_value`.
    step_size_up: :math:`U`, steps from the minimum to the maximum (a positive integer).
    step_size_down: :math:`D`, steps back down (a positive integer); None means :math:`U`,
      and that number is stored, so `replace(step_size_up=...)` keeps it.
    mode: `"triangular"`, `"triangular2"` or `"exp_range"`.
    gamma: :math:`\gamma \in (0, 1]`, the per-step amplitude factor of `"exp_range"`.

  Returns:
    A `Cyclical` schedule.

  Raises:
    ValueError: if a value is negative or not finite, `min_value > max_value`, a step size is
      not a positive integer, :math:`U + D > 2^{31} - 1`, `mode` is unknown or `gamma` is
      outside :math:`(0, 1]`.

  Example:
    >>> s = lrjax.schedules.cyclic.cyclical(0.1, 1.0, step_size_up=2, mode="triangular2")
    >>> [round(float(s(t)), 4) for t in range(7)]
    [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55]
  """
  min_value = checks.lr_value("min_value", min_value)
  max_value = checks.lr_value("max_value", max_value)
  checks.not_longer("min_value", min_value, "max_value", max_value)
  step_size_up = checks.duration("step_size_up", step_size_up)
  if step_size_down is None:
    step_size_down = step_size_up
  step_size_down = checks.duration("step_size_down", step_size_down)
  fits_int32(step_size_up=step_size_up, step_size_down=step_size_down)
  return Cyclical(
    min_value=min_value,
    max_value=max_value,
    step_size_up=step_size_up,
    step_size_down=step_size_down,
    mode=checks.choice("mode", mode, CYCLICAL_MODES),
    gamma=checks.real("gamma", gamma, lo=0.0, hi=1.0, lo_open=True),
  )


ANNEAL_SHAPES = ("cos", "linear")


def onecycle_warmup(pct: jax.Array, total: jax.Array) -> jax.Array:
  """floor(pct * T) as int32, with products within float32 precision of an integer snapped to it.

  `pct` is stored as float32 (0.7 becomes 0.69999999), so a plain floor would give 6 for
  0.7 * 10; snapping gives the decimal product's floor (every two-decimal pct, T up to 2**24).
  """
  x = jnp.asarray(pct, jnp.float32) * jnp.asarray(total, jnp.float32)
  k = jnp.round(x)
  w = jnp.where(jnp.abs(x - k) <= 4.8e-7 * k, k, jnp.floor(x))
  return jnp.clip(w, 0, jnp.maximum(total - 1, 0).astype(jnp.float32)).astype(jnp.int32)


def onecycle_turn(pct: jax.Array, total: jax.Array, three_phase: bool) -> jax.Array:
  """The step W at which 1cycle's rate peaks (and its momentum bottoms out).

  With three phases W is also capped at T // 2, so 2W stays within `total_steps` (no int32
  overflow).
  """
  w = onecycle_warmup(pct, total)
  return jnp.minimum(w, total // 2) if three_phase else w


@schedule_class
class OneCycle(Schedule):
  peak_value: Any
  total_steps: Any
  pct_start: Any
  div_factor: Any
  final_div_factor: Any
  anneal: str = static_field()
  three_phase: bool = static_field()

  def _value(self, t):
    total = self.total_steps
    w = onecycle_turn(self.pct_start, total, self.three_phase)
    init = self.peak_value / self.div_factor
    low = init / self.final_div_factor
    shape = sin_squared_ramp if self.anneal == "cos" else None
    up = interpolate(init, self.peak_value, t, w, shape)
    if not self.three_phase:
      down = interpolate(self.peak_value, low, t - w, total - w, shape)
      return jnp.where(t < w, up, down)
    back = interpolate(self.peak_value, init, t - w, w, shape)
    # `interpolate` ends at `low` also when the last phase has no length (2 * w == total_steps).
    tail = interpolate(init, low, t - 2 * w, total - 2 * w, shape)
    return jnp.where(t < w, up, jnp.where(t < 2 * w, back, tail))


@register("one_cycle", OneCycle, example=dict(peak_value=0.1, total_steps=100))
def one_cycle(
  peak_value: Any,
  total_steps: Any,
  pct_start: Any = 0.3,
  div_factor: Any = 25.0,
  final_div_factor: Any = 1e4,
  anneal: str = "cos",
  three_phase: bool = False,
) -> OneCycle:
  r"""The 1cycle policy: warm up to the peak, then anneal far below the starting value.

  .. math::
    \eta(t) = \begin{cases}
      \operatorname{seg}(\eta_0 \to \eta_p,\ t / W) & t < W \\
      \operatorname{seg}(\eta_p \to \eta_{\min},\ (t - W) / (T - W)) & W \le t < T \\
      \eta_{\min} & t \ge T
    \end{cases}

  with :math:`\eta_p` = `peak_value`, :math:`T` = `total_steps`,
  :math:`W = \lfloor p\,T \rfloor` (:math:`p` = `pct_start`),
  :math:`\eta_0 = \eta_p / \text{div\_factor}` and
  :math:`\eta_{\min} = \eta_0 / \text{final\_div\_factor}`. A segment from :math:`a` to
  :math:`b` at progress :math:`x` is :math:`a + (b - a)\,\tfrac{1 - \cos(\pi x)}{2}` for
  `anneal="cos"` and :math:`a + (b - a)\,x` for `"linear"`. With `three_phase=True` the
  schedule goes up over :math:`[0, W]`, back down to :math:`\eta_0` over :math:`[W, 2W]`
  and on to :math:`\eta_{\min}` over :math:`[2W, T]`.

  This is optax's convention: the peak is at step :math:`W` and :math:`\eta_{\min}` is
  reached *at* :math:`T`, the same values as `optax.cosine_onecycle_schedule(T, peak,
  pct_start, div_factor, final_div_factor)`. PyTorch `OneCycleLR` ends each phase one step
  earlier: it peaks at :math:`pT - 1`, reaches :math:`\eta_{\min}` at :math:`T - 1` and
  raises past :math:`T`; its two-phase anneal equals this one shifted by one step
  (torch at :math:`t` = lrjax at :math:`t + 1` from :math:`pT - 1` on), and its warmup is one
  step shorter. That shift holds when :math:`pT` is whole; otherwise PyTorch's phases end at the
  fractional step :math:`pT - 1` and the values differ inside them (:math:`T = 57`,
  :math:`p = 0.25`: PyTorch peaks at 13.25, lrjax at step 14). With `three_phase=True`
  PyTorch's second phase ends at :math:`2pT - 2`, two steps before lrjax's :math:`2W`.
  PyTorch's `cycle_momentum=True` is the companion schedule `lrjax.one_cycle_momentum`.
  `optax.linear_onecycle_schedule` is a different three-phase shape (back to
  :math:`\eta_0` at `pct_final` :math:`\cdot T`, default 0.85, then to
  :math:`\eta_0 / \text{final\_div\_factor}`), not `anneal="linear"` here. :math:`W` is
  computed in float32 with products within float32 precision of an integer rounded to it,
  so `pct_start=0.29, total_steps=100` gives 29 (optax's float64 `int(0.29 * 100)` is 28);
  beyond :math:`2^{24}` steps :math:`W` can be off the exact floor by about
  :math:`T \cdot 2^{-23}` steps.

  Args:
    peak_value: :math:`\eta_p`, finite and >= 0.
    total_steps: :math:`T`, a positive integer.
    pct_start: :math:`p`, the fraction of :math:`T` spent warming up, in :math:`(0, 1)`
      (:math:`(0, 0.5)` with `three_phase`).
    div_factor: :math:`\eta_p / \eta_0 > 0`.
    final_div_factor: :math:`\eta_0 / \eta_{\min} > 0`.
    anneal: `"cos"` or `"linear"`, the shape of every segment.
    three_phase: go back to :math:`\eta_0` before the final anneal (PyTorch's shape).

  Returns:
    A `OneCycle` schedule.

  Raises:
    ValueError: if a value is negative or not finite, `total_steps` is not a positive
      integer, `pct_start` is out of range, a div factor is not positive, or `anneal` is
      unknown.

  Example:
    >>> s = lrjax.schedules.cyclic.one_cycle(1.0, total_steps=10, anneal="linear")
    >>> [round(float(s(t)), 6) for t in (0, 3, 10)]
    [0.04, 1.0, 4e-06]
  """
  three_phase = checks.flag("three_phase", three_phase)
  hi = 0.5 if three_phase else 1.0
  return OneCycle(
    peak_value=checks.lr_value("peak_value", peak_value),
    total_steps=checks.duration("total_steps", total_steps),
    pct_start=checks.real("pct_start", pct_start, lo=0.0, hi=hi, lo_open=True, hi_open=True),
    div_factor=checks.positive("div_factor", div_factor),
    final_div_factor=checks.positive("final_div_factor", final_div_factor),
    anneal=checks.choice("anneal", anneal, ANNEAL_SHAPES),
    three_phase=three_phase,
  )


__all__ = ["triangle", "cyclical", "one_cycle"]
