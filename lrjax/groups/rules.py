"""Groups of parameters chosen by rules on their paths, each at a constant multiple of one rate.

`per_group` gives every group a schedule of its own; the trainer instead keeps one injected
learning rate, which its step writes before every update (so that runs differing only in their
schedules' values share one compiled step), and gives group :math:`g` the rate
:math:`c_g\\,\\eta(t)`, with a constant factor :math:`c_g` fixed in the program.
`GroupRules` says which parameters form which group: named groups found by a regular expression
on the leaf's path (a head at 10x), layer-wise decay by depth (`resnet_depths`), and which leaves
weight decay applies to; `GroupRules.resolve(params)` fixes its groups for one model's
parameters, and `ParamGroups.transformation` builds their optimizer inside an
`optax.inject_hyperparams` build function. `lrjax.groups.group_learning_rates` reads every
group's rate from its state, as it reads a `per_group` state's.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import jax
import optax

from lrjax.groups.depth import layer_depths, layer_scales, resnet_depths
from lrjax.groups.labels import is_decayed, label_leaves, path_names

REST = "rest"  # the group of the leaves no named group finds
WEIGHT_DECAY_ON = ("kernels", "all")
_NAME = re.compile(r"[A-Za-z_]\w*")


def _number(name: str, value: Any, least: float, *, open_low: bool = False) -> float:
  ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
  if not ok or value < least or (open_low and value == least):
    want = f"> {least:g}" if open_low else f">= {least:g}"
    raise ValueError(f"{name} must be a finite number {want}, got {value!r}")
  return float(value)


@dataclasses.dataclass(frozen=True)
class Group:
  """A named group: the leaves whose path `match` finds, at `lr_scale` times the rate.

  Attributes:
    name: the group's name, an identifier other than "rest".
    match: a regular expression, searched (`re.search`) in the leaf's path joined by "/"
      (`"Dense_0/kernel"`, `"BasicBlock_1/BatchNorm_0/scale"`).
    lr_scale: the group's factor of the learning rate, > 0.
    weight_decay: the group's own weight decay, >= 0, or None for the optimizer's.
  """

  name: str
  match: str
  lr_scale: float = 1.0
  weight_decay: float | None = None

  def __post_init__(self):
    if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or self.name == REST:
      raise ValueError(f"name must be an identifier other than {REST!r}, got {self.name!r}")
    where = f"groups[{self.name!r}]"
    if not isinstance(self.match, str) or not self.match:
      raise ValueError(f"{where}.match must be a non-empty regular expression, got {self.match!r}")
    try:
      re.compile(self.match)
    except re.error as e:
      raise ValueError(f"{where}.match={self.match!r} is not a regular expression: {e}") from None
    object.__setattr__(
      self, "lr_scale", _number(f"{where}.lr_scale", self.lr_scale, 0.0, open_low=True)
    )
    if self.weight_decay is not None:
      object.__setattr__(
        self, "weight_decay", _number(f"{where}.weight_decay", self.weight_decay, 0.0)
      )

  def finds(self, path: tuple[str, ...]) -> bool:
    """Whether `match` finds the leaf's path (a tuple of names)."""
    return re.search(self.match, "/".join(path)) is not None


