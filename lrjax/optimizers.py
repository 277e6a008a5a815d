"""The optimizers a config may name, each with the learning rate as an injected hyperparameter.

The train step writes `schedule(step)` into the `optax.inject_hyperparams` state before every
update, so update t uses the schedule's value at step t whatever the optimizer; in particular
optax's schedule-free optimizers do not read a schedule of their own here (optax's own
`schedule_free` reads a schedule one step late, its count starting at 1; lrjax passes the value,
not the schedule).

* "sgd" (momentum, Nesterov), "adam", "adamw": `config.momentum`, `config.nesterov` apply.
* From `optax.contrib`, with optax's documented defaults for everything but the learning rate
  and the momentum: "schedule_free_sgd" (its b1 is `config.momentum`), "schedule_free_adamw"
  (Defazio et al. 2024; evaluated at their averaged point, `eval_params`), "prodigy",
  "dadapt_adamw", "dog" (learning-rate-free: the schedule is a multiplier, 1.0 by default, and may
  still drive a warmup), and "mechanize" (Mechanic around SGD with `config.momentum`).

A warmup that starts at 0 gives Prodigy and D-Adaptation a first step at rate 0, where optax's
step size estimate is 0 / 0 and every later step NaN. Their authors' reference implementations
(the `prodigyopt` and `dadaptation` packages) update the estimate only `if lr > 0`; lrjax does
the same: at rate 0 the estimate is kept and the update is 0, the moments update as optax's do.
At any positive rate the steps are optax's.

Weight decay is set up alike for every optimizer, so that arms that differ in their optimizer
do not also differ in their regularisation without a word: `config.weight_decay` is coupled L2
on the kernels (the gradient plus `weight_decay * kernel`, BatchNorm scales and biases left
alone, as the Flax examples do), added before the optimizer's own update, for every optimizer
but "adamw", whose decay is decoupled (its definition). The contrib optimizers' own
`weight_decay` arguments stay at their defaults: none is applied twice.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax import contrib

_CONTRIB = {
  "schedule_free_sgd": lambda lr, momentum, nesterov: contrib.schedule_free_sgd(lr, b1=momentum),
  "schedule_free_adamw": lambda lr, momentum, nesterov: contrib.schedule_free_adamw(lr),
  "prodigy": lambda lr, momentum, nesterov: _idle_at_zero_rate(contrib.prodigy(lr), lr),
  "dadapt_adamw": lambda lr, momentum, nesterov: _idle_at_zero_rate(contrib.dadapt_adamw(lr), lr),
  "dog": lambda lr, momentum, nesterov: contrib.dog(lr),
  "mechanize": lambda lr, momentum, nesterov: contrib.mechanize(
    optax.sgd(lr, momentum=momentum or None, nesterov=nesterov)
  ),
}
OPTIMIZERS = ("sgd", "adam", "adamw", *_CONTRIB)
SCHEDULE_FREE = ("schedule_free_sgd", "schedule_free_adamw")


def _idle_at_zero_rate(
  inner: optax.GradientTransformationExtraArgs, learning_rate: Any
) -> optax.GradientTransformationExtraArgs:
  """`inner` (Prodigy or D-Adapt AdamW) with its step-size estimate kept at a zero rate."""

  def update(updates, state, params=None, **extra_args):
    new_updates, new_state = inner.update(updates, state, params, **extra_args)
    idle = jnp.asarray(learning_rate) == 0
    new_updates = jax.tree.map(lambda u: jnp.where(idle, jnp.zeros_like(u), u), new_updates)
    estim_lr = jnp.where(idle, state.estim_lr, new_state.estim_lr)
    return new_updates, new_state._replace(estim_lr=estim_lr)

  return optax.GradientTransformationExtraArgs(inner.init, update)


def _decay_mask(params: Any) -> Any:
  # Weight decay on kernels only, not on BatchNorm scales or biases (as the Flax examples do).
  return jax.tree.map(lambda p: p.ndim > 1, params)


@functools.lru_cache(maxsize=32)
def make_optimizer(
  name: str = "sgd",
  *,
  momentum: float = 0.9,
  nesterov: bool = False,
  weight_decay: float = 0.0,
  b1: float = 0.9,
  b2: float = 0.999,
) -> optax.GradientTransformation:
  """The optimizer `name` (see the module docstring) with an injected learning rate."""
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")

  def build(learning_rate):
    if name == "adamw":
      return optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay, mask=_decay_mask)
    if name in _CONTRIB:
      base = _CONTRIB[name](learning_rate, momentum, nesterov)
    elif name == "sgd":
      base = optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
    else:
      base = optax.adam(learning_rate, b1=b1, b2=b2)
    if weight_decay:  # the same coupled L2 for every optimizer (see the module docstring)
      return optax.chain(optax.add_decayed_weights(weight_decay, mask=_decay_mask), base)
    return base

  return optax.inject_hyperparams(build)(learning_rate=0.0)


def eval_params(name: str, opt_state: Any, params: Any) -> Any:
  """The parameters to evaluate: the averaged point x for schedule-free, else `params`.

  Args:
    name: the optimizer's name.
    opt_state: its state (`make_optimizer`'s: the schedule-free state inside, chained after the
      weight decay's where there is one).
    params: the parameters it updates.
  """
  if name not in SCHEDULE_FREE:
    return params
  inner = opt_state.inner_state
  if isinstance(inner, tuple) and not hasattr(inner, "z"):  # chained: (decay, schedule-free)
    inner = inner[-1]
  return contrib.schedule_free_eval_params(inner, params)
