"""Small builders from an experiment config to what a run needs, each usable alone.

`build(config)` composes them into a `Run`: the config checked (`settings.check_config`), the
runtime applied (`lrjax.runtime.setup`), the placement on this machine's devices
(`devices.make_placement`), the data (`load_data`), the schedule in steps (`resolve_schedule`),
the model on the runtime's convolution (`build_model`), the optimizer (`build_optimizer`) and
the jitted steps with the runtime's compiler options (`step.jit_steps`). Nothing trains here and
nothing is compiled until a step is first called; `lrjax.train.trainer` does the training.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import runtime as runtime_lib
from lrjax.data import datasets as data_lib
from lrjax.data import validation
from lrjax.import_path import is_import_path
from lrjax.models import registry
from lrjax.runtime import devices
from lrjax.schedules.base import Schedule
from lrjax.train import optimizers, settings, snapshots
from lrjax.train import step as step_lib
from lrjax.train.resolve import resolve_schedule

# The runs of a study share their dataset: read (and un-gzip) it once per process, and hold out
# its validation split once.
_load_dataset = functools.lru_cache(maxsize=2)(data_lib.load_dataset)
_hold_out = functools.lru_cache(maxsize=4)(validation.hold_out)


def load_data(config: Any) -> data_lib.Dataset:
  """The config's dataset, held in host memory, with its validation split (the dataset's own,
  `config.validation_split` of a tfds dataset, or `config.validation_fraction` of the training
  split held out); cached: the runs of a study share it."""
  splits = (config.get("train_split", "train"), config.get("test_split", "test"))
  if config.get("validation_split", ""):
    if config.validation_split in splits:
      raise ValueError(
        f"config.validation_split={config.validation_split!r} is the training or test split: "
        "validation data must be neither"
      )
    splits = (*splits, config.validation_split)
  raw = _load_dataset(config.dataset, config.data_dir or None, splits=splits)
  return _hold_out(raw, config.get("validation_fraction", 0.0))


def num_train(config: Any, dataset: data_lib.Dataset) -> int:
  """The training examples of each epoch: all, or the first `config.train_limit` of its order."""
  return min(len(dataset.train_labels), config.train_limit or len(dataset.train_labels))


def steps_per_epoch(config: Any) -> int:
  """Updates per epoch of `config`, from its dataset's size (read once per process), without
  building the run: what a study needs to plan where a forked cooldown starts."""
  steps = num_train(config, load_data(config)) // config.batch_size
  if steps < 1:
    raise ValueError(
      f"config.batch_size={config.batch_size} is larger than the "
      f"{num_train(config, load_data(config))} training examples"
    )
  return steps


def build_model(config: Any, dataset: data_lib.Dataset, convolution: Any = None) -> nn.Module:
  """A built-in model by name, or the user's `"package.module:Class"`, checked on one batch;
  its convolutions compute with `convolution` (the runtime's; XLA's when None)."""
  dtype = jnp.bfloat16 if config.half_precision else jnp.float32
  conv = {} if convolution is None else {"convolution": convolution}
  if not is_import_path(config.model):
    return registry.create_model(
      config.model, dataset.num_classes, dtype=dtype, stem=config.stem, **conv
    )
  model = registry.build_user_model(
    config.model, dataset.num_classes, dtype, image_shape=dataset.image_shape, **conv
  )
  registry.check_model_output(model, config.model, dataset.image_shape, dataset.num_classes)
  return model


def build_optimizer(config: Any) -> optax.GradientTransformation:
  return optimizers.make_optimizer(
    config.optimizer,
    momentum=config.momentum,
    nesterov=config.nesterov,
    weight_decay=config.weight_decay,
  )


def _stats(values: np.ndarray) -> tuple[float, ...]:
  return tuple(np.asarray(values, np.float32).tolist())


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
  """Everything one training run needs, validated; see `build`."""

  config: Any
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

  @property
  def train_step(self):
    return self.steps.train

  @property
  def eval_batch(self) -> int:
    return settings.round_up(self.config.eval_batch_size, self.placement.num_devices)

  def init_state(self) -> step_lib.TrainState:
    state = step_lib.create_train_state(
      self.model, self.tx, self.dataset.image_shape, self.config.seed
    )
    return self.placement.put_replicated(state)

  def train_batch(self, perm: np.ndarray, i: int) -> dict[str, jax.Array]:
    size = self.config.batch_size
    idx = np.sort(perm[i * size : (i + 1) * size])
    ds = self.dataset
    return self.placement.put_batch({"image": ds.train_images[idx], "label": ds.train_labels[idx]})

  def epoch_order(self, epoch: int) -> np.ndarray:
    """The training examples of `epoch`, in order: a function of (seed, epoch) only."""
    n = len(self.dataset.train_labels)
    return data_lib.epoch_permutation(self.config.seed, epoch, n)[: self.num_train]

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
    statistics recomputed there on `config.bn_recompute_batches` training batches (as the
    method's authors require); any other state as it is."""
    if self.config.optimizer not in optimizers.SCHEDULE_FREE:
      return state
    params = optimizers.eval_params(self.config.optimizer, state.opt_state, state.params)
    state = state.replace(params=params)
    if not jax.tree.leaves(state.batch_stats):
      return state
    order = self.epoch_order(0)
    n = min(self.config.get("bn_recompute_batches", 8), self.steps_per_epoch)
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

  def evaluate(self, state: step_lib.TrainState, *, prepared: bool = False) -> dict[str, float]:
    """Loss and accuracy of `state` (at its `eval_state`, unless `prepared`) on the test split,
    and on the validation split where the dataset has one (`validation_loss`, ...)."""
    state = state if prepared else self.eval_state(state)
    splits = ("test", "validation") if self.dataset.has_validation else ("test",)
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
    """What `config.json` records: the config, the schedule in steps, the run's sizes."""
    return {
      "config": self.config.to_dict() if hasattr(self.config, "to_dict") else dict(self.config),
      "runtime": self.runtime.record(),
      "schedule": self.schedule.to_config(),
      "steps_per_epoch": self.steps_per_epoch,
      "total_steps": self.total_steps,
      "num_train": self.num_train,
      "num_validation": len(self.dataset.validation_labels) if self.dataset.has_validation else 0,
      "devices": self.placement.num_devices,
      "processes": jax.process_count(),
      "params": self.param_count(),
    }


