"""Reduce-on-plateau as an optax gradient transformation: a factor on any optimizer's updates.

`lrjax.reduce_on_plateau` is a rule that returns a learning rate; `plateau` is its counterpart in
an optax chain: placed after an optimizer, it multiplies the updates by a scale that falls when
the metric passed as `value=` stops improving, whatever schedule the optimizer follows (a warmup,
a cosine). The settings are plain Python values (`plateau_config` checks them and returns them as
a JSON-able dict); the state is a pytree of arrays, fine inside `jax.jit` and `lax.scan`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax.schedules import checks


class PlateauScaleState(NamedTuple):
  """The state of `plateau` (a pytree); `scale` is the factor applied to the latest update.

  The first six fields are those of `optax.contrib.ReduceLROnPlateauState`, with the same
  meaning and dtypes.

  Attributes:
    scale: the factor, in the lowest dtype of the parameters (1 at first).
    best_value: the best tested metric so far (+inf in mode "min", -inf in "max" at first).
    plateau_count: int32, consecutive counted evaluations without improvement.
    cooldown_count: int32, evaluations still not counted after the last reduction.
    count: int32, values in the current accumulation block.
    avg_value: the mean of the values in the current accumulation block.
    step: int32, updates seen (saturates at 2**31 - 1); the warmup ends when it reaches
      `warmup_steps`.
    recent: the last `window` block means, a ring buffer (zeros where none is yet).
    filled: int32, how many entries of `recent` hold a block mean (at most `window`).
    position: int32, the entry of `recent` the next block mean goes to.
    good_count: int32, consecutive counted evaluations with an improvement.
  """

  scale: jax.Array
  best_value: jax.Array
  plateau_count: jax.Array
  cooldown_count: jax.Array
  count: jax.Array
  avg_value: jax.Array
  step: jax.Array
  recent: jax.Array
  filled: jax.Array
  position: jax.Array
  good_count: jax.Array


def plateau(
  factor: float = 0.1,
  patience: int = 10,
  rtol: float = 1e-4,
  atol: float = 0.0,
  cooldown: int = 0,
  accumulation_size: int = 1,
  min_scale: float = 0.0,
  *,
  mode: str = "min",
  warmup_steps: int = 0,
  window: int = 1,
  increase_factor: float | None = None,
  increase_patience: int | None = None,
  max_scale: float = 1.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Scales the updates by a factor that falls when the metric passed as `value=` plateaus.

  Chain it after any optimizer and pass the metric to every update::

    tx = optax.chain(optax.adamw(lrjax.warmup_cosine_decay(0.0, 1e-3, 500, 10_000)),
                     lrjax.plateau(0.5, 5, warmup_steps=500))
    updates, opt_state = tx.update(grads, opt_state, params, value=val_loss)

  The updates are multiplied by the scale :math:`s` (1 at first). An update after the first
  `warmup_steps` that brings a new value adds it to an accumulation block; once
  `accumulation_size` values are in (optax's block mean; 1: each value on its own), the block
  mean enters a window of the last `window` block means, and their average :math:`m` (over
  fewer while fewer are in, as GreedyLR's smoothing) is one *evaluation*. It improves when

  .. math::
    m < (1 - r)\,b - a \;\; (\text{mode "min"}) \qquad m > (1 + r)\,b + a \;\; (\text{"max"})

  with :math:`b` the best :math:`m` so far (:math:`+\infty` in mode "min", :math:`-\infty` in
  "max", at first), :math:`r` = `rtol` and :math:`a` = `atol`; a NaN never improves (and stays
  in the window's average for `window` evaluations). An evaluation that does not improve adds
  one to a count and an improvement resets it; when the count **reaches** `patience`

  .. math:: s \leftarrow \max(s \cdot f,\; s_{\min})

  with :math:`f` = `factor`, the count restarts at 0 and the next `cooldown` evaluations are
  not counted (the best value still follows them). With `increase_factor` :math:`g` set,
  `increase_patience` consecutive improvements (`patience` when None) give
  :math:`s \leftarrow \min(s \cdot g, s_{\max})` and restart their count; evaluations in a
  cooldown do not count towards it either.

  *Warmup*: the first `warmup_steps` updates (all updates, new value or not) keep the scale at
  1 and ignore their values entirely: a metric measured while the learning rate ramps up says
  little about a plateau, so the best value, the counts, the block and the window start fresh
  after the warmup.

  *Evaluating every N steps*: pass `value_is_new=False` (a bool, traced or not) to `update`
  for the updates that bring no fresh metric: they scale by the current factor and change
  nothing else (they do count towards `warmup_steps`). `value` must still be given (optax
  passes it to every transformation of a chain): any number, the last metric say.

  *Reading the scale*: `state.scale`, or `lrjax.plateau_scale(opt_state)` for the state of a
  whole chain, is the factor applied to the latest update. The learning rate of update
  :math:`t` is the optimizer's at :math:`t` times it: `schedule(t) * plateau_scale(opt_state)`,
  or `lrjax.plateau_learning_rate(opt_state)` when the optimizer is built with
  `optax.inject_hyperparams` (whose state holds the learning rate of the latest update).

  Conventions: with a constant metric, `factor=0.5` and `patience=2`, the scales of the first
  six updates are `[1, 1, .5, .5, .25, .25]` (the first value improves on :math:`\pm\infty`).

  - *optax*: with `warmup_steps=0`, `window=1`, no increase and mode "min", the updates are
    bitwise those of `optax.contrib.reduce_on_plateau` with the same first seven arguments
    (same names, order and defaults). optax refuses `rtol=atol=0`; here it means any strict
    improvement counts.
  - *PyTorch* `ReduceLROnPlateau` reduces when its count *exceeds* `patience`: its patience
    :math:`p` is `patience=p + 1` here, with the same cooldown; its `threshold` is `rtol`
    (`threshold_mode="rel"`) or `atol` (`"abs"`). Its patience 0 is `patience=1` here. Its
    `LinearLR` for :math:`W` steps followed by `ReduceLROnPlateau` (`SequentialLR`'s hand-off)
    is `warmup_steps=W`: from update :math:`W` on, the scale after update :math:`t` is its
    learning rate after its scheduler step :math:`t` divided by the base learning rate.
  - *Keras* `ReduceLROnPlateau` reduces when its count reaches `patience`, as here, but
    decrements its cooldown counter before testing it: its cooldown :math:`c \ge 1` is
    `cooldown=c - 1` here. Its `min_delta` is `atol` with `rtol=0`.
  - *GreedyLR* (`transformers.optimization.GreedyLR`) increases when its count of improvements
    exceeds `patience`: `GreedyLR(factor=f, patience=p, smooth=True, window_size=w)` with
    initial learning rate :math:`\eta` is `factor=f, patience=p + 1, window=w,
    increase_factor=1 / f, increase_patience=p + 1, min_scale=min_lr / η, max_scale=max_lr /
    η` here (`smooth=False`: `window=1`). Unlike it, a cooldown lets the best value follow the
    metric (as optax and PyTorch do), nothing waits after an increase (its `warmup`, 0 here)
    and nothing resets after `reset_start` evaluations at the minimum. The `eps` of PyTorch and
    GreedyLR (a change of the learning rate below it is skipped) has no counterpart.
  - The test is computed in the parameters' highest dtype (as optax's); PyTorch, Keras and
    GreedyLR compute the threshold in Python floats: a metric exactly at the threshold, 0.84
    after 0.85 with `atol=0.01`, improves here in float32 and not in PyTorch or Keras (nor
    here with float64 parameters).

  Args:
    factor: :math:`f`, in (0, 1).
    patience: evaluations without improvement before a reduction, an integer >= 1 (optax's
      patience 0 reduces at every improvement, never on a plateau).
    rtol: :math:`r`, in [0, 1].
    atol: :math:`a`, >= 0.
    cooldown: evaluations not counted after each reduction, an integer >= 0.
    accumulation_size: values averaged into one block mean, an integer >= 1.
    min_scale: :math:`s_{\min}`, in [0, 1].
    mode: "min" (a loss) or "max" (an accuracy).
    warmup_steps: updates at the start that keep the scale at 1 and ignore their values, an
      integer >= 0.
    window: block means averaged into each evaluation, an integer >= 1 (1: no smoothing).
    increase_factor: :math:`g > 1`, or None (the default) for no increase.
    increase_patience: consecutive improvements before an increase, an integer >= 1, or None
      for `patience`.
    max_scale: :math:`s_{\max} \ge 1`, the largest scale an increase gives.

  Returns:
    An `optax.GradientTransformationExtraArgs` whose `update(updates, state, params=None, *,
    value, value_is_new=True)` returns the scaled updates and a `PlateauScaleState`.

  Raises:
    ValueError: for a value out of its range above, naming the argument and the value.

  Example:
    >>> import optax
    >>> tx = optax.chain(optax.sgd(1.0), lrjax.plateau(factor=0.5, patience=2))
    >>> params = {"w": jnp.zeros(())}
    >>> state, lrs = tx.init(params), []
    >>> for loss in [1.0, 0.9, 0.95, 0.93, 0.91, 0.92]:
    ...   updates, state = tx.update({"w": jnp.ones(())}, state, params, value=loss)
    ...   lrs.append(float(-updates["w"]))
    >>> lrs
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
  """
  cfg = plateau_config(
    {
      "factor": factor,
      "patience": patience,
      "rtol": rtol,
      "atol": atol,
      "cooldown": cooldown,
      "accumulation_size": accumulation_size,
      "min_scale": min_scale,
      "mode": mode,
      "warmup_steps": warmup_steps,
      "window": window,
      "increase_factor": increase_factor,
      "increase_patience": increase_patience,
      "max_scale": max_scale,
    }
  )
  return _transformation(**cfg)


