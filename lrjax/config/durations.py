"""Durations in epochs, steps, fractions, samples or tokens, converted to steps in one place.

A schedule config in an experiment config is an `lrjax.from_config` dict in which any duration
may be written as `{"epochs": e}`, `{"steps": s}`, `{"fraction": f}` (of all training steps),
`{"samples": n}` (training examples: n / batch size steps) or `{"tokens": n}` (n / (batch size
x tokens per example) steps), also inside lists (boundaries) and nested schedules. Everything
after `resolve_schedule` sees integer steps only. A duration in samples or tokens is the same
schedule as the equivalent steps, rounded as every other unit is (to the nearest step, a
positive duration lasting at least one); a run that changes its batch size keeps the same
schedule in samples. `{"epochs": 1}` is one epoch of steps, so
`{"name": "per_epoch", "schedule": {...}, "steps_per_epoch": {"epochs": 1}}` runs a schedule
whose own durations count epochs, as the chapter's per-epoch formulas do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrjax.schedules.base import Schedule
from lrjax.schedules.config import from_config
from lrjax.schedules.steps import round_steps

_UNITS = ("epochs", "steps", "fraction", "samples", "tokens")


def to_steps(
  value: Any,
  steps_per_epoch: int,
  total_steps: int,
  where: str = "duration",
  *,
  samples_per_step: int | None = None,
  tokens_per_sample: int | None = None,
) -> Any:
  """Converts one `{unit: x}` of `_UNITS` to an int step count (other values pass through).

  `samples_per_step` (the global batch size) converts samples, and with `tokens_per_sample`
  (a sequence's length) tokens; a unit whose size is not known is refused naming `where`.
  """
  if not (isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _UNITS):
    return value
  unit, x = next(iter(value.items()))
  if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
    raise ValueError(f"{where} must be a non-negative number of {unit}, got {x!r}")
  if unit == "samples" and samples_per_step is None:
    raise ValueError(f"{where} is in samples, but this run's batch size is not known")
  if unit == "tokens" and (samples_per_step is None or tokens_per_sample is None):
    raise ValueError(
      f"{where} is in tokens, but this run's tokens per example are not known: set "
      "config.tokens_per_sample (resolve_schedule's tokens_per_sample), e.g. a sequence's length"
    )
  if unit in ("samples", "tokens"):
    per_step = samples_per_step * (tokens_per_sample if unit == "tokens" else 1)
    steps = x / per_step
  else:
    steps = x * {"epochs": steps_per_epoch, "steps": 1, "fraction": total_steps}[unit]
  return round_steps(steps)


def _walk(value: Any, spe: int, total: int, where: str, sizes: dict[str, Any]) -> Any:
  converted = to_steps(value, spe, total, where, **sizes)
  if converted is not value:
    return converted
  if isinstance(value, Mapping):
    return {k: _walk(v, spe, total, f"{where}.{k}", sizes) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_walk(v, spe, total, f"{where}[{i}]", sizes) for i, v in enumerate(value)]
  return value


def resolve_schedule(
  config: Any,
  steps_per_epoch: int,
  total_steps: int,
  *,
  samples_per_step: int | None = None,
  tokens_per_sample: int | None = None,
  where: str = "schedule",
) -> Schedule:
  """Builds the schedule of an experiment config, with every duration in steps.

  Args:
    config: a schedule config dict (or ml_collections ConfigDict) as described above.
    steps_per_epoch: optimizer updates per epoch.
    total_steps: all optimizer updates of the run (for `{"fraction": f}`).
    samples_per_step: examples per update, over all devices (for `{"samples": n}`).
    tokens_per_sample: tokens in one example (with `samples_per_step`, for `{"tokens": n}`).
    where: the config's name in errors.

  Raises:
    ValueError: for a bad duration or any error `lrjax.from_config` raises.
  """
  if isinstance(config, Schedule):
    return config
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise ValueError(f"config.{where} must be a schedule config dict, got {config!r}")
  sizes = dict(samples_per_step=samples_per_step, tokens_per_sample=tokens_per_sample)
  return from_config(_walk(dict(config), steps_per_epoch, total_steps, where, sizes))
