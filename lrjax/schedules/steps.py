"""Steps as int32: conversion of every kind of step, and folding of steps past 2**31 - 1.

Formulas only ever see int32 steps. `as_int32_step` converts a step of any accepted kind; a
concrete step past INT32_MAX is first mapped on the host, in int64, to an int32 step with the same
value (a schedule's `_fold`; `fold_periodic` for periodic ones). Hyperparameter durations are
int32 leaves too, and `fits_int32` refuses durations whose sum int32 cannot hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = 2**31 - 1
# Largest float32 below 2**31: the last float that converts to int32 without overflow (no float32
# lies strictly between it and 2**31).
FLOAT32_BELOW_2_31 = 2147483520.0
INT64_MAX = 2**63 - 1

Step = int | float | np.ndarray | jax.Array


def is_host_step(step: Any) -> bool:
  """A concrete host step (Python or NumPy number or array), checked and folded on the host."""
  return isinstance(step, (int, float, np.ndarray, np.generic)) and not isinstance(step, bool)


def as_int32_step(step: Step, fold: Callable[[np.ndarray], np.ndarray] | None = None) -> jax.Array:
  """Converts a step of any accepted kind to an int32 array (non-negative, same shape).

  Concrete host values (Python and NumPy scalars and arrays) are checked: a negative or non-finite
  step raises ValueError naming its value. They are floored (float steps count whole updates) and
  folded into int32 by `fold` on the host, in int64, so Python ints up to 2**63 - 1 are exact.
  JAX arrays (traced or not) are converted on the device: floats are floored, negatives clamped
  to 0 and values past int32 saturate.
  """
  if isinstance(step, bool):
    raise ValueError(f"step must be an integer or float, got {step!r}")
  if isinstance(step, int) and step > INT64_MAX:
    step = INT64_MAX  # int64 holds the rest of the way; folding makes it int32
  if is_host_step(step):
    arr = np.asarray(step)
    if arr.dtype == object or not (
      np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
      raise ValueError(f"step must be an integer or float, got {step!r}")
    if np.issubdtype(arr.dtype, np.floating):
      if not np.all(np.isfinite(arr)):
        raise ValueError(f"step must be finite, got {step!r}")
      arr = np.floor(arr)
      arr = np.minimum(arr, float(INT64_MAX - 1023))
    if np.any(arr < 0):
      raise ValueError(f"step must be non-negative, got {step!r}")
    arr = arr.astype(np.int64)
    if np.any(arr > INT32_MAX):
      arr = (fold or saturate)(arr)
    return jnp.asarray(np.asarray(arr, dtype=np.int64).astype(np.int32))
  step = jnp.asarray(step)
  if jnp.issubdtype(step.dtype, jnp.floating):
    step = jnp.clip(jnp.floor(step), 0.0, FLOAT32_BELOW_2_31)
    return step.astype(jnp.int32)
  if not jnp.issubdtype(step.dtype, jnp.integer):
    raise ValueError(f"step must be an integer or float array, got dtype {step.dtype}")
  if step.dtype.itemsize > 4 or step.dtype == jnp.uint32:
    step = jnp.clip(step, 0, INT32_MAX)
  return jnp.maximum(step.astype(jnp.int32), 0)


def true_steps(step: Step) -> np.ndarray | None:
  """The float64 steps of a concrete host step that int32 cannot hold, or None.

  Schedules that never settle (`Schedule._tail`) evaluate such steps in float32 instead of
  folding them.
  """
  if not is_host_step(step):
    return None
  host = np.asarray(min(step, INT64_MAX) if isinstance(step, int) else step)
  if not np.any(host > INT32_MAX):
    return None
  return np.floor(host.astype(np.float64))


def saturate(step: np.ndarray, limit: int = INT32_MAX) -> np.ndarray:
  """The default fold: exact for a schedule constant from some step below `limit` on."""
  return np.minimum(step, limit)


def host_scalar(x: Any) -> np.ndarray | None:
  """A scalar leaf as a 0-d host array, or None when traced or batched (no single host value)."""
  if isinstance(x, jax.core.Tracer) or np.ndim(x) != 0:
    return None
  return np.asarray(x)


def concrete_int(x: Any) -> int | None:
  """The Python int of a scalar leaf, or None when traced or batched (then folds saturate)."""
  v = host_scalar(x)
  return None if v is None else int(v)


def fold_periodic(
  step: np.ndarray, offset: Any, period: Any, max_cycles: int | None = None
) -> np.ndarray:
  """Host fold for schedules periodic with `period` after `offset` (both concrete ints).

  Keeps the phase `(step - offset) % period` and as many whole cycles as int32 holds (or
  `max_cycles`): a schedule whose value still depends on the cycle index (a decay per cycle) is
  then as far along its decay as an int32 step can take it.
  """
  offset, period = concrete_int(offset), concrete_int(period)
  if offset is None or period is None or period <= 0:
    return saturate(step)
  fit = max((INT32_MAX - offset - period + 1) // period, 0)
  rel = step - offset
  cycles = np.minimum(rel // period, fit if max_cycles is None else min(max_cycles, fit))
  folded = offset + cycles * period + rel % period
  return np.where(step > INT32_MAX, np.minimum(folded, INT32_MAX), step)


def fits_int32(**durations: Any) -> None:
  """Raises unless the durations add up to at most 2**31 - 1 (checked when concrete).

  Past that, sums of durations overflow int32 and steps saturate before the schedule ends.
  """
  if any(isinstance(d, jax.core.Tracer) for d in durations.values()):
    return
  total = sum(np.asarray(d, np.int64) for d in durations.values())
  if np.any(total > INT32_MAX):
    parts = ", ".join(f"{k}={np.asarray(v).tolist()}" for k, v in durations.items())
    raise ValueError(f"{' + '.join(durations)} must be at most 2**31 - 1, got {parts}")


def round_steps(x: Any) -> Any:
  """A duration in (fractional) steps as whole steps: the nearest, ties to even, and at least one
  for any positive duration (as big_vision rounds), so a tiny fraction still lasts a step.

  The one rounding of every duration given as a fraction, in samples or in epochs (configs'
  `lrjax.config.durations`, WSD's and multi-period WSD's fractions). An int for a scalar, an
  int64 array for an array.
  """
  a = np.asarray(x, np.float64)
  out = np.where(a == 0, 0, np.maximum(1, np.round(a))).astype(np.int64)
  return int(out) if out.ndim == 0 else out
