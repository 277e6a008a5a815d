"""The validators of a typed config: each takes a value and where it stands, and returns the
value (normalised: an int where a float is allowed stays a number) or raises `ConfigError`.

Every message is one line naming the field as the user wrote it (`config.batch_size`,
`config.study.arms.cosine.weight_decay`) and the value found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lrjax.config.values import plain


class ConfigError(ValueError):
  """A config that cannot be loaded, or a field whose value lrjax cannot take."""


def fail(where: str, value: Any, want: str) -> ConfigError:
  """The error for `where` holding `value` where it must be `want`."""
  hint = ""
  if where.startswith("config.") and not where.startswith("config.study."):
    hint = f" (override with --{where}=...)"
  return ConfigError(f"{where} must be {want}, got {plain(value)!r}{hint}")


def is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


def count(least: int) -> Callable[[Any, str], int]:
  """An integer >= `least`."""
  want = {0: "an integer >= 0", 1: "a positive integer"}.get(least, f"an integer >= {least}")

  def check(value: Any, where: str) -> int:
    if not is_int(value) or value < least:
      raise fail(where, value, want)
    return value

  return check


def number(lo: float = 0.0, hi: float = math.inf, *, below_hi: bool = True) -> Callable:
  """A finite number in [lo, hi) (or [lo, hi] without `below_hi`)."""
  if math.isinf(hi):
    want = f"a finite number >= {lo:g}"
  else:
    want = f"a number in [{lo:g}, {hi:g}{')' if below_hi else ']'}"

  def check(value: Any, where: str) -> float:
    inside = is_number(value) and math.isfinite(value) and lo <= value
    inside = inside and (value < hi if below_hi else value <= hi)
    if not inside:
      raise fail(where, value, want)
    return value

  return check


def flag(value: Any, where: str) -> bool:
  if not isinstance(value, bool):
    raise fail(where, value, "true or false")
  return value


def text(value: Any, where: str) -> str:
  if not isinstance(value, str):
    raise fail(where, value, "text")
  return value


def nonempty_text(value: Any, where: str) -> str:
  if not isinstance(value, str) or not value:
    raise fail(where, value, "non-empty text")
  return value


def one_of(options: Callable[[], Sequence[str]] | Sequence[str]) -> Callable[[Any, str], str]:
  """One of `options` (a sequence, or a function giving it when first needed)."""

  def check(value: Any, where: str) -> str:
    allowed = list(options() if callable(options) else options)
    if value not in allowed:
      raise fail(where, value, f"one of {allowed}")
    return value

  return check


def mapping(value: Any, where: str) -> Mapping:
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if not isinstance(value, Mapping):
    raise fail(where, value, "a dict")
  return value


def optional_mapping(value: Any, where: str) -> Mapping:
  """An optional field's dict: None (the field left out) is an empty one."""
  return {} if value is None else mapping(value, where)


def seeds(value: Any, where: str, *, empty: bool = False) -> tuple[int, ...]:
  """Distinct integers >= 0 (at least one unless `empty`)."""
  values = tuple(value) if isinstance(value, list | tuple) else None
  if values is None or any(not is_int(v) or v < 0 for v in values):
    raise fail(where, value, "a list of integers >= 0")
  if not values and not empty:
    raise fail(where, list(values), "a non-empty list of integers >= 0")
  if len(set(values)) != len(values):
    raise ConfigError(f"{where} must not repeat a value, got {list(values)}")
  return values
