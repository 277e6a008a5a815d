"""What the tests build runs with: a config checked into its `Experiment`, built under the
runtime this test process was set up with (`conftest.py`)."""

from lrjax import runtime
from lrjax.config.experiment import Experiment
from lrjax.train import build


def build_run(config) -> build.Run:
  experiment = Experiment.of(config)
  return build.build(experiment, runtime.for_run(experiment.runtime))
