"""Small builders from a checked experiment (`lrjax.config.experiment.Experiment`) to what a run
needs, each usable alone.

`build(experiment, runtime)` composes them into a `Run`: the placement on this machine's devices
(`devices.make_placement`), the data (`load_data`), the run's length and its schedule in steps
(`length`) and any other hyperparameter's (`optimizer_schedules_in_steps`; on the samples seen
where the batch size ramps: `lrjax.config.batch_ramp`, `lrjax.train.ramp`), its plateau in steps
(`lrjax.config.plateau.of_run`), the model on the runtime's convolution (`build_model`), its
parameter groups (`lrjax.config.param_groups.of_model`), the optimizer (`build_optimizer`) and
the jitted steps with the runtime's compiler options (`step.jit_steps`). Nothing trains here,
nothing is compiled until a step is first called, and nothing about the process changes
(`lrjax.runtime.setup` did that once, where the process started); `lrjax.train.trainer` does the
training.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import optimizers
from lrjax import runtime as runtime_lib
from lrjax.config import batch_ramp
from lrjax.config import param_groups as groups_lib
from lrjax.config import plateau as plateau_lib
from lrjax.config.checks import ConfigError
from lrjax.config.durations import resolve_schedule
from lrjax.config.experiment import Experiment
from lrjax.data import datasets as data_lib
from lrjax.data import validation
from lrjax.groups.rules import ParamGroups
from lrjax.import_path import is_import_path
from lrjax.models import registry
from lrjax.runtime import devices
from lrjax.schedules.base import Schedule
from lrjax.train import ramp, snapshots
from lrjax.train import step as step_lib

# The runs of a study share their dataset: read (and un-gzip) it once per process, and hold out
# its validation split once. Bounded: a long-lived worker keeps the last two datasets at most.
_load_dataset = functools.lru_cache(maxsize=2)(data_lib.load_dataset)
_hold_out = functools.lru_cache(maxsize=2)(validation.hold_out)


def load_data(experiment: Experiment) -> data_lib.Dataset:
  """The experiment's dataset, held in host memory, with its validation split (the dataset's
  own, `validation_split` of a tfds dataset, or `validation_fraction` of the training split held
  out); cached: the runs of a study share it."""
  e = experiment
  splits = (e.train_split, e.test_split) + ((e.validation_split,) if e.validation_split else ())
  raw = _load_dataset(e.dataset, e.data_dir or None, splits=splits)
  return _hold_out(raw, e.validation_fraction)


@dataclasses.dataclass(frozen=True)
class Length:
  """How long a run is, derived once from its experiment and its dataset's size."""

  num_train: int  # training examples of each epoch
  steps_per_epoch: int
  total_steps: int


def length(experiment: Experiment, dataset: data_lib.Dataset | None = None) -> Length:
  """The run's `Length`: every epoch trains on all the training examples, or the first
  `train_limit` of its order, in whole batches. `dataset`: the loaded one (default: loaded here,
  once per process), so that a study can plan without building its runs.

  Raises:
    ConfigError: the batch size exceeds the training examples.
  """
  dataset = load_data(experiment) if dataset is None else dataset
  available = len(dataset.train_labels)
  num_train = min(available, experiment.train_limit or available)
  steps = num_train // experiment.batch_size
  if steps < 1:
    raise ConfigError(
      f"config.batch_size={experiment.batch_size} is larger than the {num_train} training "
      "examples (override with --config.batch_size=...)"
    )
  return Length(num_train, steps, steps * experiment.num_epochs)


def schedule_in_steps(experiment: Experiment, run_length: Length, config: Any = None) -> Schedule:
  """The experiment's schedule (or `config`, another of its schedule configs) with every
  duration in steps (`lrjax.config.durations`)."""
  config = experiment.schedule if config is None else config
  return resolve_schedule(
    config,
    run_length.steps_per_epoch,
    run_length.total_steps,
    samples_per_step=experiment.batch_size,
    tokens_per_sample=experiment.tokens_per_sample,
  )


