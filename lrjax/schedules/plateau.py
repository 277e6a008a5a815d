"""Reduce-on-plateau as a pure rule: `(state, metric) -> (state, learning rate)`.

Unlike the step schedules, the learning rate here depends on the metrics seen so far, so the rule
carries a small state. Everything is jittable and works inside `lax.scan`; the rule itself is a
pytree whose numeric hyperparameters are leaves (vmap over `factor`, `patience`, ...), with
`mode` and `threshold_mode` static.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lrjax.schedules import checks
from lrjax.schedules.base import config_value, register_pytree, static_field
from lrjax.schedules.steps import INT32_MAX

_NUMERIC = ("init_value", "factor", "patience", "cooldown", "min_value", "threshold")
_STATIC = ("mode", "threshold_mode")


class PlateauState(NamedTuple):
  """The rule's state (a pytree); `lr` is the learning rate to use until the next evaluation.

  Attributes:
    lr: float32, the learning rate.
    best: float32, the best metric so far (+inf in mode "min", -inf in "max" at first).
    num_bad: int32, consecutive counted evaluations without improvement.
    cooldown_left: int32, evaluations still ignored after the last reduction.
    count: int32, evaluations seen (saturates at 2**31 - 1).
  """

  lr: jax.Array  # float32
  best: jax.Array  # float32 best metric so far (+inf in mode "min", -inf in "max" at first)
  num_bad: jax.Array  # int32 consecutive counted evaluations without improvement
  cooldown_left: jax.Array  # int32 evaluations still ignored after the last reduction
  count: jax.Array  # int32 evaluations seen (saturates at 2**31 - 1)


@register_pytree
@dataclasses.dataclass(frozen=True, eq=False)
class ReduceOnPlateau:
  """The reduce-on-plateau rule, a pytree: build it with `reduce_on_plateau`, which states it.

  Attributes:
    init_value: the learning rate before any reduction.
    factor: the factor of a reduction, in (0, 1).
    patience: evaluations without improvement before a reduction.
    cooldown: evaluations ignored after each reduction.
    min_value: the lowest learning rate a reduction gives.
    threshold: how much better than the best a metric must be to improve.
    mode: "min" or "max" (static).
    threshold_mode: "rel" or "abs" (static).
  """

  init_value: Any
  factor: Any
  patience: Any
  cooldown: Any
  min_value: Any
  threshold: Any
  mode: str = static_field()
  threshold_mode: str = static_field()

  def init(self) -> PlateauState:
    """The state before any evaluation: `init_value`, and the worst possible best metric."""
    worst = jnp.inf if self.mode == "min" else -jnp.inf
    zero = jnp.zeros((), jnp.int32)
    return PlateauState(
      lr=jnp.asarray(self.init_value, jnp.float32),
      best=jnp.full(jnp.shape(self.init_value), worst, jnp.float32),
      num_bad=zero,
      cooldown_left=zero,
      count=zero,
    )

  def improved(self, metric: jax.Array, best: jax.Array) -> jax.Array:
    """Whether `metric` beats `best` by the threshold (False for a NaN metric).

    Args:
      metric: the metric of an evaluation.
      best: the best metric so far.

    Returns:
      A boolean array, of the shape `metric` and `best` broadcast to.
    """
    thr = self.threshold
    if self.mode == "min":
      ref = best * (1.0 - thr) if self.threshold_mode == "rel" else best - thr
      return metric < ref
    ref = best * (1.0 + thr) if self.threshold_mode == "rel" else best + thr
    return metric > ref

  def update(self, state: PlateauState, metric: Any) -> tuple[PlateauState, jax.Array]:
    """Feeds one evaluation of the metric; returns the new state and learning rate.

    Pure and jittable: call it inside `jax.jit` or `lax.scan`.

    Args:
      state: the state after the previous evaluation (`init()` at first).
      metric: this evaluation's metric (a scalar, or a batch under vmap).

    Returns:
      (the new state, the learning rate until the next evaluation).

    Example:
      >>> import jax
      >>> rule = lrjax.reduce_on_plateau(0.1, factor=0.5, patience=2)
      >>> update, state, lrs = jax.jit(rule.update), rule.init(), []
      >>> for loss in [1.0, 0.9, 0.95, 0.93, 0.91]:
      ...   state, lr = update(state, loss)
      ...   lrs.append(round(float(lr), 4))
      >>> lrs
      [0.1, 0.1, 0.1, 0.05, 0.05]
    """
    m = jnp.asarray(metric, jnp.float32)
    better = self.improved(m, state.best)
    best = jnp.where(better, m, state.best)
    in_cooldown = state.cooldown_left > 0
    # num_bad < patience <= INT32_MAX before the increment, so it cannot overflow.
    num_bad = jnp.where(better | in_cooldown, 0, state.num_bad + 1)
    reduce = num_bad >= self.patience
    lr = jnp.where(reduce, jnp.maximum(state.lr * self.factor, self.min_value), state.lr)
    new = PlateauState(
      lr=lr.astype(jnp.float32),
      best=best,
      num_bad=jnp.where(reduce, 0, num_bad).astype(jnp.int32),
      cooldown_left=jnp.where(
        reduce, self.cooldown, jnp.maximum(state.cooldown_left - 1, 0)
      ).astype(jnp.int32),
      count=jnp.minimum(state.count, INT32_MAX - 1) + 1,
    )
    return new, new.lr

  def to_config(self) -> dict[str, Any]:
    """A JSON-serialisable dict that `plateau_from_config` turns back into an equal rule."""
    out: dict[str, Any] = {"name": "reduce_on_plateau"}
    for key in _NUMERIC:
      where = f"reduce_on_plateau.{key}"
      value = config_value(where, getattr(self, key))
      if isinstance(value, list):
        raise ValueError(f"{where} is a batch of values and has no config value")
      out[key] = value
    return {**out, "mode": self.mode, "threshold_mode": self.threshold_mode}

  def __eq__(self, other: object) -> bool:
    if type(self) is not type(other):
      return NotImplemented
    try:
      return self.to_config() == other.to_config()
    except ValueError:  # traced or batched leaves have no value to compare
      return NotImplemented

  def __hash__(self) -> int:
    try:
      return hash(tuple(self.to_config().items()))
    except ValueError:  # traced or batched leaves: compares by identity, so hash by identity
      return object.__hash__(self)

  def __repr__(self) -> str:
    try:
      cfg = self.to_config()
    except ValueError:  # traced or batched leaves
      return super().__repr__()
    del cfg["name"]
    return f"ReduceOnPlateau({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


def reduce_on_plateau(
  init_value: Any,
  *,
  factor: Any = 0.1,
  patience: Any = 10,
  cooldown: Any = 0,
  min_value: Any = 0.0,
  threshold: Any = 1e-4,
  threshold_mode: str = "rel",
  mode: str = "min",
) -> ReduceOnPlateau:
  r"""Multiplies the learning rate by `factor` when a metric stops improving.

  Call `rule.update(state, metric)` once per evaluation (an epoch's validation loss, say); it
  returns the new state and the learning rate to use until the next evaluation::

    rule = lrjax.reduce_on_plateau(0.1, factor=0.5, patience=5)
    state = rule.init()
    state, lr = rule.update(state, val_loss)   # pure: fine inside jit and lax.scan

  An evaluation *improves* when, for `mode="min"`,

  .. math:: m < b\,(1 - \theta) \;\; (\text{rel}) \qquad m < b - \theta \;\; (\text{abs})

  with :math:`b` the best metric so far (initially :math:`+\infty`) and :math:`\theta` =
  `threshold` (`mode="max"` mirrors this: :math:`m > b(1 + \theta)`, :math:`m > b + \theta`).
  A NaN metric never improves. Every evaluation that does not improve adds one to a counter and
  an improvement resets it; when the counter **reaches** `patience` the learning rate becomes

  .. math:: \eta \leftarrow \max(\eta \cdot f, \eta_{\min})

  the counter restarts at 0, and the next `cooldown` evaluations are not counted.

  Arguments after `init_value` are keyword-only: `optax.contrib.reduce_on_plateau`, a gradient
  transformation that scales updates, takes `factor` and `patience` as its first positional
  arguments.

  Conventions: with a constant metric, `factor=0.5`, `patience=2` the learning rates returned
  by the first eight updates are `[1, 1, .5, .5, .25, .25, .125, .125]` (the first
  evaluation always improves on :math:`\pm\infty`), as `optax.contrib.reduce_on_plateau` and
  Keras `ReduceLROnPlateau` (which both reduce when the count reaches `patience`). PyTorch's
  `ReduceLROnPlateau` reduces when the count *exceeds* `patience`: PyTorch with patience
  :math:`p` and cooldown :math:`c` gives exactly lrjax with patience :math:`p + 1` and cooldown
  :math:`c` (`[1, 1, 1, .5, .5, .5, .25, .25]` for PyTorch's `patience=2`). Cooldown follows
  optax and PyTorch; Keras decrements its cooldown counter before testing it and so ignores one
  evaluation fewer. Relative thresholds use PyTorch's formula (`min_delta` in Keras is
  absolute: use `threshold_mode="abs"`); as in PyTorch, a relative threshold on a negative metric
  asks for less than a :math:`\theta` fraction of improvement. Metrics are compared in float32
  (PyTorch compares Python floats, float64), so a metric that ties the threshold exactly in
  decimal can fall on the other side: after 0.85, a 0.84 with an absolute threshold of 0.01
  improves here (in float32, 0.84 < 0.85 - 0.01) and not in PyTorch (in float64 it is equal).

  Args:
    init_value: the learning rate before any reduction, finite and >= 0.
    factor: :math:`f`, in (0, 1).
    patience: evaluations without improvement before a reduction, an integer >= 1.
    cooldown: evaluations ignored after each reduction, an integer >= 0.
    min_value: :math:`\eta_{\min}`, finite, >= 0 and <= `init_value`.
    threshold: :math:`\theta >= 0`; below 1 when `threshold_mode="rel"`.
    threshold_mode: "rel" or "abs".
    mode: "min" (a loss) or "max" (an accuracy).

  Returns:
    A `ReduceOnPlateau` with `init()` and `update(state, metric)`.

  Raises:
    ValueError: for a value out of its range above or an unknown `mode` or `threshold_mode`.
  """
  mode = checks.choice("mode", mode, ("min", "max"))
  threshold_mode = checks.choice("threshold_mode", threshold_mode, ("rel", "abs"))
  init_value = checks.lr_value("init_value", init_value)
  min_value = checks.lr_value("min_value", min_value)
  checks.not_longer("min_value", min_value, "init_value", init_value)
  if threshold_mode == "rel":
    threshold = checks.real("threshold", threshold, lo=0.0, hi=1.0, hi_open=True)
  else:
    threshold = checks.non_negative("threshold", threshold)
  return ReduceOnPlateau(
    init_value=init_value,
    factor=checks.real("factor", factor, lo=0.0, hi=1.0, lo_open=True, hi_open=True),
    patience=checks.duration("patience", patience),
    cooldown=checks.steps("cooldown", cooldown),
    min_value=min_value,
    threshold=threshold,
    mode=mode,
    threshold_mode=threshold_mode,
  )


def plateau_from_config(config: Mapping[str, Any]) -> ReduceOnPlateau:
  """Builds a rule from `ReduceOnPlateau.to_config()`'s dict, validating it again.

  Args:
    config: `{"name": "reduce_on_plateau", "init_value": ..., ...}` ("name" may be left out);
      keys left out take `reduce_on_plateau`'s defaults.

  Returns:
    The rule, equal to the one the config came from.

  Raises:
    ValueError: for a config that is not a dict, has another name or an unknown key, lacks
      "init_value", or holds a value `reduce_on_plateau` refuses.

  Example:
    >>> rule = lrjax.reduce_on_plateau(0.1, factor=0.5, patience=2)
    >>> lrjax.plateau_from_config(rule.to_config()) == rule
    True
  """
  if not isinstance(config, Mapping):
    raise ValueError(f"a reduce_on_plateau config must be a dict, got {config!r}")
  kwargs = dict(config)
  name = kwargs.pop("name", "reduce_on_plateau")
  if name != "reduce_on_plateau":
    raise ValueError(f"config name must be 'reduce_on_plateau', got {name!r}")
  unknown = sorted(set(kwargs) - set(_NUMERIC) - set(_STATIC))
  if unknown:
    raise ValueError(f"unknown key {unknown[0]!r} in a reduce_on_plateau config")
  if "init_value" not in kwargs:
    raise ValueError("the reduce_on_plateau config is missing the key 'init_value'")
  return reduce_on_plateau(**kwargs)


def set_learning_rate(opt_state: Any, lr: Any, name: str = "learning_rate") -> Any:
  """Sets the hyperparameter `name` in an `optax.inject_hyperparams` state (nested or not).

  Build the optimizer with a number for the learning rate
  (`optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)`): a schedule given there would
  overwrite the value at the next update. The value keeps the stored dtype, so the state's
  structure and types do not change inside `lax.scan` or a jitted step.

  Args:
    opt_state: the optimizer state, holding one or several `inject_hyperparams` states.
    lr: the new value (a number or an array, cast to the stored value's dtype and shape).
    name: the hyperparameter to set.

  Returns:
    A new state with the value set wherever the hyperparameter is injected.

  Raises:
    ValueError: if no injected hyperparameter called `name` is found.

  Example:
    >>> import optax
    >>> optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    >>> state = lrjax.set_learning_rate(optimizer.init({"w": jnp.zeros(3)}), 0.05)
    >>> state.hyperparams["learning_rate"]
    Array(0.05, dtype=float32)
  """
  found = []

  def is_injected(x: Any) -> bool:
    return isinstance(getattr(x, "hyperparams", None), dict) and name in x.hyperparams

  def put(x: Any) -> Any:
    if not is_injected(x):
      return x
    found.append(True)
    old = x.hyperparams[name]
    new = jnp.broadcast_to(jnp.asarray(lr, jnp.result_type(old)), jnp.shape(old))
    return x._replace(hyperparams={**x.hyperparams, name: new})

  out = jax.tree.map(put, opt_state, is_leaf=is_injected)
  if not found:
    raise ValueError(
      f"opt_state has no injected hyperparameter {name!r}: build the optimizer with "
      "optax.inject_hyperparams"
    )
  return out


__all__ = [
  "PlateauState",
  "ReduceOnPlateau",
  "plateau_from_config",
  "reduce_on_plateau",
  "set_learning_rate",
]
