"""Checked host numbers: the factors and weight decays are Python floats, fixed when built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lrjax.schedules import checks


def host_float(name: str, x: Any, check: Callable[[str, Any], Any] = checks.non_negative) -> float:
  """`x` as a Python float, after `check(name, x)` (a validator of `lrjax.schedules.checks`).

  Raises:
    ValueError: if `x` is traced or not a scalar (naming `name`), or `check` refuses it.
  """
  if checks.is_traced(x) or np.ndim(x) != 0:
    raise ValueError(f"{name} must be a concrete number, got {x!r}")
  check(name, x)
  return float(x)
