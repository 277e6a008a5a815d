"""One optimizer, a schedule and a weight decay per group of parameters, on `optax.partition`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import optax

from lrjax.groups.labels import path_names
from lrjax.groups.values import host_float
from lrjax.schedules import checks

GROUP_KEYS = ("schedule", "weight_decay")


def _parameters(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter] | None:
  """`fn`'s parameters by name, or None if it has no signature (some builtins)."""
  try:
    return inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return None


def _group(name: Hashable, spec: Any) -> tuple[Any, float]:
  """A group's (schedule, weight decay), checked: a dict with a schedule and a weight decay."""
  where = f"groups[{name!r}]"
  if not isinstance(spec, Mapping):
    raise ValueError(f"{where} must be a dict with a 'schedule' and a 'weight_decay', got {spec!r}")
  unknown = sorted(map(str, set(spec) - set(GROUP_KEYS)))
  if unknown:
    raise ValueError(f"{where} takes only the keys {list(GROUP_KEYS)}, got {unknown}")
  if "schedule" not in spec:
    raise ValueError(f"{where} must have a 'schedule', got {dict(spec)!r}")
  schedule = spec["schedule"]
  if not callable(schedule):
    schedule = host_float(f"{where}['schedule']", schedule, checks.lr_value)
  return schedule, host_float(f"{where}['weight_decay']", spec.get("weight_decay", 0.0))


def _check_labels(labels: Any, groups: Mapping[Hashable, Any]) -> None:
  for path, label in jax.tree_util.tree_leaves_with_path(labels):
    if not isinstance(label, Hashable) or label not in groups:
      raise ValueError(
        f"labels must name one of the groups {list(groups)}, got {label!r} at "
        f"{'/'.join(path_names(path)) or 'the root'}"
      )


def per_group(
  optimizer: Callable[..., optax.GradientTransformation],
  groups: Mapping[Hashable, Mapping[str, Any]],
  labels: Any,
) -> optax.GradientTransformationExtraArgs:
  r"""An optimizer whose groups of parameters each follow their own schedule and weight decay.

  Every leaf of the parameters has a label (`labels`), every label names a group, and group
  :math:`g` updates its leaves with `optimizer` at the rate of its schedule :math:`s_g` and with
  its weight decay :math:`w_g`. With `optax.sgd` (no momentum), update :math:`t` (0-based) of a
  leaf :math:`\theta` of group :math:`g` is

  .. math::

     \Delta\theta_t = -s_g(t) \left(\nabla_\theta \mathcal{L} + w_g\, \theta\right)

  The decay is the optimizer's own when it takes a `weight_decay` argument (`optax.adamw`,
  `optax.lion`: decoupled, and the group's value replaces the optimizer's default), else
  coupled L2 added to the gradient before the optimizer (`optax.add_decayed_weights`), as
  `lrjax.make_optimizer` decays; either way `update` needs `params`.

  Each group is an `optax.inject_hyperparams` whose `learning_rate` is the group's schedule
  itself, evaluated at the group's update count, all inside `optax.partition`: the optimizer
  works on its own (`tx.update`, then `optax.apply_updates`, jitted or not), and
  `group_learning_rates(state)` reads every group's rate of the latest update out of its state.
  The rates are computed from the count, so writing one into the state
  (`lrjax.set_learning_rate`) has no effect. Each group keeps its own optimizer state
  (momentum, Adam moments); a transformation that looks at all the parameters at once
  (clipping by the global norm) sees only its group's inside `optimizer`: chain it before.

  Args:
    optimizer: a function of `learning_rate=` (and optionally `weight_decay=`) returning an
      optax transformation: `optax.sgd`, `functools.partial(optax.sgd, momentum=0.9)`,
      `optax.adamw`.
    groups: `{label: {"schedule": s, "weight_decay": w}}`; `s` is an lrjax schedule, any
      `count -> rate` function or a number (a constant rate), `w` a number >= 0 (0 by default).
      `lrjax.groups.scaled_groups` and `layer_decay_groups` build them.
    labels: a pytree of labels with the structure of the parameters (or a prefix of it), or a
      function `params -> labels` (`lrjax.groups.decay_labels`,
      `lrjax.groups.leaf_labels(fn)`), as `optax.partition` takes them.

  Returns:
    The optimizer, an `optax.GradientTransformationExtraArgs`.

  Raises:
    ValueError: if `optimizer` does not build a transformation from a learning rate, `groups`
      is empty or a group is malformed (naming it), or a label names no group (at `init` when
      `labels` is a function).

  Example:
    >>> import optax
    >>> from lrjax.groups import decay_labels, group_learning_rates, per_group
    >>> base = lrjax.linear_decay(0.1, total_steps=10)
    >>> tx = per_group(
    ...   optax.sgd,
    ...   {"decay": dict(schedule=base, weight_decay=1e-4), "no_decay": dict(schedule=10.0 * base)},
    ...   decay_labels,
    ... )
    >>> params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params)
    >>> params = optax.apply_updates(params, updates)
    >>> {g: round(float(lr), 6) for g, lr in group_learning_rates(state).items()}
    {'decay': 0.1, 'no_decay': 1.0}
  """
  if not callable(optimizer):
    raise ValueError(f"optimizer must be a function of learning_rate, got {optimizer!r}")
  parameters = _parameters(optimizer)
  if parameters is not None and not (
    "learning_rate" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
  ):
    raise ValueError(f"optimizer must take a learning_rate argument, got {optimizer!r}")
  if not isinstance(groups, Mapping) or not groups:
    raise ValueError(f"groups must be a non-empty dict of label -> group, got {groups!r}")
  # Only a declared `weight_decay` is the optimizer's own decay; `**kwargs` may not take it.
  own_decay = parameters is not None and "weight_decay" in parameters
  checked = {label: _group(label, spec) for label, spec in groups.items()}
  _check_built(optimizer, own_decay)
  if not callable(labels):
    _check_labels(labels, checked)

  def build(weight_decay):
    def transformation(learning_rate):
      if own_decay:
        return optimizer(learning_rate=learning_rate, weight_decay=weight_decay)
      inner = optimizer(learning_rate=learning_rate)
      if weight_decay > 0:  # coupled L2: the gradient plus w * theta, before the optimizer
        return optax.chain(optax.add_decayed_weights(weight_decay), inner)
      return inner

    return transformation

  transforms = {
    label: optax.inject_hyperparams(build(weight_decay))(learning_rate=schedule)
    for label, (schedule, weight_decay) in checked.items()
  }
  inner = optax.partition(transforms, labels)

  def init(params: Any) -> optax.OptState:
    if callable(labels):
      _check_labels(labels(params), checked)
    return inner.init(params)

  return optax.GradientTransformationExtraArgs(init, inner.update)


