"""Durations in epochs, steps or fractions of training, converted to steps in one place.

A schedule config in an experiment config is an `lrjax.from_config` dict in which any duration
may be written as `{"epochs": e}`, `{"steps": s}` or `{"fraction": f}` (of all training steps),
also inside lists (boundaries) and nested schedules. Everything after `resolve_schedule` sees
integer steps only. `{"epochs": 1}` is one epoch of steps, so
`{"name": "per_epoch", "schedule": {...}, "steps_per_epoch": {"epochs": 1}}` runs a schedule
whose own durations count epochs, as the chapter's per-epoch formulas do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrjax.schedules.base import Schedule
from lrjax.schedules.config import from_config

_UNITS = ("epochs", "steps", "fraction")


def to_steps(value: Any, steps_per_epoch: int, total_steps: int, where: str = "duration") -> Any:
  """Converts one `{"epochs"|"steps"|"fraction": x}` to an int step count (others pass through)."""
  if not (isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _UNITS):
    return value
  unit, x = next(iter(value.items()))
  if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
    raise ValueError(f"{where} must be a non-negative number of {unit}, got {x!r}")
  scale = {"epochs": steps_per_epoch, "steps": 1, "fraction": total_steps}[unit]
  steps = x * scale
  # Round like big_vision: a tiny positive duration still lasts one step.
  return 0 if steps == 0 else max(1, round(steps))


def _walk(value: Any, spe: int, total: int, where: str) -> Any:
  converted = to_steps(value, spe, total, where)
  if converted is not value:
    return converted
  if isinstance(value, Mapping):
    return {k: _walk(v, spe, total, f"{where}.{k}") for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_walk(v, spe, total, f"{where}[{i}]") for i, v in enumerate(value)]
  return value


def resolve_schedule(config: Any, steps_per_epoch: int, total_steps: int) -> Schedule:
  """Builds the schedule of an experiment config, with every duration in steps.

  Args:
    config: a schedule config dict (or ml_collections ConfigDict) as described above.
    steps_per_epoch: optimizer updates per epoch.
    total_steps: all optimizer updates of the run (for `{"fraction": f}`).

  Raises:
    ValueError: for a bad duration or any error `lrjax.from_config` raises.
  """
  if isinstance(config, Schedule):
    return config
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise ValueError(f"config.schedule must be a schedule config dict, got {config!r}")
  return from_config(_walk(dict(config), steps_per_epoch, total_steps, "schedule"))