# The values a scheduled hyperparameter may take, [least, below): Adam's bias correction divides
# by 1 - b ** t, so b1 and b2 stay below 1.
_RANGES = {
  "momentum": (0.0, math.inf),
  "weight_decay": (0.0, math.inf),
  "b1": (0.0, 1.0),
  "b2": (0.0, 1.0),
}


def optimizer_schedules_in_steps(experiment: Experiment, run_length: Length) -> dict[str, Schedule]:
  """The experiment's `optimizer_schedules`, each with every duration in steps, as the learning
  rate's (`schedule_in_steps`).

  Raises:
    ConfigError: a schedule takes a value its hyperparameter cannot at some step of the run
      (negative, not finite, or b1, b2 at 1 or more).
  """
  out = {}
  for name, config in experiment.optimizer_schedules.items():
    schedule = schedule_in_steps(experiment, run_length, config)
    values = np.asarray(schedule(np.arange(run_length.total_steps)))
    least, below = _RANGES[name]
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= least) & (values < below)))
    if bad.size:
      raise ConfigError(
        f"config.optimizer_schedules.{name} must stay in [{least:g}, {below:g}), got "
        f"{float(values[bad[0]])!r} at step {int(bad[0])}"
      )
    out[name] = schedule
  return out


def build_model(
  experiment: Experiment, dataset: data_lib.Dataset, convolution: Any = None
) -> nn.Module:
  """A built-in model by name, or the user's `"package.module:Class"`, checked on one batch;
  its convolutions compute with `convolution` (the runtime's; XLA's when None)."""
  e = experiment
  dtype = jnp.bfloat16 if e.half_precision else jnp.float32
  conv = {} if convolution is None else {"convolution": convolution}
  if not is_import_path(e.model):
    return registry.create_model(e.model, dataset.num_classes, dtype=dtype, stem=e.stem, **conv)
  model = registry.build_user_model(
    e.model, dataset.num_classes, dtype, image_shape=dataset.image_shape, **conv
  )
  registry.check_model_output(model, e.model, dataset.image_shape, dataset.num_classes)
  return model


def build_optimizer(
  experiment: Experiment,
  plateau: plateau_lib.Plateau | None = None,
  param_groups: ParamGroups | None = None,
) -> optax.GradientTransformation:
  """The experiment's optimizer, with its scheduled hyperparameters injected, and `plateau`
  (the experiment's, in steps: `lrjax.config.plateau.of_run`) chained after it; `param_groups`:
  its groups for its model (`lrjax.config.param_groups.of_model`), which its field needs."""
  e = experiment
  if e.param_groups and param_groups is None:
    raise ValueError("config.param_groups needs param_groups, resolved for the model (of_model)")
  return optimizers.make_optimizer(
    e.optimizer,
    momentum=e.momentum,
    nesterov=e.nesterov,
    weight_decay=e.weight_decay,
    scheduled=tuple(sorted(e.optimizer_schedules)),
    plateau=None if plateau is None else dict(plateau.settings),
    param_groups=param_groups,
  )


