"""Reading the plateau scale, and the learning rate it gives, out of a whole optimizer state."""

from __future__ import annotations

from typing import Any

import jax
import optax

from lrjax.transforms.plateau import PlateauScaleState

_PLATEAU_STATES = (PlateauScaleState, optax.contrib.ReduceLROnPlateauState)


def plateau_scale(opt_state: Any) -> jax.Array:
  """The scale that the plateau transformation in `opt_state` applied to the latest update.

  Finds the one `PlateauScaleState` (or `optax.contrib.reduce_on_plateau` state) anywhere in
  the state of an optax chain, `inject_hyperparams`, `MultiSteps` or any other nesting of
  tuples, lists, dicts and NamedTuples. Works on traced states, inside `jax.jit`.

  Args:
    opt_state: an optimizer state holding exactly one plateau state.

  Returns:
    The scale, an array of the parameters' lowest dtype (1 before the first reduction).

  Raises:
    ValueError: if `opt_state` holds no plateau state, or several.

  Example:
    >>> import optax
    >>> tx = optax.chain(optax.sgd(0.1), lrjax.plateau(factor=0.5, patience=1))
    >>> params = {"w": jnp.zeros(())}
    >>> state = tx.init(params)
    >>> for loss in [1.0, 1.0]:
    ...   _, state = tx.update({"w": jnp.ones(())}, state, params, value=loss)
    >>> lrjax.plateau_scale(state)
    Array(0.5, dtype=float32)
  """
  found = [
    x
    for x in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, _PLATEAU_STATES))
    if isinstance(x, _PLATEAU_STATES)
  ]
  if len(found) != 1:
    raise ValueError(
      f"opt_state must hold exactly one plateau state, found {len(found)}: chain "
      "lrjax.plateau (or optax.contrib.reduce_on_plateau) once into the optimizer"
    )
  return found[0].scale


def plateau_learning_rate(opt_state: Any, name: str = "learning_rate") -> jax.Array:
  """The learning rate of the latest update: the injected learning rate times the scale.

  For an optimizer built with `optax.inject_hyperparams`, whose state holds the learning rate
  of the latest update (a number or a schedule's value), followed by `lrjax.plateau`. With a
  schedule that is not injected, the learning rate of update `t` is
  `schedule(t) * lrjax.plateau_scale(opt_state)`.

  Args:
    opt_state: an optimizer state holding one injected hyperparameter `name` and one plateau
      state.
    name: the injected hyperparameter that is the learning rate.

  Returns:
    The learning rate, an array (the wider of the two dtypes).

  Raises:
    ValueError: if `opt_state` injects no hyperparameter `name`, or several, or holds no
      plateau state, or several.

  Example:
    >>> import optax
    >>> sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    >>> tx = optax.chain(sgd, lrjax.plateau(factor=0.5, patience=1))
    >>> params = {"w": jnp.zeros(())}
    >>> state = tx.init(params)
    >>> for loss in [1.0, 1.0]:
    ...   _, state = tx.update({"w": jnp.ones(())}, state, params, value=loss)
    >>> lrjax.plateau_learning_rate(state)
    Array(0.05, dtype=float32)
  """

  def injected(x: Any) -> bool:
    return isinstance(getattr(x, "hyperparams", None), dict) and name in x.hyperparams

  found = [x.hyperparams[name] for x in jax.tree.leaves(opt_state, is_leaf=injected) if injected(x)]
  if len(found) != 1:
    raise ValueError(
      f"opt_state must inject exactly one hyperparameter {name!r}, found {len(found)}: build "
      "the optimizer with optax.inject_hyperparams"
    )
  return found[0] * plateau_scale(opt_state)


__all__ = ["plateau_learning_rate", "plateau_scale"]
