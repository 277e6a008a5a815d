"""Piecewise schedules: constant pieces (absolute values or torch's multi-step) and interpolation.

Boundaries are 1-D int32 leaves, so they can be vmapped over like any other hyperparameter; their
number (the array's length) is part of the compiled program's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from lrjax.schedules import checks
from lrjax.schedules.base import Schedule, schedule_class, static_field
from lrjax.schedules.config import register
from lrjax.schedules.formulas import interpolate, safe_pow, sin_squared_ramp


def _lr_values(name: str, values: Any) -> Any:
  v = checks.lr_value(name, values)
  if jnp.ndim(v) != 1 or jnp.shape(v)[0] < 1:
    raise ValueError(f"{name} must be a non-empty 1-D sequence of values, got {values!r}")
  return v


@schedule_class
class PiecewiseConstant(Schedule):
  boundaries: Any
  values: Any

  def _value(self, t):
    idx = jnp.searchsorted(self.boundaries, t, side="right")
    return jnp.take(self.values, idx)


@register(
  "piecewise_constant",
  PiecewiseConstant,
  example=dict(boundaries=[30, 60, 90], values=[0.1, 0.03, 0.01, 0.003]),
)
def piecewise_constant(boundaries: Any, values: Any) -> PiecewiseConstant:
  r"""A step function through absolute values, switching *at* each boundary.

  .. math:: \eta(t) = v_i \quad\text{for } b_{i-1} \le t < b_i \quad (b_{-1} = 0, b_n = \infty)

  `values` has one more entry than `boundaries`: :math:`v_0` before :math:`b_0`, :math:`v_n`
  from :math:`b_{n-1}` on. Same values as `optax.piecewise_constant_schedule` (whose scales are
  cumulative multipliers: pass `values = init * cumprod([1] + scales)`), PyTorch `MultiStepLR`
  and big_vision `"stair"`. Keras `PiecewiseConstantDecay` switches one step later
  (:math:`v_i` while :math:`t \le b_i`), timm `MultiStepLRScheduler` one step earlier
  (at :math:`t = b_i - 1`): shift the boundaries by +1 or -1 to reproduce them.

  Args:
    boundaries: strictly increasing, non-negative integer steps (may be empty: a constant).
    values: `len(boundaries) + 1` learning rates, each finite and >= 0.

  Raises:
    ValueError: for unsorted, repeated, negative or non-integer boundaries, a negative or
      non-finite value, or a length mismatch.
    TypeError: for optax's positional call `(init_value, {boundary: scale})`.

  Example:
    >>> s = lrjax.piecewise_constant([5], [1.0, 0.1])
    >>> [float(s(t)) for t in (4, 5)]
    [1.0, 0.10000000149011612]
  """
  if isinstance(values, Mapping):
    raise TypeError(
      "piecewise_constant takes (boundaries, values), not optax's (init_value, "
      f"boundaries_and_scales): values must be a sequence, got {values!r}"
    )
  b = checks.sorted_boundaries("boundaries", boundaries, strict=True)
  v = _lr_values("values", values)
  checks.same_length(("boundaries", "values"), b, v, offset=1)
  return PiecewiseConstant(boundaries=b, values=v)


@schedule_class
class MultiStep(Schedule):
  init_value: Any
  milestones: Any
  gamma: Any

  def _value(self, t):
    drops = jnp.searchsorted(self.milestones, t, side="right")
    return self.init_value * safe_pow(self.gamma, drops.astype(jnp.float32))


@register("multi_step", MultiStep, example=dict(init_value=0.1, milestones=[30, 60, 90], gamma=0.2))
def multi_step(init_value: Any, milestones: Any, gamma: Any = 0.1) -> MultiStep:
  r"""Multiply by `gamma` at each milestone (PyTorch `MultiStepLR`).

  .. math:: \eta(t) = \eta_0 \cdot \gamma^{\,|\{i : m_i \le t\}|}

  The drop happens *at* step :math:`m_i`; a milestone listed twice drops twice, as in PyTorch.
  Unlike PyTorch, unsorted milestones raise rather than being sorted silently, and `gamma` must
  be positive (as `step_decay`'s `drop_factor`). Keras has no multi-step schedule; timm
  `MultiStepLRScheduler` drops one step earlier (at :math:`m_i - 1`).

  Args:
    init_value: :math:`\eta_0`, finite and >= 0.
    milestones: sorted, non-negative integer steps (repeats allowed; may be empty).
    gamma: :math:`\gamma > 0`, the factor applied at each milestone (default 0.1).

  Raises:
    ValueError: for unsorted, negative or non-integer milestones, a non-positive `gamma`, or a
      negative or non-finite `init_value`.

  Example:
    >>> s = lrjax.multi_step(1.0, [3, 6], gamma=0.5)
    >>> [float(s(t)) for t in (0, 3, 6)]
    [1.0, 0.5, 0.25]
  """
  return MultiStep(
    init_value=checks.lr_value("init_value", init_value),
    milestones=checks.sorted_boundaries("milestones", milestones),
    gamma=checks.positive("gamma", gamma),
  )


@schedule_class
class PiecewiseLinear(Schedule):
  boundaries: Any
  values: Any
  interpolation: str = static_field()

  def _value(self, t):
    b, v = self.boundaries, self.values
    n = b.shape[0]
    i = jnp.clip(jnp.searchsorted(b, t, side="right") - 1, 0, max(n - 2, 0))
    j = jnp.minimum(i + 1, n - 1)
    b0 = jnp.take(b, i)
    # t - b0 cannot overflow (both are non-negative int32); before b[0] it clips to 0.
    since, span = jnp.maximum(t - b0, 0), jnp.take(b, j) - b0
    shape = sin_squared_ramp if self.interpolation == "cosine" else None
    return interpolate(jnp.take(v, i), jnp.take(v, j), since, span, shape)


@register(
  "piecewise_linear",
  PiecewiseLinear,
  example=dict(boundaries=[0, 10, 100], values=[0.0, 0.1, 0.0]),
)
def piecewise_linear(
  boundaries: Any, values: Any, interpolation: str = "linear"
) -> PiecewiseLinear:
  r"""Interpolation through the points :math:`(b_i, v_i)`, constant outside them.

  .. math::
    \eta(t) = v_i + (v_{i+1} - v_i)\, w\!\left(\frac{t - b_i}{b_{i+1} - b_i}\right)
    \quad\text{for } b_i \le t < b_{i+1}

  with :math:`w(x) = x` (`"linear"`) or :math:`w(x) = (1 - \cos \pi x)/2` (`"cosine"`);
  :math:`\eta(t) = v_0` for :math:`t \le b_0` and :math:`v_{n-1}` for :math:`t \ge b_{n-1}`.
  Each point's value is hit exactly. A warmup then linear decay (the BERT triangle) is
  `piecewise_linear([0, W, T], [0, peak, 0])`.

  Unlike `optax.piecewise_interpolate_schedule`, the values are absolute (optax interpolates
  between cumulative products of scales) and the first point need not be step 0 (optax always
  starts at `init_value` at step 0): optax's `(init, {b_i: s_i})` equals
  `piecewise_linear([0, b_1, ...], init * cumprod([1, s_1, ...]))`.

  Args:
    boundaries: strictly increasing, non-negative integer steps; at least one.
    values: the learning rate at each boundary (same length), each finite and >= 0.
    interpolation: `"linear"` or `"cosine"` (a half-cosine between neighbouring points).

  Raises:
    ValueError: for unsorted, repeated, negative or non-integer boundaries, no boundaries, a
      negative or non-finite value, a length mismatch, or an unknown `interpolation`.

  Example:
    >>> s = lrjax.piecewise_linear([0, 10, 100], [0.0, 1.0, 0.0])
    >>> [float(s(t)) for t in (5, 10, 55, 200)]
    [0.5, 1.0, 0.5, 0.0]
  """
  interpolation = checks.choice("interpolation", interpolation, ("linear", "cosine"))
  b = checks.sorted_boundaries("boundaries", boundaries, strict=True)
  if jnp.shape(b)[0] < 1:
    raise ValueError(f"boundaries must have at least one entry, got {boundaries!r}")
  v = _lr_values("values", values)
  checks.same_length(("boundaries", "values"), b, v)
  return PiecewiseLinear(boundaries=b, values=v, interpolation=interpolation)


__all__ = ["multi_step", "piecewise_constant", "piecewise_linear"]