def _stats(values: np.ndarray) -> tuple[float, ...]:
  return tuple(np.asarray(values, np.float32).tolist())


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
  """Everything one training run needs, validated; see `build`."""

  experiment: Experiment
  runtime: runtime_lib.Runtime
  placement: devices.Placement
  dataset: data_lib.Dataset
  num_train: int
  steps_per_epoch: int
  total_steps: int
  schedule: Schedule
  model: nn.Module
  tx: optax.GradientTransformation
  steps: step_lib.Steps
  snapshot_epochs: tuple[int, ...]
  epochs: batch_ramp.Epochs  # each epoch's batch size and updates (`config.batch_ramp`)
  optimizer_schedules: Mapping[str, Schedule] = dataclasses.field(default_factory=dict)
  plateau: plateau_lib.Plateau | None = None
  param_groups: ParamGroups | None = None  # config.param_groups, for the model's parameters

  @property
  def train_step(self):
    return self.steps.train

  @property
  def step_schedules(self) -> step_lib.Schedules:
    """What the train step takes: the learning rate's schedule alone (the program of a run
    without optimizer schedules), else every injected hyperparameter's by name."""
    if not self.optimizer_schedules:
      return self.schedule
    return {"learning_rate": self.schedule, **self.optimizer_schedules}

  @property
  def eval_batch(self) -> int:
    """The evaluation batch, rounded up to a multiple of the devices."""
    n = self.placement.num_devices
    return -(-self.experiment.eval_batch_size // n) * n

  def init_state(self) -> step_lib.TrainState:
    state = step_lib.create_train_state(
      self.model,
      self.tx,
      self.dataset.image_shape,
      self.experiment.seed,
      plateau=self.plateau is not None,
    )
    return self.placement.put_replicated(state)

  def train_batch(self, perm: np.ndarray, i: int, size: int = 0) -> dict[str, jax.Array]:
    """Batch `i` of `perm` in batches of `size` (0: `config.batch_size`)."""
    size = size or self.experiment.batch_size
    idx = np.sort(perm[i * size : (i + 1) * size])
    ds = self.dataset
    return self.placement.put_batch({"image": ds.train_images[idx], "label": ds.train_labels[idx]})

  def epoch_order(self, epoch: int) -> np.ndarray:
    """The training examples of `epoch`, in order: a function of (seed, epoch) only."""
    n = len(self.dataset.train_labels)
    return data_lib.epoch_permutation(self.experiment.seed, epoch, n)[: self.num_train]

  def _batches(self, split: str = "test"):
    """The split's examples in padded batches; `mask` marks the real rows."""
    ds, size = self.dataset, self.eval_batch
    images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
    for start in range(0, len(labels), size):
      img, lab = images[start : start + size], labels[start : start + size]
      real, pad = len(lab), size - len(lab)
      mask = np.concatenate([np.ones(len(lab), np.float32), np.zeros(pad, np.float32)])
      if pad:
        img = np.concatenate([img, np.zeros((pad, *img.shape[1:]), img.dtype)])
        lab = np.concatenate([lab, np.zeros(pad, lab.dtype)])
      yield self.placement.put_batch({"image": img, "label": lab, "mask": mask}), real

  def eval_state(self, state: step_lib.TrainState) -> step_lib.TrainState:
    """The state to evaluate: for schedule-free optimizers their averaged point, with BatchNorm
    statistics recomputed there on `bn_recompute_batches` training batches (as the method's
    authors require); any other state as it is."""
    if self.experiment.optimizer not in optimizers.SCHEDULE_FREE:
      return state
    params = optimizers.eval_params(self.experiment.optimizer, state.opt_state, state.params)
    state = state.replace(params=params)
    if not jax.tree.leaves(state.batch_stats):
      return state
    order = self.epoch_order(0)
    n = min(self.experiment.bn_recompute_batches, self.steps_per_epoch)
    stats = [self.steps.batch_stats(state, self.train_batch(order, i)["image"]) for i in range(n)]
    return state.replace(batch_stats=jax.tree.map(lambda *s: sum(s) / len(s), *stats))

  def predict(self, state: step_lib.TrainState, *, prepared: bool = False) -> np.ndarray:
    """Test-set softmax probabilities, [num_test, num_classes]; `prepared`: `state` comes from
    `eval_state` already (the loop prepares it once for both evaluating and predicting)."""
    state = state if prepared else self.eval_state(state)
    out = [
      np.asarray(self.steps.predict(state, batch["image"]))[:n] for batch, n in self._batches()
    ]
    return np.concatenate(out)

  def evaluate(
    self,
    state: step_lib.TrainState,
    *,
    prepared: bool = False,
    splits: tuple[str, ...] = ("test", "validation"),
  ) -> dict[str, float]:
    """Loss and accuracy of `state` (at its `eval_state`, unless `prepared`) on the test split,
    and on the validation split where the dataset has one (`validation_loss`, ...); `splits`:
    those of the two to evaluate."""
    state = state if prepared else self.eval_state(state)
    splits = tuple(s for s in splits if s == "test" or self.dataset.has_validation)
    out = {}
    for split in splits:
      sums = [self.steps.evaluate(state, batch) for batch, _ in self._batches(split)]
      total = jax.device_get(jax.tree.map(lambda *x: sum(x), *sums))
      count = float(total["count"])
      out[f"{split}_loss"] = float(total["loss_sum"]) / count
      out[f"{split}_accuracy"] = float(total["correct"]) / count
    return out

  def param_count(self) -> int:
    key, shape = jax.random.PRNGKey(0), self.dataset.image_shape
    variables = jax.eval_shape(lambda: registry.init_variables(self.model, key, shape))
    return registry.count_params(variables["params"])

  def resolved_config(self) -> dict[str, Any]:
    """What `config.json` records: the config, the schedules in steps, the run's sizes."""
    scheduled = {n: s.to_config() for n, s in self.optimizer_schedules.items()}
    return {
      "config": self.experiment.to_dict(),
      "runtime": self.runtime.record(),
      "schedule": self.schedule.to_config(),
      **({"optimizer_schedules": scheduled} if scheduled else {}),
      **({"plateau": self.plateau.to_dict()} if self.plateau else {}),
      **groups_lib.record(self.param_groups, self.experiment),
      **({"batch_ramp": self.epochs.to_dict()} if self.epochs.ramped else {}),
      "steps_per_epoch": self.steps_per_epoch,
      "total_steps": self.total_steps,
      "num_train": self.num_train,
      "num_validation": len(self.dataset.validation_labels) if self.dataset.has_validation else 0,
      "devices": self.placement.num_devices,
      "processes": jax.process_count(),
      "params": self.param_count(),
    }


def build(experiment: Experiment, runtime: runtime_lib.Runtime) -> Run:
  """The run of `experiment` under `runtime` (`lrjax.runtime.for_run(experiment.runtime)`): see
  the module docstring. Changes nothing about the process.

  Raises:
    ConfigError: the batch size does not fit the data or the devices, an optimizer schedule
      leaves its hyperparameter's range, or a plateau has no validation split to read.
    ValueError: the data or the model cannot be loaded (naming `config.dataset`, `config.model`).
  """
  placement = devices.make_placement()
  if experiment.batch_size % placement.num_devices:
    raise ConfigError(
      f"config.batch_size must be divisible by the number of devices "
      f"({placement.num_devices}), got {experiment.batch_size} (override with "
      "--config.batch_size=...)"
    )
  ds = load_data(experiment)
  run_length = length(experiment, ds)
  epochs = batch_ramp.of_run(experiment, run_length.num_train, placement.num_devices)
  on_samples = ramp.samples_length(run_length, epochs, experiment.num_epochs)
  schedule = ramp.on_samples(schedule_in_steps(experiment, on_samples), epochs)
  scheduled = optimizer_schedules_in_steps(experiment, on_samples)
  scheduled = {n: ramp.on_samples(s, epochs, rate=False) for n, s in scheduled.items()}
  plateau = plateau_lib.of_run(
    experiment, run_length.steps_per_epoch, run_length.total_steps, ds.has_validation
  )
  model = build_model(experiment, ds, runtime.convolution())
  param_groups = groups_lib.of_model(experiment, model, ds.image_shape)
  steps = step_lib.jit_steps(
    model,
    _stats(ds.mean),
    _stats(ds.std),
    experiment.augment,
    experiment.pad,
    experiment.flip,
    placement.replicated,
    placement.batch,
    tuple(sorted(runtime.compiler_options().items())),
  )
  snapshot_epochs = (
    tuple(snapshots.cycle_end_epochs(schedule, run_length.steps_per_epoch, run_length.total_steps))
    if experiment.snapshot_ensemble
    else ()
  )
  return Run(
    experiment=experiment,
    runtime=runtime,
    placement=placement,
    dataset=ds,
    num_train=run_length.num_train,
    steps_per_epoch=run_length.steps_per_epoch,
    total_steps=epochs.start(experiment.num_epochs),
    schedule=schedule,
    model=model,
    tx=build_optimizer(experiment, plateau, param_groups),
    param_groups=param_groups,
    steps=steps,
    snapshot_epochs=snapshot_epochs,
    epochs=epochs,
    optimizer_schedules=scheduled,
    plateau=plateau,
  )
