"""`config.param_groups`: groups of parameters at multiples of the learning rate, each with its own
weight decay, checked where the config enters lrjax.

```python
config.param_groups = {
  "head": {"match": "^Dense_", "lr_scale": 10.0},  # a named group: a pattern, a factor
  "stem": {"match": "^(conv_init|bn_init)/", "weight_decay": 0.0},  # its own weight decay
  "layer_decay": 0.75,  # layer-wise decay by depth (the built-in ResNets)
  "weight_decay_on": "kernels",  # or "all"
}
```

Every key but `layer_decay` and `weight_decay_on` names a group: `match` is a regular expression
searched in each parameter's path joined by "/" (`"Dense_0/kernel"`, `"BasicBlock_1/BatchNorm_0/
scale"`), `lr_scale` (> 0, default 1) its factor of the learning rate, `weight_decay` (>= 0,
default the run's) its own. The parameters no group finds are the group "rest" (factor 1, the
run's weight decay); a parameter two groups find is refused. `layer_decay` d in (0, 1] multiplies
the factor of a parameter at depth i by d ** (L + 1 - i) (`lrjax.groups.layer_scales`, timm's
rule; depths of `lrjax.groups.resnet_depths`). `weight_decay_on`: the parameters a group's weight
decay applies to, "kernels" (the default, as without the field: not BatchNorm scales, biases or
other 1-D parameters) or "all".

A pattern that finds no parameter of a built-in model, a layer decay for a built-in model that
is not a ResNet, or an optimizer whose parameters cannot be grouped is refused when the config
is parsed; for a model of your own ("package.module:Class") the patterns and depths are checked
when its run is built, on its parameters.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

from lrjax.config import checks
from lrjax.config.checks import ConfigError
from lrjax.config.values import Fields, frozen
from lrjax.groups.labels import path_names
from lrjax.groups.rules import REST, WEIGHT_DECAY_ON, Group, GroupRules, ParamGroups
from lrjax.import_path import is_import_path

LAYER_DECAY, WEIGHT_DECAY_ON_KEY = "layer_decay", "weight_decay_on"
GROUP_KEYS = ("match", "lr_scale", "weight_decay")
_NAME = re.compile(r"[A-Za-z_]\w*")


def _positive(value: Any, where: str) -> float:
  if not checks.is_number(value) or not math.isfinite(value) or value <= 0:
    raise checks.fail(where, value, "a finite number > 0")
  return value


def _layer_decay(value: Any, where: str) -> float:
  if not checks.is_number(value) or not 0 < value <= 1:
    raise checks.fail(where, value, "a number in (0, 1]")
  return value


def _match(value: Any, where: str) -> str:
  if not isinstance(value, str) or not value:
    raise checks.fail(where, value, "a regular expression (searched in a parameter's path)")
  try:
    re.compile(value)
  except re.error as e:
    raise ConfigError(f"{where}={value!r} is not a regular expression: {e}") from None
  return value


def _group(name: str, spec: Any, where: str) -> Group:
  if not _NAME.fullmatch(name) or name == REST:
    raise ConfigError(
      f"{where}: a group's name is an identifier other than {REST!r} (the parameters no group "
      f"finds), got {name!r}"
    )
  spec = checks.mapping(spec, where)
  unknown = sorted(map(str, set(spec) - set(GROUP_KEYS)))
  if unknown:
    raise ConfigError(
      f"{where} takes {list(GROUP_KEYS)}, not {unknown} (config.param_groups also takes "
      f"{LAYER_DECAY!r} and {WEIGHT_DECAY_ON_KEY!r} beside the groups)"
    )
  if "match" not in spec:
    raise ConfigError(f"{where} must have a 'match', the pattern of its parameters' paths")
  weight_decay = spec.get("weight_decay")
  if weight_decay is not None:
    weight_decay = checks.number()(weight_decay, f"{where}.weight_decay")
  return Group(
    name,
    _match(spec["match"], f"{where}.match"),
    _positive(spec.get("lr_scale", 1.0), f"{where}.lr_scale"),
    weight_decay,
  )


def rules(value: Mapping[str, Any], where: str = "config.param_groups") -> GroupRules:
  """The `GroupRules` of a `config.param_groups` value.

  Args:
    value: the field's value (see the module docstring).
    where: how the field is named in a message.

  Raises:
    ConfigError: a malformed group or setting, naming it (`config.param_groups.head.lr_scale`).
  """
  value = checks.mapping(value, where)
  groups = [
    _group(str(name), spec, f"{where}.{name}")
    for name, spec in sorted(value.items())
    if name not in (LAYER_DECAY, WEIGHT_DECAY_ON_KEY)
  ]
  layer_decay = value.get(LAYER_DECAY)
  if layer_decay is not None:
    layer_decay = _layer_decay(layer_decay, f"{where}.{LAYER_DECAY}")
  on = checks.one_of(WEIGHT_DECAY_ON)(
    value.get(WEIGHT_DECAY_ON_KEY, "kernels"), f"{where}.{WEIGHT_DECAY_ON_KEY}"
  )
  return GroupRules(tuple(groups), layer_decay, on)


def check(value: Any, where: str) -> Fields:
  """`config.param_groups` checked on its own (`rules`); `check_together` checks it with the
  model and the optimizer."""
  if value is None:
    return Fields()
  rules(value, where)
  return frozen(checks.mapping(value, where))


@functools.lru_cache(maxsize=16)
def _builtin_params(model: str, stem: str) -> Any:
  """A built-in model's parameter shapes: traced, not computed (no device is touched), and
  their paths do not depend on the number of classes or the image size."""
  import jax

  from lrjax.models import registry

  module = registry.create_model(model, 10, stem=stem)
  shapes = jax.eval_shape(lambda: registry.init_variables(module, jax.random.key(0), (32, 32, 3)))
  return shapes["params"]


def _some(paths: list[str]) -> str:
  shown = paths if len(paths) <= 6 else [*paths[:3], "...", *paths[-3:]]
  return f"{', '.join(shown)} ({len(paths)} in all)"


def resolve(
  value: Mapping[str, Any], params: Any, model: str, where: str = "config"
) -> ParamGroups:
  """The groups of `value` (a `config.param_groups`) for a model's parameters.

  Args:
    value: the field's value.
    params: the model's parameters (or their shapes).
    model: the model's name (`config.model`), for the messages.
    where: how the config is named in a message.

  Raises:
    ConfigError: a group's pattern finds no parameter, two groups find one, or the model has no
      layer depths for `layer_decay`, naming the field.
  """
  import jax

  field = f"{where}.param_groups"
  group_rules = rules(value, field)
  paths = [path_names(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  found: set[str] = set()
  for path in paths:
    names = group_rules.finding(path)
    if len(names) > 1:
      raise ConfigError(
        f"{field}.{names[0]}.match and {field}.{names[1]}.match both find {'/'.join(path)}: a "
        "parameter belongs to one group"
      )
    found.update(names)
  for group in group_rules.groups:
    if group.name not in found:
      raise ConfigError(
        f"{field}.{group.name}.match={group.match!r} finds no parameter of {where}.model="
        f"{model!r}, whose parameters are {_some(['/'.join(p) for p in paths])}"
      )
  if group_rules.layer_decay is not None:
    try:
      depths = set(jax.tree.leaves(group_rules.depths(params)))
      if len(depths) < 2:  # no blocks: every parameter "the head", and the decay a no-op
        raise ValueError(f"every parameter is at depth {depths.pop()}, none in a block")
    except ValueError as e:
      raise ConfigError(
        f"{field}.{LAYER_DECAY}: {where}.model={model!r} has no layer depths (layer-wise decay "
        f"takes lrjax's ResNets): {e}"
      ) from None
  return group_rules.resolve(params)


def check_together(e: Any, where: str) -> None:
  """`e.param_groups` with `e.optimizer` and, for a built-in model, with its parameters.

  Args:
    e: the `Experiment`.
    where: how the config is named in a message.
  """
  from lrjax import optimizers

  if not e.param_groups:
    return
  if e.optimizer not in optimizers.GROUPED:
    raise ConfigError(
      f"{where}.param_groups: {where}.optimizer={e.optimizer!r} cannot group its parameters "
      f"(it takes {list(optimizers.GROUPED)}; see lrjax.optimizers)"
    )
  if not is_import_path(e.model):  # a model of your own is checked on its parameters when built
    resolve(e.param_groups, _builtin_params(e.model, e.stem), e.model, where)


def of_model(experiment: Any, model: Any, image_shape: tuple[int, ...]) -> ParamGroups | None:
  """The experiment's parameter groups for its model's parameters; None without the field.

  Args:
    experiment: the `Experiment`.
    model: its model (`lrjax.train.build.build_model`'s).
    image_shape: (H, W, C) of an image.

  Raises:
    ConfigError: as `resolve`, for a model of your own too.
  """
  if not experiment.param_groups:
    return None
  import jax

  from lrjax.models import registry

  shapes = jax.eval_shape(lambda: registry.init_variables(model, jax.random.key(0), image_shape))
  return resolve(experiment.param_groups, shapes["params"], experiment.model)


def record(groups: ParamGroups | None, experiment: Any) -> dict[str, Any]:
  """What a run's `config.json` records of its groups, under "param_groups": each one's factor
  of the learning rate and its weight decay (the run's where it has none of its own; None where
  that is scheduled), by label, and the parameters weight decay applies to; {} without groups.

  Args:
    groups: the run's groups (`of_model`'s), or None.
    experiment: the `Experiment`.
  """
  if groups is None:
    return {}
  run_decay = None if "weight_decay" in experiment.optimizer_schedules else experiment.weight_decay
  table = {
    label: {"lr_scale": factor, "weight_decay": run_decay if own is None else own}
    for label, factor, own in groups.table
  }
  return {"param_groups": {WEIGHT_DECAY_ON_KEY: groups.rules.weight_decay_on, "groups": table}}
