"""Config round trip: every schedule factory is registered under a name.

`to_config(schedule)` gives `{"name": <factory name>, <argument>: <value>, ...}`: a JSON-ready
dict whose keys are the factory's keyword arguments (a schedule's fields are exactly those), with
child schedules as nested dicts. `from_config(dict)` calls the factory again, so every value is
validated exactly as when the schedule was first built.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

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
    params = set(inspect.signature(factory).parameters)
    fields = {f.name for f in dataclasses.fields(cls)}
    if params != fields:
      raise TypeError(
        f"{name}: factory arguments {sorted(params)} must equal {cls.__name__} fields "
        f"{sorted(fields)} for the config round trip"
      )
    cls.config_name = name
    _REGISTRY[name] = Entry(name, factory, cls, dict(example))
    return factory

  return wrap


def registry() -> dict[str, Entry]:
  """All registered schedules, by name (imports every schedule module first)."""
  import lrjax.schedules  # noqa: F401  # registration happens on import

  return dict(_REGISTRY)


def to_config(schedule: Schedule) -> dict[str, Any]:
  if not isinstance(schedule, Schedule):
    raise ValueError(f"schedule must be an lrjax schedule, got {schedule!r}")
  name = type(schedule).config_name
  if not name:
    raise ValueError(f"{type(schedule).__name__} is not registered and has no config")
  out: dict[str, Any] = {"name": name}
  for key, value in schedule.fields().items():
    out[key] = _plain(f"{name}.{key}", value)
  return out


def _plain(where: str, value: Any) -> Any:
  if isinstance(value, Schedule):
    return to_config(value)
  if isinstance(value, (tuple, list)):
    return [_plain(f"{where}[{i}]", v) for i, v in enumerate(value)]
  if value is None or isinstance(value, (str, bool)):
    return value
  if isinstance(value, jax.core.Tracer):
    raise ValueError(f"{where} is traced inside jit/vmap and has no config value")
  arr = np.asarray(value)
  if np.issubdtype(arr.dtype, np.floating):
    # str() of a float32 is its shortest round-tripping decimal: 0.1, not 0.10000000149011612.
    conv = [float(str(np.float32(v))) for v in arr.ravel()]
  elif np.issubdtype(arr.dtype, np.integer):
    conv = [int(v) for v in arr.ravel()]
  elif np.issubdtype(arr.dtype, np.bool_):
    conv = [bool(v) for v in arr.ravel()]
  else:
    raise ValueError(f"{where} has no config value: {value!r}")
  return conv[0] if arr.ndim == 0 else np.asarray(conv, dtype=object).reshape(arr.shape).tolist()


def from_config(config: Mapping[str, Any]) -> Schedule:
  """Builds a schedule from `to_config`'s dict (or a hand-written one with the same keys)."""
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
