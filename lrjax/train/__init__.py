"""The engine: a run built from a config (`build`), trained by one `Trainer` with hooks
(`trainer`, `hooks`), its jitted steps (`step`) and files (`records`, `checkpoint`)."""

from lrjax.train.api import train_and_evaluate as train_and_evaluate
from lrjax.train.trainer import Member as Member
from lrjax.train.trainer import NonFiniteLossError as NonFiniteLossError
from lrjax.train.trainer import Trainer as Trainer

__all__ = ["Member", "NonFiniteLossError", "Trainer", "train_and_evaluate"]
