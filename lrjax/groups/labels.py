"""Labelling parameters by their path and shape: which group each leaf of a pytree belongs to.

A per-leaf function takes the leaf's path as a tuple of names (`("BasicBlock_0", "Conv_0",
"kernel")`; dict keys, attribute names and sequence indices, all as strings) and the leaf itself,
and returns its label. `label_leaves(params, fn)` maps it over a pytree; `leaf_labels(fn)` makes
the `params -> labels` callable that `optax.partition` and `lrjax.groups.per_group` take.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

Path = tuple[str, ...]
LeafFn = Callable[[Path, Any], Any]

# The names Flax gives a layer's bias and a normalisation layer's scale.
NO_DECAY_NAMES = ("bias", "scale")


def path_names(path: tuple[Any, ...]) -> Path:
  """A JAX key path as a tuple of names: `(DictKey("a"), SequenceKey(0))` -> `("a", "0")`."""
  out = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        out.append(str(getattr(key, attr)))
        break
    else:
      out.append(str(key))
  return tuple(out)


def label_leaves(params: Any, fn: LeafFn) -> Any:
  """`fn(path, leaf)` for every leaf of `params`, in a pytree of the same structure.

  Args:
    params: a pytree of arrays (or of `jax.ShapeDtypeStruct`s).
    fn: `(path, leaf) -> label`, the path a tuple of names (see the module docstring).

  Returns:
    The labels, a pytree with the structure of `params`.
  """
  return jax.tree_util.tree_map_with_path(lambda path, leaf: fn(path_names(path), leaf), params)


def leaf_labels(fn: LeafFn) -> Callable[[Any], Any]:
  """A `params -> labels` function from a per-leaf one, for `optax.partition` or `per_group`.

  Args:
    fn: `(path, leaf) -> label`, the path a tuple of names.

  Returns:
    `lambda params: label_leaves(params, fn)`.

  Raises:
    ValueError: if `fn` is not callable.

  Example:
    >>> from lrjax.groups import leaf_labels
    >>> head = leaf_labels(lambda path, leaf: "head" if path[0] == "Dense_0" else "body")
    >>> head({"Dense_0": {"kernel": jnp.zeros((4, 2))}, "conv_init": {"kernel": jnp.zeros(1)}})
    {'Dense_0': {'kernel': 'head'}, 'conv_init': {'kernel': 'body'}}
  """
  if not callable(fn):
    raise ValueError(f"fn must be a function (path, leaf) -> label, got {fn!r}")
  return lambda params: label_leaves(params, fn)


def is_decayed(path: Path, leaf: Any) -> bool:
  """Whether weight decay applies to a leaf: kernels yes; BatchNorm scales and biases no.

  A leaf is decayed when it has more than one dimension and its name is neither "bias" nor
  "scale": `p.ndim > 1`, as `lrjax.make_optimizer` masks its decay (and timm's
  `param_groups_weight_decay` excludes 1-D parameters), with the names added so that a
  per-channel scale stored with a broadcast shape is still left alone.

  Args:
    path: the leaf's path as a tuple of names.
    leaf: an array, a `jax.ShapeDtypeStruct` or a number.
  """
  ndim = leaf.ndim if hasattr(leaf, "ndim") else np.ndim(leaf)  # ShapeDtypeStructs too
  return ndim > 1 and not (path and path[-1] in NO_DECAY_NAMES)


def decay_labels(params: Any, decay: Hashable = "decay", no_decay: Hashable = "no_decay") -> Any:
  """Labels every leaf `decay` or `no_decay` by `is_decayed`: a `labels` for `per_group`.

  Args:
    params: the parameters (or their shapes).
    decay: the label of kernels.
    no_decay: the label of BatchNorm scales, biases and other 1-D parameters.

  Returns:
    A pytree of labels with the structure of `params`.

  Example:
    >>> from lrjax.groups import decay_labels
    >>> decay_labels({"conv": {"kernel": jnp.zeros((3, 3, 1, 4))}, "bn": {"scale": jnp.ones(4)}})
    {'bn': {'scale': 'no_decay'}, 'conv': {'kernel': 'decay'}}
  """
  return label_leaves(params, lambda path, leaf: decay if is_decayed(path, leaf) else no_decay)
