"""`config.plateau`: reduce-on-plateau on a run's updates, driven by its validation metric.

A run whose config sets `plateau` chains `lrjax.plateau` after its optimizer
(`lrjax.optimizers.make_optimizer(plateau=...)`), and its loop feeds the transformation a
validation metric (`lrjax.train.feed`). The field maps

* `metric`: "validation_loss" (the default; it improves downwards, mode "min") or
  "validation_accuracy" (upwards, mode "max"). Validation data alone: test data never drives
  training, and a run without a validation split is refused.
* `every_steps`: 0 (the default) feeds the metric of each epoch's end to the next update; N > 0
  (or a duration, `{"epochs": 0.5}`) evaluates the validation split every N updates too and
  feeds that.
* any argument of `lrjax.plateau` (`factor`, `patience`, `rtol`, `atol`, `cooldown`,
  `accumulation_size`, `min_scale`, `warmup_steps`, `window`, `increase_factor`,
  `increase_patience`, `max_scale`), with `lrjax.plateau`'s defaults; `warmup_steps` may be a
  duration as a schedule's are (`{"epochs": e}`, `{"steps": s}`, `{"fraction": f}`,
  `{"samples": n}`), and `mode`, which follows the metric, may be left out.

Empty (`{}` or None, the default): no plateau, and the run is the program it was without the
field. `check` refuses a bad setting when the config is parsed, in one line naming it;
`in_steps` converts the durations once the run's length is known.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from lrjax.config import checks
from lrjax.config.checks import ConfigError
from lrjax.config.durations import to_steps
from lrjax.config.values import Fields, frozen, plain
from lrjax.import_path import is_import_path
from lrjax.transforms.plateau import plateau, plateau_config

# The metrics a plateau may read, and the mode each improves in.
METRICS = {"validation_loss": "min", "validation_accuracy": "max"}
# The field's own keys, beside `lrjax.plateau`'s arguments.
FEEDING = ("metric", "every_steps")
SETTINGS = tuple(inspect.signature(plateau).parameters)
# `lrjax.plateau` refuses a schedule-free optimizer's scaled updates: its parameters are an
# average that it recovers from its own state, which a scaled update breaks.
UNSCALABLE = ("schedule_free_sgd", "schedule_free_adamw")


@dataclasses.dataclass(frozen=True)
class Plateau:
  """A run's plateau, in steps.

  Attributes:
    metric: "validation_loss" or "validation_accuracy".
    every_steps: feed a fresh metric every that many updates; 0: at each epoch's end.
    settings: `lrjax.plateau_config`'s items, every duration in steps (hashable:
      `make_optimizer` is cached on them).
  """

  metric: str
  every_steps: int
  settings: tuple[tuple[str, Any], ...]

  def to_dict(self) -> dict[str, Any]:
    """What `config.json` records: the feeding and every setting, in steps."""
    return {"metric": self.metric, "every_steps": self.every_steps, **dict(self.settings)}


def check(value: Any, where: str) -> Fields:
  """`config.plateau`, checked (every duration must resolve): empty Fields where none is set.

  Raises:
    ConfigError: an unknown key or a value `lrjax.plateau` refuses, naming `where.KEY`.
  """
  value = checks.optional_mapping(value, where)
  if not value:
    return Fields()
  for key in value:
    if key not in (*FEEDING, *SETTINGS):
      raise ConfigError(
        f"{where}.{key}: a plateau has no setting {key!r}; it takes {list(FEEDING + SETTINGS)}"
      )
  try:  # durations resolve and lrjax.plateau takes every value: checked now, not at build
    in_steps(value, 1000, 1000, samples_per_step=1, where=where)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  return frozen(value)


def in_steps(
  value: Mapping[str, Any],
  steps_per_epoch: int,
  total_steps: int,
  *,
  samples_per_step: int,
  where: str = "config.plateau",
) -> Plateau:
  """The `Plateau` of a non-empty `config.plateau`, every duration in steps.

  Args:
    value: the field.
    steps_per_epoch: the run's updates per epoch.
    total_steps: all its updates (for `{"fraction": f}`).
    samples_per_step: its batch size (for `{"samples": n}`).
    where: the field's name in errors.

  Raises:
    ValueError: a bad metric, mode, duration or setting, naming `where.KEY`.
  """
  c = dict(plain(value))
  metric = c.pop("metric", "validation_loss")
  if metric not in METRICS:
    raise checks.fail(f"{where}.metric", metric, f"one of {list(METRICS)} (validation data only)")
  mode = c.setdefault("mode", METRICS[metric])
  if mode != METRICS[metric]:
    raise ConfigError(
      f"{where}.mode={mode!r} does not fit {where}.metric={metric!r}, whose mode is "
      f"{METRICS[metric]!r}: leave mode out (it follows the metric)"
    )
  sizes = dict(samples_per_step=samples_per_step)
  every = to_steps(c.pop("every_steps", 0), steps_per_epoch, total_steps, **sizes)
  every = checks.count(0)(every, f"{where}.every_steps")
  c["warmup_steps"] = to_steps(
    c.get("warmup_steps", 0), steps_per_epoch, total_steps, f"{where}.warmup_steps", **sizes
  )
  try:
    settings = plateau_config(c)
  except ValueError as e:  # its messages start with the argument's name
    raise ValueError(f"{where}.{e}") from None
  return Plateau(metric, every, tuple(settings.items()))


def of_run(
  experiment: Any, steps_per_epoch: int, total_steps: int, has_validation: bool
) -> Plateau | None:
  """The experiment's `Plateau` in steps, or None where `config.plateau` is empty.

  Raises:
    ConfigError: the run's dataset has no validation split to read.
  """
  if not experiment.plateau:
    return None
  if not has_validation:
    raise ConfigError(_NO_VALIDATION.format(where="config"))
  size = experiment.batch_size
  return in_steps(experiment.plateau, steps_per_epoch, total_steps, samples_per_step=size)


_NO_VALIDATION = (
  "{where}.plateau reads validation metrics, and this run has no validation split: set "
  "{where}.validation_fraction (e.g. 0.1) or {where}.validation_split (test data never drives "
  "training)"
)


def check_together(experiment: Any, where: str) -> None:
  """The plateau's checks that read other fields: its optimizer, and a validation split.

  A user's dataset (`"package.module:function"`) may bring a validation split of its own: it is
  checked when the run is built (`of_run`).
  """
  e = experiment
  if not e.plateau:
    return
  if e.optimizer in UNSCALABLE:
    raise ConfigError(
      f"{where}.plateau: {where}.optimizer={e.optimizer!r} evaluates at an average that scaled "
      "updates would break; use a plateau with another optimizer"
    )
  if not (e.validation_fraction or e.validation_split or is_import_path(e.dataset)):
    raise ConfigError(_NO_VALIDATION.format(where=where))
