"""Validators for schedule hyperparameters: bad concrete input raises ValueError; traced passes.

Every check converts its argument to the leaf it is stored as (float32 for values, int32 for
durations and boundaries) and returns it, so a factory validates and normalises in one line:
`init_value = checks.lr_value("init_value", init_value)`. A message always names the argument
and its value. Traced values (inside jit or vmap) cannot be inspected and are returned cast.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules.base import Schedule
from lrjax.schedules.steps import INT32_MAX


def is_traced(x: Any) -> bool:
  return isinstance(x, jax.core.Tracer) or (
    isinstance(x, (list, tuple)) and any(isinstance(v, jax.core.Tracer) for v in x)
  )


def _as_array(name: str, x: Any, dtype: Any) -> Any:
  """Returns (leaf, concrete numpy value or None when traced)."""
  if isinstance(x, bool) or x is None:
    raise ValueError(f"{name} must be a number, got {x!r}")
  if is_traced(x):
    return jnp.asarray(x).astype(dtype), None
  try:
    host = np.asarray(x)
  except Exception as e:  # a malformed argument: name it instead of a numpy traceback
    raise ValueError(f"{name} must be a number, got {x!r}") from e
  if host.dtype == object or not (
    np.issubdtype(host.dtype, np.number) or np.issubdtype(host.dtype, np.bool_)
  ):
    raise ValueError(f"{name} must be a number, got {x!r}")
  if np.issubdtype(host.dtype, np.bool_):
    raise ValueError(f"{name} must be a number, got {x!r}")
  if not np.all(np.isfinite(host)):
    raise ValueError(f"{name} must be finite, got {x!r}")
  return None, host


def _leaf(x: Any, host: np.ndarray, dtype: Any) -> Any:
  # Keep a JAX array on its device; store everything else as a NumPy leaf of a fixed dtype so
  # that a Python float and an np.float32 compile the same program (weak types would not).
  if isinstance(x, jax.Array):
    return x.astype(dtype)
  return np.asarray(host, dtype=dtype)


def real(
  name: str,
  x: Any,
  *,
  lo: float | None = None,
  hi: float | None = None,
  lo_open: bool = False,
  hi_open: bool = False,
  what: str = "",
) -> Any:
  """A float32 leaf; optional bounds [lo, hi] (open ends with lo_open / hi_open)."""
  traced, host = _as_array(name, x, jnp.float32)
  if host is None:
    return traced
  bad = (lo is not None and (np.any(host < lo) or (lo_open and np.any(host == lo)))) or (
    hi is not None and (np.any(host > hi) or (hi_open and np.any(host == hi)))
  )
  if bad:
    lo_s = "" if lo is None else ("(" if lo_open else "[") + f"{lo}, "
    hi_s = "" if hi is None else f"{hi}" + (")" if hi_open else "]")
    rng = (
      what
      or {
        (True, True): f"in {lo_s}{hi_s}",
        (True, False): f"{'>' if lo_open else '>='} {lo}",
        (False, True): f"{'<' if hi_open else '<='} {hi}",
      }[(lo is not None, hi is not None)]
    )
    raise ValueError(f"{name} must be {rng}, got {_show(x)}")
  return _leaf(x, host, jnp.float32)


def lr_value(name: str, x: Any) -> Any:
  """A learning-rate value: finite and >= 0."""
  return real(name, x, lo=0.0, what="a finite, non-negative learning rate")


def positive(name: str, x: Any) -> Any:
  return real(name, x, lo=0.0, lo_open=True, what="> 0")


def non_negative(name: str, x: Any) -> Any:
  return real(name, x, lo=0.0, what=">= 0")


def integer(name: str, x: Any, *, minimum: int = 0, what: str = "") -> Any:
  """An int32 leaf >= minimum (durations, boundaries, counts)."""
  traced, host = _as_array(name, x, jnp.int32)
  if host is None:
    if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.integer):
      return jnp.floor(x).astype(jnp.int32)
    return traced
  if np.any(host != np.floor(host)):
    raise ValueError(f"{name} must be an integer number of steps, got {_show(x)}")
  if np.any(host < minimum):
    word = what or ("a positive integer" if minimum == 1 else f"an integer >= {minimum}")
    raise ValueError(f"{name} must be {word}, got {_show(x)}")
  if np.any(host > INT32_MAX):
    raise ValueError(f"{name} must be at most 2**31 - 1, got {_show(x)}")
  return _leaf(x, host, jnp.int32)


def duration(name: str, x: Any) -> Any:
  """A positive number of steps."""
  return integer(name, x, minimum=1)


def steps(name: str, x: Any) -> Any:
  """A non-negative number of steps."""
  return integer(name, x, minimum=0)


def positive_for_exponential(init_value: Any, warmup_shape: str) -> None:
  """An exponential (geometric) warmup starts from a positive value: 0 never grows."""
  if warmup_shape != "exponential" or is_traced(init_value):
    return
  if np.any(np.asarray(init_value) <= 0):
    raise ValueError(
      f"init_value must be > 0 for warmup_shape='exponential', got {_show(init_value)}"
    )


def sorted_boundaries(name: str, x: Any, *, strict: bool = False) -> Any:
  """A 1-D int32 array of non-negative, sorted boundaries."""
  b = integer(name, x, minimum=0, what="a sequence of non-negative integer steps")
  if jnp.ndim(b) != 1:
    raise ValueError(f"{name} must be a 1-D sequence of steps, got {_show(x)}")
  if not is_traced(b):
    d = np.diff(np.asarray(b))
    if np.any(d < 0) or (strict and np.any(d == 0)):
      kind = "strictly increasing" if strict else "sorted in increasing order"
      raise ValueError(f"{name} must be {kind}, got {_show(x)}")
  return b


def same_length(names: tuple[str, str], a: Any, b: Any, offset: int = 0) -> None:
  """len(b) == len(a) + offset, e.g. one more value than boundaries."""
  la, lb = len(a), len(b)
  if lb != la + offset:
    want = f"len({names[0]}) + {offset}" if offset else f"len({names[0]})"
    raise ValueError(
      f"{names[1]} must have {want} = {la + offset} entries, got {lb}: "
      f"{names[0]}={_show(a)}, {names[1]}={_show(b)}"
    )


def not_longer(
  short_name: str, short: Any, long_name: str, long: Any, strict: bool = False
) -> None:
  """short <= long (or <) when both are concrete, e.g. warmup_steps <= total_steps."""
  if is_traced(short) or is_traced(long):
    return
  s, lg = np.asarray(short), np.asarray(long)
  if np.any(s > lg) or (strict and np.any(s == lg)):
    rel = "shorter than" if strict else "at most"
    raise ValueError(f"{short_name} must be {rel} {long_name} = {_show(long)}, got {_show(short)}")


def choice(name: str, x: Any, options: tuple[str, ...]) -> str:
  if x not in options:
    raise ValueError(f"{name} must be one of {list(options)}, got {x!r}")
  return x


def flag(name: str, x: Any) -> bool:
  if not isinstance(x, (bool, np.bool_)):
    raise ValueError(f"{name} must be True or False, got {x!r}")
  return bool(x)


def schedule(name: str, x: Any) -> Any:
  if not isinstance(x, Schedule):
    raise ValueError(f"{name} must be an lrjax schedule, got {x!r}")
  return x


def _show(x: Any) -> str:
  if isinstance(x, np.ndarray):
    return repr(x.tolist())
  if isinstance(x, jax.Array) and not is_traced(x):
    return repr(np.asarray(x).tolist())
  return repr(x)
