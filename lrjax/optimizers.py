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

Besides the learning rate, `make_optimizer(..., scheduled=names)` injects the hyperparameters
`names` (`config.optimizer_schedules`), which the train step writes before every update as it
writes the learning rate; the others stay fixed Python numbers in the program. `schedulable(name)`
says which an optimizer has: the weight decay for every optimizer, the momentum for "sgd" and
"mechanize" (its SGD's), b1 and b2 for "adam" and "adamw". A scheduled momentum always keeps a
trace, so that a schedule may start at 0 (a fixed momentum of 0 has none). Not
"schedule_free_sgd"'s momentum: schedule-free recovers its averaged point from `y = b1 x +
(1 - b1) z` with one fixed b1, which a b1 that changes between updates breaks. A scheduled
Adam b1 or b2 enters optax's bias correction too: update t divides by `1 - b1(t) ** (t + 1)`.

`make_optimizer(..., plateau=settings)` (`config.plateau`) chains `lrjax.plateau(**settings)`
after the optimizer, inside `optax.inject_hyperparams`: the state's hyperparameters stay where
the train step writes them, and its update takes the plateau's `value=` and `value_is_new=`.

`make_optimizer(..., param_groups=groups)` (`config.param_groups`) partitions the parameters
(`lrjax.groups.rules`): each group is this optimizer at a constant factor of the one injected
learning rate, with its own weight decay, so the step writes one learning rate as before and
`lrjax.groups.group_learning_rates(state)` reads each group's. Only for "sgd", "adam" and
"adamw": the contrib optimizers estimate their step size over all the parameters at once, which
one optimizer per group would do over its group alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from lrjax.groups.rules import ParamGroups
from lrjax.transforms.plateau import plateau as plateau_transform
from lrjax.transforms.plateau import plateau_config

HYPERPARAMETERS = ("momentum", "weight_decay", "b1", "b2")  # what a schedule may drive

_CONTRIB = {
  "schedule_free_sgd": lambda lr, momentum, nesterov: contrib.schedule_free_sgd(lr, b1=momentum),
  "schedule_free_adamw": lambda lr, momentum, nesterov: contrib.schedule_free_adamw(lr),
  "prodigy": lambda lr, momentum, nesterov: _idle_at_zero_rate(contrib.prodigy(lr), lr),
  "dadapt_adamw": lambda lr, momentum, nesterov: _idle_at_zero_rate(contrib.dadapt_adamw(lr), lr),
  "dog": lambda lr, momentum, nesterov: contrib.dog(lr),
  "mechanize": lambda lr, momentum, nesterov: contrib.mechanize(
    optax.sgd(lr, momentum=_trace_decay(momentum), nesterov=nesterov)
  ),
}
OPTIMIZERS = ("sgd", "adam", "adamw", *_CONTRIB)
SCHEDULE_FREE = ("schedule_free_sgd", "schedule_free_adamw")
# The optimizers whose parameters may be grouped (`param_groups`): the others estimate their step
# size over all the parameters at once (or average them, schedule-free), which a group's
# optimizer would do over its group alone.
GROUPED = ("sgd", "adam", "adamw")


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


def _trace_decay(momentum: Any) -> Any:
  # A fixed 0 means plain SGD (no trace); a scheduled (array) momentum needs the trace whatever
  # its first value.
  return None if isinstance(momentum, int | float) and momentum == 0 else momentum


def schedulable(name: str) -> tuple[str, ...]:
  """The hyperparameters of optimizer `name` that a schedule may drive (see the module
  docstring).

  Args:
    name: one of `OPTIMIZERS`.
  """
  if name in ("sgd", "mechanize"):
    return ("momentum", "weight_decay")
  if name in ("adam", "adamw"):
    return ("b1", "b2", "weight_decay")
  return ("weight_decay",)


def make_optimizer(
  name: str = "sgd",
  *,
  momentum: float = 0.9,
  nesterov: bool = False,
  weight_decay: float = 0.0,
  b1: float = 0.9,
  b2: float = 0.999,
  scheduled: tuple[str, ...] = (),
  plateau: Mapping[str, Any] | None = None,
  param_groups: ParamGroups | None = None,
) -> optax.GradientTransformation:
  """The optimizer `name` (see the module docstring) with an injected learning rate.

  Args:
    name: one of `OPTIMIZERS`.
    momentum: SGD's momentum (and schedule-free SGD's b1, Mechanic's SGD's momentum).
    nesterov: Nesterov momentum.
    weight_decay: coupled L2 on the kernels (decoupled for "adamw").
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    scheduled: names of `schedulable(name)` injected too, in `state.hyperparams`; their values
      above are not read.
    plateau: `lrjax.plateau`'s settings (some of its arguments by name, every duration in
      steps), chained after the optimizer; None: none.
    param_groups: groups of parameters, each at a constant factor of the injected rate with its
      own weight decay (`lrjax.groups.rules`; "sgd", "adam" and "adamw" only); None: none.

  Returns:
    One optimizer per distinct arguments (cached), so that runs that differ only in their
    schedules' values share one optimizer and one compiled step.

  Raises:
    ValueError: an unknown optimizer, a negative fixed weight decay, a scheduled name that
      the optimizer does not have, a plateau setting `lrjax.plateau` refuses, or groups for
      an optimizer not in `GROUPED`.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
  scheduled = tuple(sorted(set(scheduled)))
  wrong = [n for n in scheduled if n not in schedulable(name)]
  if wrong:
    raise ValueError(
      f"scheduled must name hyperparameters of {name!r} ({list(schedulable(name))}), got {wrong}"
    )
  fixed = {"momentum": momentum, "weight_decay": weight_decay, "b1": b1, "b2": b2}
  if "weight_decay" not in scheduled and weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
  # Not read, and so not part of the cache key: one optimizer for every fixed value.
  fixed.update(dict.fromkeys(scheduled, 0.0))
  settings = None if plateau is None else tuple(plateau_config(plateau).items())
  if param_groups is not None and name not in GROUPED:
    raise ValueError(f"param_groups take an optimizer of {list(GROUPED)}, got {name!r}")
  return _optimizer(name, nesterov, scheduled, plateau=settings, param_groups=param_groups, **fixed)


@functools.lru_cache(maxsize=32)
def _optimizer(
  name: str,
  nesterov: bool,
  scheduled: tuple[str, ...],
  *,
  momentum: float,
  weight_decay: float,
  b1: float,
  b2: float,
  plateau: tuple[tuple[str, Any], ...] | None = None,
  param_groups: ParamGroups | None = None,
) -> optax.GradientTransformation:
  decayed = "weight_decay" in scheduled or weight_decay > 0

  def one(learning_rate, momentum, weight_decay, b1, b2, mask=_decay_mask, decayed=decayed):
    if name == "adamw":
      return optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay, mask=mask)
    if name in _CONTRIB:
      base = _CONTRIB[name](learning_rate, momentum, nesterov)
    elif name == "sgd":
      base = optax.sgd(learning_rate, momentum=_trace_decay(momentum), nesterov=nesterov)
    else:
      base = optax.adam(learning_rate, b1=b1, b2=b2)
    if decayed:  # the same coupled L2 for every optimizer (see the module docstring)
      return optax.chain(optax.add_decayed_weights(weight_decay, mask=mask), base)
    return base

  def build(learning_rate, momentum, weight_decay, b1, b2):
    if param_groups is None:
      return one(learning_rate, momentum, weight_decay, b1, b2)

    def group(rate, decay, mask):  # a group's own fixed decay, or the run's (fixed or injected)
      on = not isinstance(decay, int | float) or decay > 0
      return one(rate, momentum, decay, b1, b2, mask=mask, decayed=on)

    return param_groups.transformation(group, learning_rate, weight_decay)

  # Fixed hyperparameters stay static (Python numbers in the program): only the scheduled ones
  # become leaves of the state, so a run without schedules injects its learning rate alone.
  static = tuple(n for n in HYPERPARAMETERS if n not in scheduled)
  values = dict(momentum=momentum, weight_decay=weight_decay, b1=b1, b2=b2)
  factory = build if plateau is None else _then_plateau(build, dict(plateau))
  return optax.inject_hyperparams(factory, static_args=static)(learning_rate=0.0, **values)


def _then_plateau(build: Callable, settings: dict[str, Any]) -> Callable:
  """`build`'s optimizer followed by `lrjax.plateau(**settings)`, with `build`'s signature (the
  hyperparameters `optax.inject_hyperparams` reads from it)."""

  @functools.wraps(build)
  def factory(*args, **kwargs):
    return optax.chain(build(*args, **kwargs), plateau_transform(**settings))

  return factory


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
