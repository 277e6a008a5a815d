"""The optimizers a config may name, each with the learning rate as an injected hyperparameter.

The train step writes `schedule(step)` into the `optax.inject_hyperparams` state before every
update, so update t uses the schedule's value at step t whatever the optimizer; in particular
optax's schedule-free optimizers do not read a schedule of their own here (optax's own
`schedule_free` reads a schedule one step late, its count starting at 1; lrjax passes the value,
not the schedule).

* "sgd" (momentum, Nesterov, coupled L2 weight decay), "adam" (L2), "adamw" (decoupled decay):
  `config.momentum`, `config.nesterov`, `config.weight_decay` apply.
* From `optax.contrib`, with optax's documented defaults for everything but the learning rate:
  "schedule_free_sgd", "schedule_free_adamw" (Defazio et al. 2024; evaluated at their averaged
  point, `eval_params`), "prodigy", "dadapt_adamw", "dog" (learning-rate-free: the schedule is a
  multiplier, 1.0 by default, and may still drive a warmup), and "mechanize" (Mechanic around
  SGD with `config.momentum`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import optax
from optax import contrib

_CONTRIB = {
  "schedule_free_sgd": lambda lr, momentum, nesterov: contrib.schedule_free_sgd(lr),
  "schedule_free_adamw": lambda lr, momentum, nesterov: contrib.schedule_free_adamw(lr),
  "prodigy": lambda lr, momentum, nesterov: contrib.prodigy(lr),
  "dadapt_adamw": lambda lr, momentum, nesterov: contrib.dadapt_adamw(lr),
  "dog": lambda lr, momentum, nesterov: contrib.dog(lr),
  "mechanize": lambda lr, momentum, nesterov: contrib.mechanize(
    optax.sgd(lr, momentum=momentum or None, nesterov=nesterov)
  ),
}
OPTIMIZERS = ("sgd", "adam", "adamw", *_CONTRIB)
SCHEDULE_FREE = ("schedule_free_sgd", "schedule_free_adamw")


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
    if name in _CONTRIB:
      return _CONTRIB[name](learning_rate, momentum, nesterov)
    if name == "adamw":
      return optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay, mask=_decay_mask)
    base = (
      optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
      if name == "sgd"
      else optax.adam(learning_rate, b1=b1, b2=b2)
    )
    if weight_decay:
      return optax.chain(optax.add_decayed_weights(weight_decay, mask=_decay_mask), base)
    return base

  return optax.inject_hyperparams(build)(learning_rate=0.0)


def eval_params(name: str, opt_state: Any, params: Any) -> Any:
  """The parameters to evaluate: the averaged point x for schedule-free, else `params`."""
  if name in SCHEDULE_FREE:
    return contrib.schedule_free_eval_params(opt_state.inner_state, params)
  return params
