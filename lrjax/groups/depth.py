"""Layer depths for layer-wise learning-rate decay: the stem 0, one more per block, the head last.

A depth function `depth_fn(path, leaf) -> int` gives any pytree's leaves their depths (the path
a tuple of names, as in `lrjax.groups.labels`); `resnet_depths` gives those of lrjax's ResNets,
whose depths need the whole tree (the head sits one above the last block). The head's depth
:math:`L + 1` is the largest depth, as in timm's `param_groups_layer_decay`, where the layer
count is one more than the largest layer id.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import numpy as np

from lrjax.groups.labels import LeafFn, label_leaves, path_names
from lrjax.groups.values import host_float
from lrjax.schedules import checks

# The top-level names of lrjax.models.resnet's ResNet and PreActResNet parameters.
_STEM = ("conv_init", "bn_init", "bn_input")
_BLOCK = re.compile(r"(BasicBlock|BottleneckBlock|PreActBottleneck)_(\d+)")
_FINAL_NORM = "bn_final"
_HEAD = re.compile(r"Dense_\d+")


def _is_depth(x: Any) -> bool:
  return not isinstance(x, bool) and isinstance(x, (int, np.integer)) and x >= 0


def _check_depth(name: str, depth: Any, where: tuple[str, ...]) -> int:
  if not _is_depth(depth):
    raise ValueError(
      f"{name} must give a non-negative integer depth, got {depth!r} for {'/'.join(where)}"
    )
  return int(depth)


def _decay_factor(name: str, x: Any) -> Any:
  return checks.real(name, x, lo=0.0, hi=1.0, lo_open=True)


def _unit(name: str, x: Any) -> Any:
  return checks.real(name, x, lo=0.0, hi=1.0)


def layer_depths(params: Any, depth_fn: LeafFn | Any) -> Any:
  """Every leaf's depth, from a depth function or a pytree of depths (which is checked).

  Args:
    params: the parameters (or their shapes).
    depth_fn: `(path, leaf) -> int`, 0 for the stem (embedding) up to :math:`L + 1` for the
      head; or a pytree of such integers with the structure of `params` (`resnet_depths`'
      result).

  Returns:
    A pytree of Python ints with the structure of `params`.

  Raises:
    ValueError: if a depth is not a non-negative integer, the pytree of depths does not have the
      structure of `params`, or `params` has no leaf.

  Example:
    >>> from lrjax.groups import layer_depths
    >>> params = {"embed": jnp.zeros((8, 4)), "blocks": [jnp.zeros((4, 4))] * 2}
    >>> params["head"] = jnp.zeros(4)
    >>> def depth(path, leaf):  # path ("blocks", "1") for the second block
    ...   return int(path[1]) + 1 if path[0] == "blocks" else {"embed": 0, "head": 3}[path[0]]
    >>> layer_depths(params, depth)
    {'blocks': [1, 2], 'embed': 0, 'head': 3}
  """
  if not jax.tree.leaves(params):
    raise ValueError(f"params must have at least one leaf, got {params!r}")
  if callable(depth_fn):
    return label_leaves(
      params, lambda path, leaf: _check_depth("depth_fn", depth_fn(path, leaf), path)
    )
  structure = jax.tree.structure(params)
  if jax.tree.structure(depth_fn) != structure:
    raise ValueError(
      "depth_fn must be a function (path, leaf) -> int or a pytree of depths with the "
      f"structure of params ({structure}), got {depth_fn!r}"
    )
  return jax.tree_util.tree_map_with_path(
    lambda path, d: _check_depth("depth_fn", d, path_names(path)), depth_fn
  )


def resnet_depths(params: Any) -> Any:
  """The depths of an lrjax ResNet's parameters (`lrjax.models`: the ResNets and PreActResNet).

  The stem (`conv_init`, `bn_init`, `bn_input`) is at depth 0, block `k` (`BasicBlock_k`,
  `BottleneckBlock_k`, `PreActBottleneck_k`, counted over all stages) at :math:`k + 1`, the
  final BatchNorm of a pre-activation net (`bn_final`) with the last block at :math:`L`, and the
  classifier (`Dense_0`) at :math:`L + 1`, where :math:`L` is the number of blocks. These are
  the layer ids that timm's `group_matcher` gives its ResNets (`^conv1|bn1` for the stem,
  `^layer(\\d+)\\.(\\d+)` per block, the head unmatched and so last) and its pre-activation
  ResNetV2 (the final `norm` joins the last block).

  Args:
    params: the `params` collection of an lrjax ResNet (arrays or shapes).

  Returns:
    A pytree of ints with the structure of `params`.

  Raises:
    ValueError: for a parameter outside the stem, the blocks, `bn_final` and the head, naming it.

  Example:
    >>> import jax
    >>> from lrjax.groups import resnet_depths
    >>> from lrjax.models import registry
    >>> model = registry.create_model("tiny", 10)
    >>> key = jax.random.key(0)
    >>> shapes = jax.eval_shape(lambda: registry.init_variables(model, key, (8, 8, 3)))
    >>> depths = resnet_depths(shapes["params"])
    >>> depths["conv_init"], depths["BasicBlock_1"]["Conv_0"], depths["Dense_0"]
    ({'kernel': 0}, {'kernel': 2}, {'bias': 3, 'kernel': 3})
  """
  names = {path_names(path)[0] for path, _ in jax.tree_util.tree_leaves_with_path(params)}
  blocks = {m.group(0): int(m.group(2)) for n in names if (m := _BLOCK.fullmatch(n))}
  top = len(blocks)
  for name in sorted(names - set(blocks)):
    if name not in (*_STEM, _FINAL_NORM) and not _HEAD.fullmatch(name):
      hint = " (pass variables['params'])" if name == "params" else ""
      raise ValueError(
        f"params must be an lrjax ResNet's parameters: stem {list(_STEM)}, blocks "
        f"'BasicBlock_k', 'BottleneckBlock_k' or 'PreActBottleneck_k', {_FINAL_NORM!r} and the "
        f"head 'Dense_0'; got a parameter {name!r}{hint}"
      )

  def depth(path: tuple[str, ...], leaf: Any) -> int:
    name = path[0]
    if name in _STEM:
      return 0
    if name in blocks:
      return blocks[name] + 1
    return top if name == _FINAL_NORM else top + 1

  return label_leaves(params, depth)


def layer_scales(head_depth: int, layer_decay: float, min_scale: float = 0.0) -> tuple[float, ...]:
  r"""The learning-rate factor of every depth, BEiT's and timm's layer-wise decay.

  .. math::

     c_i = \max\left(m,\ d^{\,L + 1 - i}\right), \qquad i = 0, \dots, L + 1

  where :math:`d` is `layer_decay`, :math:`L + 1` the head's depth and :math:`m` `min_scale`:
  the head trains at the base rate, each layer below it at :math:`d` times the rate of the one
  above, the stem at :math:`d^{L + 1}`. Python floats (double precision, as timm's).

  Args:
    head_depth: :math:`L + 1`, the largest depth, a non-negative integer.
    layer_decay: :math:`d`, in (0, 1].
    min_scale: :math:`m`, the smallest factor, in [0, 1] (timm's `min_scale`).

  Returns:
    `(c_0, ..., c_{L+1})`.

  Raises:
    ValueError: if an argument is outside its range.

  Example:
    >>> from lrjax.groups import layer_scales
    >>> layer_scales(3, 0.5)
    (0.125, 0.25, 0.5, 1.0)
  """
  if not _is_depth(head_depth):
    raise ValueError(f"head_depth must be a non-negative integer, got {head_depth!r}")
  d = host_float("layer_decay", layer_decay, _decay_factor)
  m = host_float("min_scale", min_scale, _unit)
  top = int(head_depth)
  return tuple(max(m, d ** (top - i)) for i in range(top + 1))