def _transformation(
  factor: float,
  patience: int,
  rtol: float,
  atol: float,
  cooldown: int,
  accumulation_size: int,
  min_scale: float,
  mode: str,
  warmup_steps: int,
  window: int,
  increase_factor: float | None,
  increase_patience: int | None,
  max_scale: float,
) -> optax.GradientTransformationExtraArgs:
  grow_after = patience if increase_patience is None else increase_patience

  def improved(value: jax.Array, best: jax.Array) -> jax.Array:
    # Python-float coefficients, as optax writes them: (1 - rtol) rounded once, from float64.
    if mode == "min":
      return value < (1 - rtol) * best - atol
    return value > (1 + rtol) * best + atol

  def init_fn(params: Any) -> PlateauScaleState:
    # optax's dtypes: the scale must not promote low-precision updates; the metric keeps the
    # widest precision at hand.
    low = optax.tree.dtype(params, "lowest")
    high = optax.tree.dtype(params, "highest")
    zero = jnp.asarray(0, jnp.int32)
    return PlateauScaleState(
      scale=jnp.asarray(1.0, low),
      best_value=jnp.asarray(np.inf if mode == "min" else -np.inf, high),
      plateau_count=zero,
      cooldown_count=zero,
      count=zero,
      avg_value=jnp.asarray(0.0, high),
      step=zero,
      recent=jnp.zeros((window,), high),
      filled=zero,
      position=zero,
      good_count=zero,
    )

  def evaluate(state: PlateauScaleState) -> PlateauScaleState:
    """The state after the block mean `state.avg_value` is complete: one evaluation."""
    recent = state.recent.at[state.position].set(state.avg_value)
    filled = jnp.minimum(state.filled + 1, window)
    # window 1: the block mean itself, so that the test is optax's to the bit.
    smoothed = state.avg_value if window == 1 else jnp.sum(recent) / filled
    better = improved(smoothed, state.best_value)
    bad = jnp.where(better, 0, optax.safe_increment(state.plateau_count))
    good = jnp.where(better, optax.safe_increment(state.good_count), 0)
    cooling = state.cooldown_count > 0
    reduce = ~cooling & (bad == patience)
    scale = jnp.where(reduce, state.scale * factor, state.scale)
    if increase_factor is not None:
      increase = ~cooling & (good == grow_after)
      scale = jnp.where(increase, jnp.minimum(state.scale * increase_factor, max_scale), scale)
      good = jnp.where(increase, 0, good)
    scale = jnp.where(cooling, state.scale, jnp.maximum(scale, min_scale))
    return state._replace(
      scale=scale.astype(state.scale.dtype),
      best_value=jnp.where(better, smoothed, state.best_value).astype(state.best_value.dtype),
      plateau_count=jnp.where(cooling | reduce, 0, bad).astype(jnp.int32),
      cooldown_count=jnp.where(
        cooling, state.cooldown_count - 1, jnp.where(reduce, cooldown, 0)
      ).astype(jnp.int32),
      count=jnp.asarray(0, jnp.int32),
      avg_value=jnp.zeros_like(state.avg_value),
      recent=recent,
      filled=filled.astype(jnp.int32),
      position=((state.position + 1) % window).astype(jnp.int32),
      good_count=jnp.where(cooling, 0, good).astype(jnp.int32),
    )

  def update_fn(
    updates: Any,
    state: PlateauScaleState,
    params: Any = None,
    *,
    value: Any,
    value_is_new: Any = True,
    **extra_args: Any,
  ) -> tuple[Any, PlateauScaleState]:
    del params, extra_args
    counted = jnp.asarray(value_is_new, bool) & (state.step >= warmup_steps)
    count = optax.safe_increment(state.count)
    # optax's running block mean, written as optax writes it so that it rounds the same.
    avg = (state.count * state.avg_value + jnp.astype(value, state.avg_value.dtype)) / count
    fed = state._replace(count=count, avg_value=avg.astype(state.avg_value.dtype))
    done = evaluate(fed)
    complete = count == accumulation_size
    new = jax.tree.map(
      lambda d, f, s: jnp.where(counted, jnp.where(complete, d, f), s), done, fed, state
    )
    new = new._replace(step=optax.safe_increment(state.step))
    return jax.tree.map(lambda g: new.scale * g, updates), new

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def plateau_config(config: Mapping[str, Any]) -> dict[str, Any]:
  """The settings of a `plateau` transformation, checked, as a JSON-able dict of every key.

  `lrjax.plateau(**plateau_config(config))` builds the transformation, and
  `plateau_config(plateau_config(config))` returns the same dict: store it in a training config
  and rebuild from it.

  Args:
    config: some of `plateau`'s arguments by name (the others take their defaults).

  Returns:
    A dict of all of `plateau`'s arguments, in its order, with Python ints, floats, strings
    or None as values.

  Raises:
    ValueError: for a config that is not a dict, an unknown key, or a value `plateau` refuses.

  Example:
    >>> cfg = lrjax.plateau_config({"factor": 0.5, "patience": 3})
    >>> cfg["factor"], cfg["patience"], cfg["rtol"], cfg["window"]
    (0.5, 3, 0.0001, 1)
    >>> tx = lrjax.plateau(**cfg)
  """
  if not isinstance(config, Mapping):
    raise ValueError(f"a plateau config must be a dict, got {config!r}")
  defaults = {k: p.default for k, p in inspect.signature(plateau).parameters.items()}
  unknown = sorted(set(config) - set(defaults), key=str)
  if unknown:
    raise ValueError(f"unknown key {unknown[0]!r} in a plateau config; keys: {list(defaults)}")
  c = {**defaults, **config}
  out = {
    "factor": _real("factor", c["factor"], lo=0.0, hi=1.0, lo_open=True, hi_open=True),
    "patience": _integer("patience", c["patience"], 1),
    "rtol": _real("rtol", c["rtol"], lo=0.0, hi=1.0),
    "atol": _real("atol", c["atol"], lo=0.0),
    "cooldown": _integer("cooldown", c["cooldown"], 0),
    "accumulation_size": _integer("accumulation_size", c["accumulation_size"], 1),
    "min_scale": _real("min_scale", c["min_scale"], lo=0.0, hi=1.0),
    "mode": checks.choice("mode", c["mode"], ("min", "max")),
    "warmup_steps": _integer("warmup_steps", c["warmup_steps"], 0),
    "window": _integer("window", c["window"], 1),
    "increase_factor": None,
    "increase_patience": None,
    "max_scale": _real("max_scale", c["max_scale"], lo=1.0),
  }
  if c["increase_factor"] is not None:
    out["increase_factor"] = _real("increase_factor", c["increase_factor"], lo=1.0, lo_open=True)
  if c["increase_patience"] is not None:
    out["increase_patience"] = _integer("increase_patience", c["increase_patience"], 1)
  return out


def _concrete(name: str, x: Any) -> None:
  # The settings are compiled into the update as constants (as optax's are), so a traced or
  # batched value has no place to go.
  if checks.is_traced(x) or np.ndim(x) != 0:
    raise ValueError(f"{name} must be a single number known before tracing, got {x!r}")


def _real(name: str, x: Any, **bounds: Any) -> float:
  _concrete(name, x)
  checks.real(name, x, **bounds)
  return float(x)


def _integer(name: str, x: Any, minimum: int) -> int:
  _concrete(name, x)
  checks.integer(name, x, minimum=minimum)
  return int(x)


__all__ = ["PlateauScaleState", "plateau", "plateau_config"]
