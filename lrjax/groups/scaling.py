"""Groups whose schedules are multiples of one base schedule: a head at 10x, layer-wise decay."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax

from lrjax.groups.depth import layer_depths, layer_scales
from lrjax.groups.labels import LeafFn, is_decayed, path_names
from lrjax.groups.values import host_float
from lrjax.schedules import checks
from lrjax.schedules.arithmetic import scale
from lrjax.schedules.base import Schedule


def scaled_schedule(schedule: Any, factor: float) -> Any:
  """`factor` times a schedule: an lrjax schedule (`lrjax.scale`), a number or a function.

  A factor of 1 returns `schedule` itself.

  Args:
    schedule: an lrjax schedule, a `count -> rate` function or a learning rate.
    factor: a number >= 0.

  Raises:
    ValueError: if `factor` is negative or not finite, or `schedule` is a bad number.
  """
  factor = host_float("factor", factor)
  if factor == 1.0:
    return schedule
  if isinstance(schedule, Schedule):
    return scale(schedule, factor)
  if callable(schedule):
    return lambda count: factor * schedule(count)
  return factor * host_float("schedule", schedule, checks.lr_value)


def scaled_groups(
  schedule: Any,
  factors: Mapping[Hashable, float],
  weight_decay: float | Mapping[Hashable, float] = 0.0,
) -> dict[Hashable, dict[str, Any]]:
  """Groups for `per_group` that follow one schedule, each at its own multiple of it.

  A head at ten times the backbone's rate is `scaled_groups(base, {"head": 10.0, "backbone":
  1.0})`: group `g` has the schedule `factors[g] * schedule`.

  Args:
    schedule: the base schedule (an lrjax schedule, a `count -> rate` function or a number).
    factors: `{label: factor}`, each factor >= 0.
    weight_decay: one weight decay for every group, or `{label: weight_decay}` naming exactly the
      labels of `factors`.

  Returns:
    A dict from each label to its group, `dict(schedule=factor * schedule, weight_decay=w)`.

  Raises:
    ValueError: if `factors` is empty, a factor or a weight decay is bad (naming its label), or
      the labels of `weight_decay` are not those of `factors`.

  Example:
    >>> from lrjax.groups import scaled_groups
    >>> groups = scaled_groups(lrjax.constant(0.01), {"head": 10.0, "backbone": 1.0}, 1e-4)
    >>> round(float(groups["head"]["schedule"](0)), 6), groups["head"]["weight_decay"]
    (0.1, 0.0001)
  """
  if not isinstance(factors, Mapping) or not factors:
    raise ValueError(f"factors must be a non-empty dict of label -> factor, got {factors!r}")
  if isinstance(weight_decay, Mapping):
    if set(weight_decay) != set(factors):
      raise ValueError(
        f"weight_decay must name the groups of factors {list(factors)}, got {list(weight_decay)}"
      )
    decays = dict(weight_decay)
  else:
    decays = dict.fromkeys(factors, weight_decay)
  out = {}
  for label, factor in factors.items():
    host_float(f"factors[{label!r}]", factor)
    w = host_float(f"weight_decay[{label!r}]", decays[label])
    out[label] = dict(schedule=scaled_schedule(schedule, factor), weight_decay=w)
  return out


def layer_decay_groups(
  params: Any,
  schedule: Any,
  layer_decay: float,
  depth_fn: LeafFn | Any,
  *,
  weight_decay: float = 0.0,
  decayed: Callable[[tuple[str, ...], Any], bool] = is_decayed,
  min_scale: float = 0.0,
) -> tuple[dict[str, dict[str, Any]], Any]:
  r"""Layer-wise learning-rate decay (BEiT; timm's `param_groups_layer_decay`) for `per_group`.

  The leaves at depth :math:`i` follow

  .. math::

     s_i(t) = \max\left(m,\ d^{\,L + 1 - i}\right) s(t)

  where :math:`s` is `schedule`, :math:`d` `layer_decay`, :math:`m` `min_scale` and
  :math:`L + 1` the largest depth (the head, which trains at :math:`s` itself; the stem at
  depth 0 at :math:`d^{L + 1} s`). The groups are timm's: `"layer_{i}_decay"` for the leaves of
  depth :math:`i` that `decayed` says are decayed (weight decay `weight_decay`) and
  `"layer_{i}_no_decay"` for the others (none), only those that have leaves.

  Args:
    params: the parameters (or their shapes, `jax.eval_shape`'s).
    schedule: the base schedule :math:`s` (an lrjax schedule, a `count -> rate` function or a
      number).
    layer_decay: :math:`d`, in (0, 1].
    depth_fn: `(path, leaf) -> int`, 0 for the stem up to :math:`L + 1` for the head, or a
      pytree of depths (`lrjax.groups.resnet_depths(params)` for lrjax's ResNets).
    weight_decay: the decay of the decayed leaves, >= 0.
    decayed: `(path, leaf) -> bool`, which leaves are decayed; kernels by default
      (`lrjax.groups.is_decayed`: not BatchNorm scales, biases or other 1-D parameters).
    min_scale: :math:`m`, the smallest factor, in [0, 1].

  Returns:
    The pair (groups, labels), the arguments of `per_group` after the optimizer, as in
    `per_group(optax.adamw, *layer_decay_groups(params, s, 0.75, depth_fn))`.

  Raises:
    ValueError: for a bad `layer_decay`, `min_scale` or `weight_decay`, or a bad depth (naming
      the leaf).

  Example:
    >>> from lrjax.groups import layer_decay_groups
    >>> params = {"embed": jnp.zeros((8, 4)), "blocks": [jnp.zeros((4, 4))], "head": jnp.zeros(4)}
    >>> depth = lambda path, leaf: {"embed": 0, "blocks": 1, "head": 2}[path[0]]
    >>> groups, labels = layer_decay_groups(params, 0.1, 0.5, depth, weight_decay=0.05)
    >>> labels
    {'blocks': ['layer_1_decay'], 'embed': 'layer_0_decay', 'head': 'layer_2_no_decay'}
    >>> {g: (round(v["schedule"], 6), v["weight_decay"]) for g, v in groups.items()}
    {'layer_0_decay': (0.025, 0.05), 'layer_1_decay': (0.05, 0.05), 'layer_2_no_decay': (0.1, 0.0)}
  """
  weight_decay = host_float("weight_decay", weight_decay)
  if not callable(decayed):
    raise ValueError(f"decayed must be a function (path, leaf) -> bool, got {decayed!r}")
  depths = layer_depths(params, depth_fn)
  scales = layer_scales(max(jax.tree.leaves(depths)), layer_decay, min_scale)

  kinds: dict[str, tuple[int, bool]] = {}

  def label(path: Any, leaf: Any, depth: int) -> str:
    on = bool(decayed(path_names(path), leaf))
    name = f"layer_{depth}_{'decay' if on else 'no_decay'}"
    kinds[name] = (depth, on)
    return name

  labels = jax.tree_util.tree_map_with_path(label, params, depths)
  groups = {
    name: dict(
      schedule=scaled_schedule(schedule, scales[depth]), weight_decay=weight_decay if on else 0.0
    )
    for name, (depth, on) in sorted(kinds.items(), key=lambda item: (item[1][0], item[0]))
  }
  return groups, labels
