"""lrjax: learning-rate schedules for JAX, and the experiments to choose one with evidence."""

from lrjax.schedules.base import Schedule as Schedule
from lrjax.schedules.config import from_config as from_config
from lrjax.schedules.config import registry as registry
from lrjax.schedules.config import to_config as to_config
from lrjax.schedules.decay import constant as constant
from lrjax.schedules.decay import exponential_decay as exponential_decay
from lrjax.schedules.decay import linear_decay as linear_decay
from lrjax.schedules.decay import polynomial_decay as polynomial_decay
from lrjax.schedules.decay import step_decay as step_decay
from lrjax.schedules.decay import time_based_decay as time_based_decay

__version__ = "0.1.0"

__all__ = [
    "Schedule",
    "constant",
    "exponential_decay",
    "from_config",
    "linear_decay",
    "polynomial_decay",
    "registry",
    "step_decay",
    "time_based_decay",
    "to_config",
]
