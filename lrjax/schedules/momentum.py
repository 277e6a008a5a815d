"""Momentum schedules that mirror a rate schedule: the companions of `one_cycle` and `cyclical`.

Smith's 1cycle and cyclical policies lower the momentum while the learning rate rises and raise it
again as the rate falls (arXiv 1803.09820). The values are momenta in [0, 1], for SGD's
`momentum` or Adam's `b1`; `optax.inject_hyperparams` takes a schedule for either, next to the
rate's. `t` is the 0-based optimizer update, as for the rate schedules, so a companion built
with its rate's durations turns exactly where the rate does.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.cyclic import (
  ANNEAL_SHAPES,
  Cyclical,
  cyclical,
  onecycle_turn,
)
from lrjax.schedules.formulas import interpolate, lerp, sin_squared_ramp


def _momenta(base_momentum: Any, max_momentum: Any) -> tuple[Any, Any]:
  base = checks.real("base_momentum", base_momentum, lo=0.0, hi=1.0)
  top = checks.real("max_momentum", max_momentum, lo=0.0, hi=1.0)
  # The arguments as given, so that the message shows 0.9 rather than its float32 0.8999999761.
  checks.not_longer("base_momentum", base_momentum, "max_momentum", max_momentum)
  return base, top


@schedule_class
class OneCycleMomentum(Schedule):
  total_steps: Any
  pct_start: Any
  base_momentum: Any
  max_momentum: Any
  anneal: str = static_field()
  three_phase: bool = static_field()

  def _value(self, t):
    total = self.total_steps
    w = onecycle_turn(self.pct_start, total, self.three_phase)  # where `one_cycle` peaks
    top, base = self.max_momentum, self.base_momentum
    shape = sin_squared_ramp if self.anneal == "cos" else None
    down = interpolate(top, base, t, w, shape)
    # Three phases climb back over W steps and then hold max_momentum while the rate anneals.
    up = interpolate(base, top, t - w, w if self.three_phase else total - w, shape)
    return jnp.where(t < w, down, up)


@register("one_cycle_momentum", OneCycleMomentum, example=dict(total_steps=100))
def one_cycle_momentum(
  total_steps: Any,
  pct_start: Any = 0.3,
  base_momentum: Any = 0.85,
  max_momentum: Any = 0.95,
  anneal: str = "cos",
  three_phase: bool = False,
) -> OneCycleMomentum:
  r"""The momentum of the 1cycle policy: down while `one_cycle` warms up, back up as it anneals.

  .. math::
    m(t) = \begin{cases}
      \operatorname{seg}(m_{\max} \to m_b,\ t / W) & t < W \\
      \operatorname{seg}(m_b \to m_{\max},\ (t - W) / (T - W)) & W \le t < T \\
      m_{\max} & t \ge T
    \end{cases}

  with :math:`m_b` = `base_momentum`, :math:`m_{\max}` = `max_momentum`,
  :math:`T` = `total_steps` and :math:`W = \lfloor p\,T \rfloor` (:math:`p` = `pct_start`)
  computed exactly as `one_cycle` computes it, so that with the same :math:`T`, :math:`p`,
  `anneal` and `three_phase` the momentum is lowest exactly where the rate peaks. A segment
  is `one_cycle`'s: :math:`a + (b - a)\,\tfrac{1 - \cos(\pi x)}{2}` for `anneal="cos"`,
  :math:`a + (b - a)\,x` for `"linear"`. With `three_phase=True` (PyTorch's shape) the
  momentum goes down over :math:`[0, W]`, back up to :math:`m_{\max}` over :math:`[W, 2W]`
  and stays there while the rate anneals to its minimum. The value is exactly
  :math:`m_{\max}` at :math:`t = 0`, :math:`m_b` at :math:`W` and :math:`m_{\max}` from
  :math:`T` on (from :math:`2W` with three phases). :math:`pT < 1` gives :math:`W = 0`: the
  schedule starts at its turn, as `one_cycle` starts at its peak.

  PyTorch `OneCycleLR(..., cycle_momentum=True)` follows the same phases, each ending one step
  earlier, as for the rate: its momentum at :math:`t \le T - 1` is this formula with
  :math:`W` and :math:`T` replaced by :math:`pT - 1` and :math:`T - 1` (and :math:`2W` by
  :math:`2pT - 2`). Measured on torch 2.13: when :math:`pT` is whole (and at least 2),
  PyTorch's momentum at every step :math:`t < T` is
  `one_cycle_momentum(T - 1, (pT - 1) / (T - 1), ...)` at :math:`t`, and in the two-phase
  anneal it is this schedule one step later (torch at :math:`t` = lrjax at :math:`t + 1` for
  :math:`pT - 1 \le t \le T - 1`). At :math:`t = T` PyTorch carries its last phase past its
  end (0.949950 for the defaults with cos, 0.951429 with linear: above :math:`m_{\max}`) and
  it raises past :math:`T`; here the momentum stays :math:`m_{\max}`. When :math:`pT` is not
  whole, PyTorch keeps the fractional phase end :math:`pT - 1`, which no step falls on, where
  lrjax floors (:math:`W = \lfloor pT \rfloor`), and the step relations above hold only
  approximately: for :math:`T = 57`, :math:`p = 0.25` (:math:`pT = 14.25`, :math:`W = 14`)
  PyTorch's lowest momentum is 0.850076 (at step 14), not :math:`m_b`; over the warmup
  (:math:`t < W`) it differs from this schedule at the same step by up to 5.0e-3, and in the
  anneal (:math:`W - 1 \le t \le T - 1`) from this schedule at :math:`t + 1` by up to 5.3e-4.

  Args:
    total_steps: :math:`T`, a positive integer (the rate's `total_steps`).
    pct_start: :math:`p`, the fraction of :math:`T` spent warming up, in :math:`(0, 1)`
      (:math:`(0, 0.5)` with `three_phase`).
    base_momentum: :math:`m_b`, the momentum at the rate's peak, in :math:`[0, 1]`.
    max_momentum: :math:`m_{\max}`, the momentum at the start and the end, in
      :math:`[m_b, 1]`.
    anneal: `"cos"` or `"linear"`, the shape of every segment.
    three_phase: come back to :math:`m_{\max}` at :math:`2W` and stay there (PyTorch's shape).

  Returns:
    A `OneCycleMomentum` schedule.

  Raises:
    ValueError: if `total_steps` is not a positive integer, `pct_start` is out of range, a
      momentum is not finite or outside :math:`[0, 1]`, `base_momentum > max_momentum`, or
      `anneal` is unknown.

  Example:
    >>> s = lrjax.schedules.momentum.one_cycle_momentum(10, anneal="linear")
    >>> [round(float(s(t)), 4) for t in (0, 1, 3, 6, 10, 11)]
    [0.95, 0.9167, 0.85, 0.8929, 0.95, 0.95]
  """
  three_phase = checks.flag("three_phase", three_phase)
  hi = 0.5 if three_phase else 1.0
  base, top = _momenta(base_momentum, max_momentum)
  return OneCycleMomentum(
    total_steps=checks.duration("total_steps", total_steps),
    pct_start=checks.real("pct_start", pct_start, lo=0.0, hi=hi, lo_open=True, hi_open=True),
    base_momentum=base,
    max_momentum=top,
    anneal=checks.choice("anneal", anneal, ANNEAL_SHAPES),
    three_phase=three_phase,
  )


_ZERO, _ONE = np.float32(0.0), np.float32(1.0)


@schedule_class
class CyclicalMomentum(Schedule):
  base_momentum: Any
  max_momentum: Any
  step_size_up: Any
  step_size_down: Any
  mode: str = static_field()
  gamma: Any

  def _wave(self) -> Cyclical:
    """`cyclical`'s wave from 0 to 1 on the same cycle: the fraction the momentum falls by."""
    return Cyclical(
      min_value=_ZERO,
      max_value=_ONE,
      step_size_up=self.step_size_up,
      step_size_down=self.step_size_down,
      mode=self.mode,
      gamma=self.gamma,
    )

  def _value(self, t):
    return lerp(self.max_momentum, self.base_momentum, self._wave()._value(t))

  def _fold(self, step: np.ndarray) -> np.ndarray:
    return self._wave()._fold(step)

  def _cycle_ends(self, total_steps):
    return self._wave()._cycle_ends(total_steps)


@register(
  "cyclical_momentum",
  CyclicalMomentum,
  example=dict(base_momentum=0.85, max_momentum=0.95, step_size_up=25),
)
def cyclical_momentum(
  base_momentum: Any,
  max_momentum: Any,
  step_size_up: Any,
  step_size_down: Any = None,
  mode: str = "triangular",
  gamma: Any = 1.0,
) -> CyclicalMomentum:
  r"""Smith's cyclical momentum: `cyclical`'s triangle wave upside down, between two momenta.

  .. math::
    m(t) = m_{\max} - (m_{\max} - m_b)\, s(r)\, a(t), \quad
    r = t \bmod (U + D), \quad
    s(r) = \begin{cases} r / U & r < U \\ (U + D - r) / D & r \ge U \end{cases}

  with :math:`m_b` = `base_momentum`, :math:`m_{\max}` = `max_momentum`,
  :math:`U` = `step_size_up`, :math:`D` = `step_size_down` and the amplitude :math:`a(t)` of
  `cyclical`'s `mode`: `"triangular"` :math:`1`; `"triangular2"`
  :math:`2^{-\lfloor t / (U + D) \rfloor}`; `"exp_range"` :math:`\gamma^t`. Each cycle starts
  at :math:`m_{\max}` (exactly) and is lowest at step :math:`U` of the cycle, where
  `cyclical(min_value, max_value, U, D, mode, gamma)` peaks: exactly :math:`m_b` in every
  cycle of `"triangular"` and in the first of `"triangular2"`. The decaying modes shrink the
  momentum's swing as they shrink the rate's, so the momentum settles at :math:`m_{\max}` as
  the rate settles at its minimum.

  Same values as the momentum PyTorch `CyclicLR(optimizer, base_lr, max_lr, U, D, mode,
  gamma, cycle_momentum=True, base_momentum=m_b, max_momentum=m_max)` sets at every step,
  with the same step convention as the rate (no shift): PyTorch scales the momentum's swing
  :math:`m_{\max} - m_b` by the same factor as the rate's (halved every cycle for
  `"triangular2"`, :math:`\gamma^t` for `"exp_range"`) and subtracts it from
  :math:`m_{\max}`. As in `cyclical`, `gamma` must be in :math:`(0, 1]`, and a concrete step
  past :math:`2^{31} - 1` keeps its phase.

  Args:
    base_momentum: :math:`m_b`, the momentum at the rate's peak, in :math:`[0, 1]`.
    max_momentum: :math:`m_{\max}`, the momentum at each cycle start, in :math:`[m_b, 1]`.
    step_size_up: :math:`U`, steps from :math:`m_{\max}` down to the lowest momentum (a
      positive integer).
    step_size_down: :math:`D`, steps back up (a positive integer); None means :math:`U`, and
      that number is stored.
    mode: `"triangular"`, `"triangular2"` or `"exp_range"`.
    gamma: :math:`\gamma \in (0, 1]`, the per-step amplitude factor of `"exp_range"`.

  Returns:
    A `CyclicalMomentum` schedule.

  Raises:
    ValueError: if a momentum is not finite or outside :math:`[0, 1]`,
      `base_momentum > max_momentum`, a step size is not a positive integer,
      :math:`U + D > 2^{31} - 1`, `mode` is unknown or `gamma` is outside :math:`(0, 1]`.

  Example:
    >>> s = lrjax.schedules.momentum.cyclical_momentum(0.8, 0.9, 2, mode="triangular2")
    >>> [round(float(s(t)), 4) for t in range(7)]
    [0.9, 0.85, 0.8, 0.85, 0.9, 0.875, 0.85]
  """
  base, top = _momenta(base_momentum, max_momentum)
  # `cyclical` validates the cycle; its unit wave is the fraction the momentum falls by.
  wave = cyclical(0.0, 1.0, step_size_up, step_size_down, mode, gamma)
  return CyclicalMomentum(
    base_momentum=base,
    max_momentum=top,
    step_size_up=wave.step_size_up,
    step_size_down=wave.step_size_down,
    mode=wave.mode,
    gamma=wave.gamma,
  )


__all__ = ["one_cycle_momentum", "cyclical_momentum"]