def _check_built(optimizer: Callable[..., Any], own_decay: bool) -> None:
  """Builds the optimizer once, so that a bad one fails here and not at the first update."""
  kwargs = dict(learning_rate=0.1, weight_decay=0.0) if own_decay else dict(learning_rate=0.1)
  try:
    tx = optimizer(**kwargs)
  except Exception as e:  # any failure of the user's function: say which argument it was
    raise ValueError(f"optimizer({kwargs}) must build an optax transformation: {e}") from e
  if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
    raise ValueError(f"optimizer must return an optax transformation, got {tx!r}")


def _injected_learning_rate(state: Any) -> Any:
  """The injected learning rate in a group's state (inside its `optax.masked`), or None."""
  while state is not None:
    hyperparams = getattr(state, "hyperparams", None)
    if isinstance(hyperparams, dict) and "learning_rate" in hyperparams:
      return hyperparams["learning_rate"]
    state = getattr(state, "inner_state", None)
  return None


def group_learning_rates(opt_state: Any) -> dict[Hashable, jax.Array]:
  """The learning rate of every group's latest update, read from a `per_group` state.

  Finds the one `optax.partition` state whose groups all have an injected learning rate,
  anywhere in `opt_state` (chained after clipping, inside `optax.MultiSteps`, ...). Works on
  traced states, inside `jax.jit`. After update :math:`t` (0-based) a group's value is
  :math:`s_g(t)`, the rate that update used; before the first update, :math:`s_g(0)`.

  The trainer's optimizer with `config.param_groups` (`lrjax.groups.rules.ParamGroups`) holds
  such a state too: each group's value is its factor times the injected learning rate of the
  latest update (0 before the first, where the injected rate is its placeholder).

  Args:
    opt_state: the state of an optimizer built with `per_group`, or with
      `ParamGroups.transformation` (`lrjax.make_optimizer(..., param_groups=...)`).

  Returns:
    A dict from each group's label to its rate, a scalar array of the parameters' widest float
    dtype.

  Raises:
    ValueError: if `opt_state` holds no such state, or several.
  """

  def is_partition(x: Any) -> bool:
    return isinstance(x, optax.PartitionState)

  found = [
    x.inner_states
    for x in jax.tree.leaves(opt_state, is_leaf=is_partition)
    if is_partition(x)
    and all(_injected_learning_rate(s) is not None for s in x.inner_states.values())
  ]
  if len(found) != 1:
    raise ValueError(
      f"opt_state must hold exactly one lrjax.groups.per_group state, found {len(found)}"
    )
  return {label: _injected_learning_rate(s) for label, s in found[0].items()}