def build(config: Any) -> Run:
  """Checks `config`, applies its runtime and builds its run; raises ValueError naming the
  first bad field (`lrjax.runtime.RuntimeMismatch` for a runtime this process cannot take)."""
  settings.check_config(config)
  runtime = runtime_lib.setup(config.get("runtime"))
  placement = devices.make_placement()
  settings.check_devices(config, placement.num_devices)
  ds = load_data(config)
  train_examples = num_train(config, ds)
  spe = steps_per_epoch(config)
  total_steps = spe * config.num_epochs
  schedule = resolve_schedule(config.schedule, spe, total_steps)
  model = build_model(config, ds, runtime.convolution())
  steps = step_lib.jit_steps(
    model,
    _stats(ds.mean),
    _stats(ds.std),
    config.augment,
    config.pad,
    config.flip,
    placement.replicated,
    placement.batch,
    tuple(sorted(runtime.compiler_options().items())),
  )
  snapshot_epochs = (
    tuple(snapshots.cycle_end_epochs(schedule, spe, total_steps))
    if config.get("snapshot_ensemble", False)
    else ()
  )
  return Run(
    config=config,
    runtime=runtime,
    placement=placement,
    dataset=ds,
    num_train=train_examples,
    steps_per_epoch=spe,
    total_steps=total_steps,
    schedule=schedule,
    model=model,
    tx=build_optimizer(config),
    steps=steps,
    snapshot_epochs=snapshot_epochs,
  )
