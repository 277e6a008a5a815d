"""The engine: a run built from a checked experiment (`build`), trained by one `Trainer`
(`trainer`) that keeps its claims, checkpoints and files (`storage`) and tells its observers
(`observers`), its jitted steps (`step`), and its summary (`records`)."""

from lrjax.train.api import train_and_evaluate as train_and_evaluate
from lrjax.train.trainer import Member as Member
from lrjax.train.trainer import NonFiniteLossError as NonFiniteLossError
from lrjax.train.trainer import Trainer as Trainer

__all__ = ["Member", "NonFiniteLossError", "Trainer", "train_and_evaluate"]
