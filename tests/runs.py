"""What the tests build runs with: a config checked into its `Experiment`, built under the
runtime this test process was set up with (`conftest.py`); and what several test files check of
the runs they build."""

import jax
import numpy as np
import optax

from lrjax import runtime
from lrjax.config.experiment import Experiment
from lrjax.data import datasets as data
from lrjax.train import build
from lrjax.train.trainer import Observer


def build_run(config) -> build.Run:
  experiment = Experiment.of(config)
  return build.build(experiment, runtime.for_run(experiment.runtime))


def optimizer_as_before(e: Experiment) -> optax.GradientTransformation:
  """The optimizer of `e` ("sgd" or "adamw") as `make_optimizer` wrote it before the optional
  fields (`optimizer_schedules`, `param_groups`, `plateau`) existed."""
  mask = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)

  def before(learning_rate):
    if e.optimizer == "adamw":
      return optax.adamw(learning_rate, weight_decay=e.weight_decay, mask=mask)
    base = optax.sgd(learning_rate, momentum=e.momentum or None, nesterov=e.nesterov)
    if e.weight_decay:
      return optax.chain(optax.add_decayed_weights(e.weight_decay, mask=mask), base)
    return base

  return optax.inject_hyperparams(before)(learning_rate=0.0)


def assert_the_program_it_was(run: build.Run) -> None:
  """`run`'s step and the one of `optimizer_as_before` compile to the same program and give
  bitwise the same parameters over three updates."""
  old = optimizer_as_before(run.experiment)
  states = [run.init_state(), run.init_state().replace(tx=old)]
  states[1] = states[1].replace(opt_state=old.init(states[1].params))
  perm = np.arange(run.num_train)
  lowered = [run.train_step.lower(s, run.train_batch(perm, 0), run.schedule) for s in states]
  assert lowered[0].as_text() == lowered[1].as_text()
  for i in range(3):
    batch = run.train_batch(perm, i)
    states = [run.train_step(s, batch, run.schedule)[0] for s in states]
  for a, b in zip(jax.tree.leaves(states[0].params), jax.tree.leaves(states[1].params)):
    np.testing.assert_array_equal(a, b)


class EveryStep(Observer):
  """Keeps every step's fetched metrics, as floats (a population's first member's)."""

  def __init__(self):
    self.metrics = {}

  def wants_sync(self, trainer, step):
    return True

  def see(self, trainer, moment):
    for step, m in moment.fetched:
      self.metrics[step] = {k: float(np.atleast_1d(v)[0]) for k, v in m.items()}


def synthetic_arrays(num_train: int, permute_test: bool) -> dict:
  """A user loader's arrays of 16x16x3 synthetic images (4 classes, 64 test images); with
  `permute_test`, the test labels permuted: what a run reading validation data alone ignores."""
  ds = data.synthetic_dataset((16, 16, 3), num_train, 64, 4)
  test_labels = ds.test_labels
  if permute_test:
    test_labels = np.random.default_rng(7).permutation(test_labels)
  return {
    "train_images": ds.train_images,
    "train_labels": ds.train_labels,
    "test_images": ds.test_images,
    "test_labels": test_labels,
    "num_classes": 4,
  }
