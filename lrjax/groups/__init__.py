"""A learning-rate schedule and a weight decay per group of parameters (optax's partitioning).

`per_group(optimizer, groups, labels)` gives each labelled group its own schedule and weight
decay; `group_learning_rates(state)` reads their current rates. The labels come from
`decay_labels` (no decay on BatchNorm scales and biases), `leaf_labels(fn)` or any pytree;
`scaled_groups` sets groups at multiples of one schedule (a head at 10x) and
`layer_decay_groups` builds layer-wise learning-rate decay from a depth function
(`resnet_depths` for lrjax's ResNets). `GroupRules` (`lrjax.groups.rules`) chooses groups by
rules on the parameters' paths, each at a constant factor of one injected rate: the trainer's
`config.param_groups`.
"""

from lrjax.groups.depth import layer_depths as layer_depths
from lrjax.groups.depth import layer_scales as layer_scales
from lrjax.groups.depth import resnet_depths as resnet_depths
from lrjax.groups.labels import decay_labels as decay_labels
from lrjax.groups.labels import is_decayed as is_decayed
from lrjax.groups.labels import label_leaves as label_leaves
from lrjax.groups.labels import leaf_labels as leaf_labels
from lrjax.groups.optimizer import group_learning_rates as group_learning_rates
from lrjax.groups.optimizer import per_group as per_group
from lrjax.groups.rules import Group as Group
from lrjax.groups.rules import GroupRules as GroupRules
from lrjax.groups.rules import ParamGroups as ParamGroups
from lrjax.groups.scaling import layer_decay_groups as layer_decay_groups
from lrjax.groups.scaling import scaled_groups as scaled_groups
from lrjax.groups.scaling import scaled_schedule as scaled_schedule

__all__ = [
  "Group",
  "GroupRules",
  "ParamGroups",
  "decay_labels",
  "group_learning_rates",
  "is_decayed",
  "label_leaves",
  "layer_decay_groups",
  "layer_depths",
  "layer_scales",
  "leaf_labels",
  "per_group",
  "resnet_depths",
  "scaled_groups",
  "scaled_schedule",
]
