"""lrjax: learning-rate schedules for JAX, and the experiments to choose one with evidence."""

from lrjax.groups.depth import resnet_depths as resnet_depths
from lrjax.groups.labels import decay_labels as decay_labels
from lrjax.groups.optimizer import group_learning_rates as group_learning_rates
from lrjax.groups.optimizer import per_group as per_group
from lrjax.groups.scaling import layer_decay_groups as layer_decay_groups
from lrjax.groups.scaling import scaled_groups as scaled_groups
from lrjax.plot import plot_schedules as plot_schedules
from lrjax.schedules.arithmetic import add as add
from lrjax.schedules.arithmetic import clip as clip
from lrjax.schedules.arithmetic import multiply as multiply
from lrjax.schedules.arithmetic import scale as scale
from lrjax.schedules.base import Schedule as Schedule
from lrjax.schedules.compose import choose as choose
from lrjax.schedules.compose import join as join
from lrjax.schedules.compose import per_epoch as per_epoch
from lrjax.schedules.compose import repeat as repeat
from lrjax.schedules.compose import shift as shift
from lrjax.schedules.compose import warmup as warmup
from lrjax.schedules.config import from_config as from_config
from lrjax.schedules.config import registry as registry
from lrjax.schedules.config import to_config as to_config
from lrjax.schedules.cosine import cosine_annealing as cosine_annealing
from lrjax.schedules.cosine import cosine_decay as cosine_decay
from lrjax.schedules.cosine import sgdr as sgdr
from lrjax.schedules.cosine import warmup_cosine_decay as warmup_cosine_decay
from lrjax.schedules.cyclic import cyclical as cyclical
from lrjax.schedules.cyclic import one_cycle as one_cycle
from lrjax.schedules.cyclic import triangle as triangle
from lrjax.schedules.decay import constant as constant
from lrjax.schedules.decay import exponential_decay as exponential_decay
from lrjax.schedules.decay import linear_decay as linear_decay
from lrjax.schedules.decay import polynomial_decay as polynomial_decay
from lrjax.schedules.decay import step_decay as step_decay
from lrjax.schedules.decay import tanh_decay as tanh_decay
from lrjax.schedules.decay import time_based_decay as time_based_decay
from lrjax.schedules.momentum import cyclical_momentum as cyclical_momentum
from lrjax.schedules.momentum import one_cycle_momentum as one_cycle_momentum
from lrjax.schedules.multi_period import wsd_s as wsd_s
from lrjax.schedules.noise import noisy as noisy
from lrjax.schedules.piecewise import multi_step as multi_step
from lrjax.schedules.piecewise import piecewise_constant as piecewise_constant
from lrjax.schedules.piecewise import piecewise_linear as piecewise_linear
from lrjax.schedules.plateau import PlateauState as PlateauState
from lrjax.schedules.plateau import ReduceOnPlateau as ReduceOnPlateau
from lrjax.schedules.plateau import plateau_from_config as plateau_from_config
from lrjax.schedules.plateau import reduce_on_plateau as reduce_on_plateau
from lrjax.schedules.plateau import set_learning_rate as set_learning_rate
from lrjax.schedules.power import power_scheduler as power_scheduler
from lrjax.schedules.wsd import inverse_sqrt as inverse_sqrt
from lrjax.schedules.wsd import warmup_stable_decay as warmup_stable_decay
from lrjax.schedules.wsd import wsd as wsd
from lrjax.transforms.plateau import PlateauScaleState as PlateauScaleState
from lrjax.transforms.plateau import plateau as plateau
from lrjax.transforms.plateau import plateau_config as plateau_config
from lrjax.transforms.readout import plateau_learning_rate as plateau_learning_rate
from lrjax.transforms.readout import plateau_scale as plateau_scale

__version__ = "0.1.0"

__all__ = [
  "PlateauScaleState",
  "PlateauState",
  "ReduceOnPlateau",
  "Schedule",
  "add",
  "choose",
  "clip",
  "constant",
  "cosine_annealing",
  "cosine_decay",
  "cyclical",
  "cyclical_momentum",
  "decay_labels",
  "exponential_decay",
  "from_config",
  "group_learning_rates",
  "inverse_sqrt",
  "join",
  "layer_decay_groups",
  "linear_decay",
  "multi_step",
  "multiply",
  "noisy",
  "one_cycle",
  "one_cycle_momentum",
  "per_epoch",
  "per_group",
  "piecewise_constant",
  "piecewise_linear",
  "plateau",
  "plateau_config",
  "plateau_from_config",
  "plateau_learning_rate",
  "plateau_scale",
  "plot_schedules",
  "polynomial_decay",
  "power_scheduler",
  "reduce_on_plateau",
  "registry",
  "repeat",
  "resnet_depths",
  "scale",
  "scaled_groups",
  "set_learning_rate",
  "sgdr",
  "shift",
  "step_decay",
  "tanh_decay",
  "time_based_decay",
  "to_config",
  "triangle",
  "warmup",
  "warmup_cosine_decay",
  "warmup_stable_decay",
  "wsd",
  "wsd_s",
]
