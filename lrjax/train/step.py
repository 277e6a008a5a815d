"""The train state, the optimizer, and the pure train and eval steps.

The optimizer is built with `optax.inject_hyperparams` and a placeholder learning rate; the train
step writes `schedule(step)` into the optimizer state before each update. The schedule is an
ordinary argument of the jitted step (a pytree), not a constant baked into the program, so every
schedule of one kind, whatever its values, runs the same compiled step, and the current learning
rate is visible in `state.opt_state`. A run that schedules other hyperparameters too
(`config.optimizer_schedules`: momentum, weight decay, Adam's b1 and b2) passes a mapping from
each injected hyperparameter's name to its schedule instead (`Run.step_schedules`), and each is
written alike.

A run with a plateau (`config.plateau`) carries its metric in the train state
(`TrainState.plateau`, a `PlateauFeed`): the loop writes the latest validation metric there, and
the step passes it to the optimizer's update as `value=`, with `value_is_new=` true for the one
update after it was written. Both are traced leaves, so one compiled step serves every value,
and the checkpoint keeps them. A run without one carries None there and passes nothing: the
program it was without plateaus.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from lrjax.data import preprocess
from lrjax.models import registry
from lrjax.schedules.base import Schedule
from lrjax.schedules.compose import choose
from lrjax.transforms.readout import plateau_scale


class PlateauFeed(NamedTuple):
  """The metric a plateau reads: `value` (float32) and whether no update has read it yet
  (`is_new`, bool); with a leading axis of K for a vmapped population."""

  value: jax.Array
  is_new: jax.Array

  @classmethod
  def nothing(cls) -> PlateauFeed:
    """The feed before the first evaluation: no value to read."""
    return cls(jnp.zeros((), jnp.float32), jnp.zeros((), bool))


class TrainState(struct.PyTreeNode):
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  key: jax.Array  # raw uint32 key: augmentation noise for step t is fold_in(key, t)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)
  plateau: PlateauFeed | None = None  # a run with a plateau's metric; None: no leaves at all

  def checkpoint_items(self) -> dict[str, Any]:
    items = {
      "step": self.step,
      "params": self.params,
      "batch_stats": self.batch_stats,
      "opt_state": self.opt_state,
      "key": self.key,
    }
    if self.plateau is not None:
      items["plateau"] = self.plateau
    return items


@functools.lru_cache(maxsize=32)
def _jitted_init(model: nn.Module, tx: optax.GradientTransformation) -> Callable:
  """The model's and the optimizer's initialisation as one program, compiled once per model and
  optimizer (a study's runs share it). Jitted: op-by-op initialisation of a ResNet takes many
  seconds on a CPU, and jit's outputs are new buffers (prodigy and dog keep a copy of the
  initial parameters, which must not alias the donated ones)."""

  def init(key, x):
    variables = model.init(registry.init_rngs(key), x, train=False)
    return variables, tx.init(variables["params"])

  return jax.jit(init)


def create_train_state(
  model: nn.Module,
  tx: optax.GradientTransformation,
  input_shape: tuple[int, ...],
  seed: int,
  *,
  plateau: bool = False,
) -> TrainState:
  """Initialises parameters from `seed` alone, so every schedule of a study starts alike;
  `plateau`: the state carries a `PlateauFeed` (`tx` chains `lrjax.plateau`)."""
  init_key, aug_key = jax.random.split(jax.random.PRNGKey(seed))
  x = jnp.zeros((1, *input_shape), jnp.float32)
  variables, opt_state = _jitted_init(model, tx)(init_key, x)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=variables["params"],
    batch_stats=variables.get("batch_stats", {}),
    opt_state=opt_state,
    key=aug_key,
    tx=tx,
    plateau=PlateauFeed.nothing() if plateau else None,
  )


# The learning rate's schedule alone, or each injected hyperparameter's name -> its schedule.
Schedules = Schedule | Mapping[str, Schedule]

# The per-step metric of an injected hyperparameter: its name, but "lr" for the learning rate.
METRIC = {"learning_rate": "lr"}


def hyperparameters_at(schedules: Schedules, step: jax.Array) -> dict[str, jax.Array]:
  """The optimizer's injected hyperparameters at `step`, by name (optax's: "learning_rate").

  Args:
    schedules: the learning rate's schedule, or a mapping from each injected hyperparameter's
      name ("learning_rate", "momentum", "weight_decay", "b1", "b2") to its schedule.
    step: the update about to be made, 0-based.
  """
  if isinstance(schedules, Schedule):
    return {"learning_rate": schedules(step)}
  return {name: schedule(step) for name, schedule in schedules.items()}


def with_hyperparameters(opt_state: Any, values: Mapping[str, jax.Array]) -> Any:
  """`opt_state` (an `optax.inject_hyperparams` state) with `values` as its hyperparameters.

  Args:
    opt_state: the optimizer's state (`lrjax.optimizers.make_optimizer`'s).
    values: a value for every hyperparameter it injects, and no other.

  Raises:
    ValueError: `values` names other hyperparameters than the optimizer injects (a run with
      `config.optimizer_schedules` passes `Run.step_schedules`, not its learning rate's alone).
  """
  hyper = dict(opt_state.hyperparams)
  if set(values) != set(hyper):
    raise ValueError(
      f"the optimizer injects {sorted(hyper)} but the step has schedules for {sorted(values)}: "
      "pass the run's step_schedules"
    )
  for name, value in values.items():
    hyper[name] = jnp.asarray(value, hyper[name].dtype)
  return opt_state._replace(hyperparams=hyper)


def train_step(
  state: TrainState,
  batch: dict[str, jax.Array],
  schedule: Schedules,
  *,
  model: nn.Module,
  mean: Any,
  std: Any,
  augment: bool,
  pad: int = 4,
  flip: bool = True,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SGD update on a batch of uint8 images; returns the new state and per-step metrics:
  "loss", "accuracy", "lr" and each other scheduled hyperparameter by its name ("momentum", ...).
  `schedule`: the learning rate's, or every injected hyperparameter's (`hyperparameters_at`).
  With a plateau (`state.plateau`), "lr" is the update's effective learning rate, the
  schedule's times "plateau_scale", the scale the update applied."""
  values = hyperparameters_at(schedule, state.step)
  images = batch["image"]
  if augment:
    images = preprocess.augment(
      jax.random.fold_in(state.key, state.step), images, pad=pad, flip=flip
    )
  x = preprocess.normalize(images, mean, std)

  def loss_fn(params):
    logits, updates = model.apply(
      {"params": params, "batch_stats": state.batch_stats},
      x,
      train=True,
      mutable=["batch_stats"],
      rngs={"dropout": jax.random.fold_in(state.key, -1 - state.step)},
    )
    logits = logits.astype(jnp.float32)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    return loss, (logits, updates.get("batch_stats", state.batch_stats))

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  opt_state = with_hyperparameters(state.opt_state, values)
  feed = state.plateau
  fed = {} if feed is None else {"value": feed.value, "value_is_new": feed.is_new}
  updates, opt_state = state.tx.update(grads, opt_state, state.params, **fed)
  new_state = state.replace(
    step=state.step + 1,
    params=optax.apply_updates(state.params, updates),
    batch_stats=batch_stats,
    opt_state=opt_state,
  )
  correct = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
  scheduled = {METRIC.get(name, name): value for name, value in values.items()}
  if feed is not None:  # read once: the next update waits for the next evaluation
    new_state = new_state.replace(plateau=feed._replace(is_new=jnp.zeros_like(feed.is_new)))
    scale = plateau_scale(opt_state)
    scheduled |= {"lr": scheduled["lr"] * scale, "plateau_scale": scale}
  return new_state, {"loss": loss, "accuracy": correct, **scheduled}


def _logits(state: TrainState, images: jax.Array, model: nn.Module, mean: Any, std: Any):
  x = preprocess.normalize(images, mean, std)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  return model.apply(variables, x, train=False).astype(jnp.float32)


def eval_step(
  state: TrainState, batch: dict[str, jax.Array], *, model: nn.Module, mean: Any, std: Any
) -> dict[str, jax.Array]:
  """Sums of loss, correct predictions and examples; `batch["mask"]` marks padding rows."""
  logits = _logits(state, batch["image"], model, mean, std)
  mask = batch["mask"].astype(jnp.float32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
  correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
  return {
    "loss_sum": jnp.sum(loss * mask),
    "correct": jnp.sum(correct * mask),
    "count": jnp.sum(mask),
  }


def predict_probs(
  state: TrainState, images: jax.Array, *, model: nn.Module, mean: Any, std: Any
) -> jax.Array:
  """Softmax probabilities (for snapshot ensembles)."""
  return jax.nn.softmax(_logits(state, images, model, mean, std), axis=-1)


def batch_stats_of(
  state: TrainState, images: jax.Array, *, model: nn.Module, mean: Any, std: Any
) -> Any:
  """The BatchNorm statistics of one batch at `state.params`, whatever the model's momentum.

  A flax BatchNorm in training updates each running statistic r <- m r + (1 - m) s. Two passes,
  from r = 0 and from r = 1, give a = (1 - m) s and b = m + (1 - m) s, so s = a / (1 - (b - a)).
  Used to recompute the statistics at a point the model was not trained at (schedule-free's
  averaged weights).
  """
  x = preprocess.normalize(images, mean, std)

  def updated(fill):
    start = jax.tree.map(lambda r: jnp.full_like(r, fill), state.batch_stats)
    _, new = model.apply(
      {"params": state.params, "batch_stats": start},
      x,
      train=True,
      mutable=["batch_stats"],
      rngs={"dropout": state.key},
    )
    return new["batch_stats"]

  return jax.tree.map(lambda a, b: a / (1 - (b - a)), updated(0.0), updated(1.0))


def _chosen(schedules: tuple[Schedules, ...], index: jax.Array) -> Schedules:
  """Member `index`'s schedules, as one pytree whatever each member's kinds (`choose`)."""
  if all(isinstance(s, Schedule) for s in schedules):
    return choose(schedules, index)
  names = set(schedules[0])
  if any(isinstance(s, Schedule) or set(s) != names for s in schedules):
    raise ValueError("a population's members must schedule the same hyperparameters")
  return {n: choose([s[n] for s in schedules], index) for n in sorted(names)}


def _member_step(state, batch, schedules, index, **kw):
  return train_step(state, batch, _chosen(schedules, index), **kw)


class Steps(NamedTuple):
  """The jitted programs of one model and input pipeline.

  `train(state, batch, schedule)`, `evaluate(state, batch)`, `predict(state, images)`,
  `batch_stats(state, images)` (see `batch_stats_of`) and
  `train_members(states, batch, schedules, indices)`: K members' states stacked on a leading
  axis and trained as one vmapped program on the same batch, member k following
  `schedules[indices[k]]` (`lrjax.choose` makes schedules of different kinds one pytree). A
  schedule argument is the learning rate's, or a mapping by hyperparameter (`train_step`).
  """

  train: Callable
  evaluate: Callable
  predict: Callable
  train_members: Callable
  batch_stats: Callable


@functools.lru_cache(maxsize=32)
def jit_steps(
  model: nn.Module,
  mean: tuple[float, ...],
  std: tuple[float, ...],
  augment: bool,
  pad: int,
  flip: bool,
  state_sharding: Any,
  batch_sharding: Any,
  compiler_options: tuple[tuple[str, str], ...] = (),
) -> Steps:
  """The jitted steps, with the state replicated and the batch sharded, compiled with the
  runtime's `compiler_options` (as (name, value) pairs: this function is cached on them).

  The state is donated: XLA updates parameters and optimizer state in place. Cached (like
  `make_optimizer`) on what defines the programs, so the runs of a study that differ only in
  schedule values share one compiled step, and so do all the seeds of a population.
  """
  replicated = state_sharding
  jit = functools.partial(jax.jit, compiler_options=dict(compiler_options))
  mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
  fixed = dict(model=model, mean=mean, std=std)
  kw = dict(fixed, augment=augment, pad=pad, flip=flip)
  train = jit(
    functools.partial(train_step, **kw),
    in_shardings=(replicated, batch_sharding, None),
    out_shardings=(replicated, None),
    donate_argnums=0,
  )
  members = jit(
    jax.vmap(functools.partial(_member_step, **kw), in_axes=(0, None, None, 0)),
    in_shardings=(replicated, batch_sharding, None, None),
    out_shardings=(replicated, None),
    donate_argnums=0,
  )
  evaluate = jit(functools.partial(eval_step, **fixed), in_shardings=(replicated, batch_sharding))
  predict, batch_stats = (
    jit(
      functools.partial(fn, **fixed),
      in_shardings=(replicated, batch_sharding),
      out_shardings=replicated,
    )
    for fn in (predict_probs, batch_stats_of)
  )
  return Steps(train, evaluate, predict, members, batch_stats)
