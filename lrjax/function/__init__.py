"""Studies of your own training function (`config.study.train_fn`): the contract and `TrainJob`
(`job`), and one run through the function (`run`)."""

from lrjax.function.job import FunctionFailed as FunctionFailed
from lrjax.function.job import TrainJob as TrainJob

__all__ = ["FunctionFailed", "TrainJob"]
