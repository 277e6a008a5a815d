"""Config round trip: every schedule factory is registered under a name.

`to_config(schedule)` gives `{"name": <factory name>, <argument>: <value>, ...}`: a JSON-ready
dict whose keys are the factory's keyword arguments (a schedule's fields are exactly those), with
child schedules as nested dicts. `from_config(dict)` calls the factory again, so every value is
validated exactly as when the schedule was first built. Registering a factory also records its
name and factory on the schedule class (`config_name`, `factory`), so `Schedule.to_config` and
`Schedule.replace` need no registry.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from lrjax.schedules.base import Schedule


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  factory: Callable[..., Schedule]
  cls: type[Schedule]
  # Keyword arguments of a typical instance: used by the contract tests, the README table and
  # `lrjax plot --all`.
  example: Mapping[str, Any]


_REGISTRY: dict[str, Entry] = {}


def register(name: str, cls: type[Schedule], example: Mapping[str, Any]) -> Callable:
  """Decorator for a schedule factory: `@register("linear_decay", LinearDecay, example={...})`."""

  def wrap(factory: Callable[..., Schedule]) -> Callable[..., Schedule]:
    if name in _REGISTRY and _REGISTRY[name].factory is not factory:
      raise ValueError(f"schedule name {name!r} is registered twice")
    params = inspect.signature(factory).parameters
    fields = {f.name for f in dataclasses.fields(cls)}
    # Besides the fields, a factory may take keyword-only aliases defaulting to None (optax's
    # `alpha` for an end value); configs and `replace` use the fields only.
    aliases = {k for k, p in params.items() if k not in fields}
    if not fields <= set(params) or any(
      params[k].kind is not inspect.Parameter.KEYWORD_ONLY or params[k].default is not None
      for k in aliases
    ):
      raise TypeError(
        f"{name}: factory arguments {sorted(params)} must be {cls.__name__}'s fields "
        f"{sorted(fields)} (and keyword-only aliases defaulting to None) for the config round trip"
      )
    cls.config_name = name
    cls.factory = staticmethod(factory)
    _REGISTRY[name] = Entry(name, factory, cls, dict(example))
    return factory

  return wrap


def registry() -> dict[str, Entry]:
  """All registered schedules, by name.

  Complete once `lrjax.schedules` is imported, which importing this module already does: the
  package imports every schedule module, and each registers its factories on import.

  Returns:
    A new dict from name to entry, whose `factory` builds the schedule (`lrjax.NAME`), `cls` is
    the schedule's class and `example` the keyword arguments of a typical instance.

  Example:
    >>> entry = lrjax.registry()["cosine_decay"]
    >>> entry.factory is lrjax.cosine_decay, entry.example
    (True, {'init_value': 0.1, 'decay_steps': 100})
  """
  return dict(_REGISTRY)


def to_config(schedule: Schedule) -> dict[str, Any]:
  """`schedule.to_config()`, with a ValueError for anything that is not a schedule.

  Args:
    schedule: an lrjax schedule.

  Returns:
    A JSON-ready dict, the factory's name under "name" and its arguments under theirs
    (`{"name": <factory name>, <argument>: <value>, ...}`), child schedules nested.

  Raises:
    ValueError: if `schedule` is not an lrjax schedule, or one of its values is traced or
      batched (it has no config value).

  Example:
    >>> lrjax.to_config(lrjax.scale(lrjax.constant(0.1), 0.5))
    {'name': 'scale', 'schedule': {'name': 'constant', 'value': 0.1}, 'factor': 0.5}
  """
  if not isinstance(schedule, Schedule):
    raise ValueError(f"schedule must be an lrjax schedule, got {schedule!r}")
  return schedule.to_config()


def from_config(config: Mapping[str, Any]) -> Schedule:
  """Builds a schedule from `to_config`'s dict (or a hand-written one with the same keys).

  The registered factory is called again, so the values are validated as when the schedule was
  first built; nested dicts with a "name" become schedules too.

  Args:
    config: `{"name": <registered name>, <argument>: <value>, ...}`; a schedule is returned as is.

  Returns:
    The schedule.

  Raises:
    ValueError: for a config that is not a dict, lacks "name", names no registered schedule, has
      an unknown key or misses a required one, or a value the factory refuses.

  Example:
    >>> config = {"name": "step_decay", "init_value": 0.1, "drop_factor": 0.5, "drop_every": 30}
    >>> schedule = lrjax.from_config(config)
    >>> schedule, round(float(schedule(60)), 4), lrjax.to_config(schedule) == config
    (StepDecay(init_value=0.1, drop_factor=0.5, drop_every=30), 0.025, True)
  """
  if isinstance(config, Schedule):
    return config
  if not isinstance(config, Mapping):
    raise ValueError(f"a schedule config must be a dict, got {config!r}")
  reg = registry()
  if "name" not in config:
    raise ValueError(f"schedule config is missing the key 'name': {dict(config)!r}")
  name = config["name"]
  if name not in reg:
    raise ValueError(f"unknown schedule name {name!r}; known names: {sorted(reg)}")
  entry = reg[name]
  params = inspect.signature(entry.factory).parameters
  kwargs = {k: v for k, v in config.items() if k != "name"}
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise ValueError(
      f"unknown key {unknown[0]!r} in the config of schedule {name!r}; "
      f"its keys are {sorted(params)}"
    )
  missing = [
    k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs
  ]
  if missing:
    raise ValueError(f"the config of schedule {name!r} is missing the key {missing[0]!r}")
  return entry.factory(**{k: _build(v) for k, v in kwargs.items()})


def _build(value: Any) -> Any:
  if isinstance(value, Mapping) and "name" in value:
    return from_config(value)
  if (
    isinstance(value, (list, tuple))
    and value
    and all(isinstance(v, Mapping) and "name" in v for v in value)
  ):
    return [from_config(v) for v in value]
  return value