@dataclasses.dataclass(frozen=True)
class GroupRules:
  r"""Which leaves form which group, and each group's factor of the rate and weight decay.

  A leaf belongs to the one named group whose `match` finds its path, or to the group "rest"
  (factor 1, the optimizer's weight decay). With `layer_decay` :math:`d`, a leaf at depth
  :math:`i` (of `depths`, :math:`L + 1` the largest) is also scaled by BEiT's and timm's
  :math:`d^{\,L + 1 - i}` (`layer_scales`), so that its group's factor is

  .. math::

     c = s_g\, d^{\,L + 1 - i}

  with :math:`s_g` the named group's `lr_scale` (1 for the rest), and each depth of each group
  is a group of its own, labelled `"{name}_layer_{i}"`.

  Attributes:
    groups: the named groups; their names distinct.
    layer_decay: :math:`d` in (0, 1], or None for none.
    weight_decay_on: the leaves a group's weight decay applies to: "kernels" (`is_decayed`:
      not BatchNorm scales, biases or other 1-D parameters, as the optimizer's own mask) or
      "all".
    depths: `params -> a pytree of depths` (`resnet_depths`, the default), read with
      `layer_decay` only.

  Raises:
    ValueError: for a bad attribute, naming it.
  """

  groups: tuple[Group, ...] = ()
  layer_decay: float | None = None
  weight_decay_on: str = "kernels"
  depths: Callable[[Any], Any] = resnet_depths

  def __post_init__(self):
    groups = tuple(self.groups)
    if not all(isinstance(g, Group) for g in groups):
      raise ValueError(f"groups must be Group objects, got {groups!r}")
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
      raise ValueError(f"groups must have distinct names, got {names}")
    object.__setattr__(self, "groups", groups)
    if self.layer_decay is not None:
      d = _number("layer_decay", self.layer_decay, 0.0, open_low=True)
      if d > 1:
        raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay!r}")
      object.__setattr__(self, "layer_decay", d)
    if self.weight_decay_on not in WEIGHT_DECAY_ON:
      raise ValueError(
        f"weight_decay_on must be one of {list(WEIGHT_DECAY_ON)}, got {self.weight_decay_on!r}"
      )
    if not callable(self.depths):
      raise ValueError(f"depths must be a function params -> depths, got {self.depths!r}")

  def finding(self, path: tuple[str, ...]) -> tuple[str, ...]:
    """The names of the named groups whose `match` finds `path`."""
    return tuple(g.name for g in self.groups if g.finds(path))

  def group_of(self, path: tuple[str, ...]) -> str:
    """The group of the leaf at `path`: the named group that finds it, else "rest".

    Raises:
      ValueError: if two named groups find it.
    """
    found = self.finding(path)
    if len(found) > 1:
      raise ValueError(
        f"a parameter belongs to one group: {'/'.join(path)} is found by groups {list(found)}"
      )
    return found[0] if found else REST

  def _leaf_groups(self, params: Any) -> tuple[Any, Any]:
    """(each leaf's group, each leaf's depth), pytrees shaped as `params`; depths None without
    layer decay."""
    names = label_leaves(params, lambda path, leaf: self.group_of(path))
    if self.layer_decay is None:
      return names, None
    return names, layer_depths(params, self.depths(params))

  def labels(self, params: Any) -> Any:
    """Every leaf's label: its group's name, or `"{name}_layer_{depth}"` with layer decay.

    Args:
      params: the parameters (or their shapes, or updates shaped as them).
    """
    names, depths = self._leaf_groups(params)
    if self.layer_decay is None:
      return names
    return jax.tree.map(lambda n, d: f"{n}_layer_{d}", names, depths)

  def resolve(self, params: Any) -> ParamGroups:
    """The groups of one model's parameters, each with its factor and weight decay.

    Args:
      params: the model's parameters (or their shapes: `jax.eval_shape`'s).

    Returns:
      A `ParamGroups`, hashable: an optimizer built from it may be cached.

    Raises:
      ValueError: a named group finds no leaf, two find one leaf, or `depths` fails on
        `params`.

    Example:
      >>> from lrjax.groups.rules import Group, GroupRules
      >>> params = {"Dense_0": {"kernel": jnp.zeros((4, 2))}, "conv": {"kernel": jnp.zeros(3)}}
      >>> GroupRules((Group("head", "Dense_", lr_scale=10.0),)).resolve(params).factors()
      {'head': 10.0, 'rest': 1.0}
    """
    names, depths = self._leaf_groups(params)
    found = set(jax.tree.leaves(names))
    missing = [g.name for g in self.groups if g.name not in found]
    if missing:
      paths = ["/".join(path_names(p)) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
      raise ValueError(
        f"groups {missing} find no parameter (match {[self._group(n).match for n in missing]}); "
        f"the parameters are {paths[:8]}{' ...' if len(paths) > 8 else ''}"
      )
    if self.layer_decay is None:
      pairs = sorted(set(jax.tree.leaves(names)))
      scales: tuple[float, ...] = ()
    else:
      pairs = sorted(set(zip(jax.tree.leaves(names), jax.tree.leaves(depths))))
      scales = layer_scales(max(jax.tree.leaves(depths)), self.layer_decay)
    table = []
    for pair in pairs:
      name, depth = (pair, None) if self.layer_decay is None else pair
      group = self._group(name)
      factor = 1.0 if group is None else group.lr_scale
      own = None if group is None else group.weight_decay
      if depth is not None:
        factor, name = factor * scales[depth], f"{name}_layer_{depth}"
      table.append((name, factor, own))
    return ParamGroups(self, tuple(table))

  def _group(self, name: str) -> Group | None:
    return next((g for g in self.groups if g.name == name), None)


def _kernels(params: Any) -> Any:
  return label_leaves(params, is_decayed)


# What builds one group's optimizer: (its learning rate, its weight decay, the mask of the
# leaves its decay applies to, or None for all) -> an optax transformation.
Build = Callable[[Any, Any, Any], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class ParamGroups:
  """`GroupRules` resolved for one model: every group's label, factor and weight decay.

  Attributes:
    rules: the rules, which label the leaves.
    table: `(label, factor, weight_decay)` of every group that has leaves; a weight decay of
      None is the optimizer's.
  """

  rules: GroupRules
  table: tuple[tuple[str, float, float | None], ...]

  def factors(self) -> dict[str, float]:
    """Each group's factor of the learning rate, by label."""
    return {label: factor for label, factor, _ in self.table}

  def weight_decays(self) -> dict[str, float | None]:
    """Each group's own weight decay by label, None where it is the optimizer's."""
    return {label: decay for label, _, decay in self.table}

  def transformation(
    self, build: Build, learning_rate: Any, weight_decay: Any
  ) -> optax.GradientTransformationExtraArgs:
    r"""Every group's optimizer at its rate, for the build function of `inject_hyperparams`.

    Group :math:`g` is `build(c_g * learning_rate, w_g, mask)`, with :math:`w_g` its own
    weight decay or `weight_decay`, and `mask` the kernels or None (`weight_decay_on`). Its
    rate is itself injected, :math:`c_g \eta` computed at each update from the `learning_rate`
    of that update, so the state holds every group's rate of the latest update
    (`lrjax.groups.group_learning_rates` reads them; 0 before the first). Passing the rate
    rather than scaling the update after the optimizer (`optax.scale(c_g)`) makes the group
    follow its rate whatever the optimizer; for SGD, momentum SGD, Adam and AdamW, whose update
    is linear in the rate, the two are the same.

    Args:
      build: `(learning_rate, weight_decay, mask) -> transformation`, one group's optimizer.
      learning_rate: the injected learning rate :math:`\eta` (a traced scalar).
      weight_decay: the optimizer's weight decay, for the groups without their own.

    Returns:
      `optax.partition` of the groups by `rules.labels`.
    """
    mask = _kernels if self.rules.weight_decay_on == "kernels" else None

    def group(factor: float, own: float | None) -> optax.GradientTransformationExtraArgs:
      decay = weight_decay if own is None else own
      inner = optax.inject_hyperparams(lambda learning_rate: build(learning_rate, decay, mask))
      return inner(learning_rate=lambda count: factor * learning_rate)

    groups = {label: group(factor, own) for label, factor, own in self.table}
    return optax.partition(groups, self.rules.labels)
