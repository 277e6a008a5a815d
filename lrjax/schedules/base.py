"""The schedule pytree base class and step handling.

A schedule is an immutable dataclass registered as a JAX pytree. Its numeric hyperparameters
(values, durations, boundaries, cycle counts, child schedules) are leaves; its kind (the class)
and its few non-numeric options (a mode name, a flag) are static. So a schedule can be passed as an
ordinary argument to a jitted function, vmapped over, and rebuilt from a config, and two schedules
of the same kind with other values share one compiled program.

Steps are 0-based optimizer updates. `Schedule.__call__` normalises every kind of step
(Python int, NumPy or JAX integer or float scalar, arrays of steps) to int32 before the formula
sees it; concrete steps past 2**31 - 1 are first folded on the host by `Schedule._fold`, so
formulas only ever handle int32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = 2**31 - 1
# Largest float32 below 2**31: the last float that converts to int32 without overflow.
_FLOAT32_BELOW_2_31 = 2147483520.0

Step = int | float | np.ndarray | jax.Array


def schedule_class(cls: type | None = None, *, static: tuple[str, ...] = ()) -> Any:
  """Turns a `Schedule` subclass into a frozen dataclass registered as a pytree.

  Fields named in `static` are pytree metadata (hashable, part of the compiled program's key);
  every other field is a child (a leaf array, a child schedule, a tuple of them, or None).
  """

  def wrap(c: type) -> type:
    c = dataclasses.dataclass(frozen=True, eq=False, repr=False)(c)
    names = [f.name for f in dataclasses.fields(c)]
    unknown = set(static) - set(names)
    if unknown:
      raise TypeError(f"static fields {sorted(unknown)} are not fields of {c.__name__}")
    c._static_fields = tuple(n for n in names if n in static)
    c._child_fields = tuple(n for n in names if n not in static)
    jax.tree_util.register_dataclass(
      c, data_fields=list(c._child_fields), meta_fields=list(c._static_fields)
    )
    return c

  return wrap if cls is None else wrap(cls)


class Schedule:
  """Base class of every lrjax schedule: a pure `step -> learning rate` pytree.

  Subclasses are declared with `@schedule_class` and implement `_value(t)`, where `t` is an int32
  array (any shape) of non-negative steps; the result is cast to float32.
  """

  _static_fields: ClassVar[tuple[str, ...]] = ()
  _child_fields: ClassVar[tuple[str, ...]] = ()
  # Name under which the schedule is registered for configs; set by `config.register`.
  config_name: ClassVar[str] = ""

  def _value(self, t: jax.Array) -> jax.Array:
    raise NotImplementedError

  def _fold(self, step: np.ndarray) -> np.ndarray:
    """Maps concrete int64 steps past INT32_MAX to int32 steps with the same value.

    The default saturates at INT32_MAX (as optax's counters do), which is exact for any schedule
    that is constant after some step below 2**31. Periodic schedules override this.
    """
    return np.minimum(step, INT32_MAX)

  def _tail(self, t_float: jax.Array, t: jax.Array) -> jax.Array | None:
    """The value at concrete steps past INT32_MAX for schedules that never settle.

    `t_float` holds the true steps in float32, `t` the folded int32 ones. None (the default)
    means the folded steps give the right value; a schedule that keeps changing forever (time-based
    decay, inverse square root) computes from `t_float` instead.
    """
    return None

  def __call__(self, step: Step) -> jax.Array:
    t = as_int32_step(step, self._fold)
    if isinstance(step, (int, float, np.ndarray, np.generic)) and not isinstance(step, bool):
      host = np.asarray(step if not isinstance(step, int) else min(step, 2**63 - 1))
      if np.any(host > INT32_MAX):
        tail = self._tail(jnp.asarray(np.floor(host.astype(np.float64)), jnp.float32), t)
        if tail is not None:
          return jnp.asarray(tail).astype(jnp.float32)
    return self._value(t).astype(jnp.float32)

  # Arithmetic builds composed schedules (lrjax.schedules.arithmetic): `0.5 * a + b` just works.
  def __add__(self, other: Any) -> Schedule:
    from lrjax.schedules import arithmetic as compose

    if not _operand(other):
      return NotImplemented
    return compose.add(self, other)

  __radd__ = __add__

  def __mul__(self, other: Any) -> Schedule:
    from lrjax.schedules import arithmetic as compose

    if not _operand(other):
      return NotImplemented
    if isinstance(other, Schedule):
      return compose.multiply(self, other)
    return compose.scale(self, other)

  __rmul__ = __mul__

  def replace(self, **changes: Any) -> Schedule:
    """A copy with some fields changed, validated again through the registered factory."""
    from lrjax.schedules import config

    return config.from_config({**self.to_config(), **{k: _to_plain(v) for k, v in changes.items()}})

  def to_config(self) -> dict[str, Any]:
    """A JSON-serialisable dict that `lrjax.from_config` turns back into an equal schedule."""
    from lrjax.schedules import config

    return config.to_config(self)

  def fields(self) -> dict[str, Any]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def __eq__(self, other: object) -> bool:
    if type(self) is not type(other):
      return NotImplemented
    a, b = jax.tree.flatten(self), jax.tree.flatten(other)
    if a[1] != b[1]:
      return False
    try:
      return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a[0], b[0]))
    except jax.errors.TracerArrayConversionError:
      return NotImplemented

  __hash__ = None  # type: ignore[assignment]  # leaves are arrays: equality is by value

  def __repr__(self) -> str:
    parts = []
    for name, v in self.fields().items():
      parts.append(f"{name}={_short_repr(v)}")
    return f"{type(self).__name__}({', '.join(parts)})"


def _operand(x: Any) -> bool:
  """Schedules combine with schedules and numbers; anything else gets Python's TypeError."""
  return isinstance(x, (Schedule, int, float, np.number, np.ndarray, jax.Array)) and not isinstance(
    x, bool
  )


def _short_repr(v: Any) -> str:
  if isinstance(v, np.ndarray) and v.ndim == 0:
    return str(v)  # a float32's shortest round-tripping decimal: 0.1, not 0.10000000149011612
  if isinstance(v, np.ndarray):
    return "[" + ", ".join(str(x) for x in v) + "]"
  if isinstance(v, jax.core.Tracer):
    return f"<traced {v.dtype}{list(v.shape)}>"
  if isinstance(v, jax.Array):
    return repr(np.asarray(v).tolist())
  return repr(v)


def _to_plain(v: Any) -> Any:
  if isinstance(v, Schedule):
    return v.to_config()
  return v


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
  if isinstance(step, int) and step > 2**63 - 1:
    step = 2**63 - 1  # int64 holds the rest of the way; folding makes it int32
  if isinstance(step, (int, float, np.ndarray, np.generic)):
    arr = np.asarray(step)
    if arr.dtype == object or not (
      np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
      raise ValueError(f"step must be an integer or float, got {step!r}")
    if np.issubdtype(arr.dtype, np.floating):
      if not np.all(np.isfinite(arr)):
        raise ValueError(f"step must be finite, got {step!r}")
      arr = np.floor(arr)
      arr = np.minimum(arr, float(2**63 - 1024))
    if np.any(arr < 0):
      raise ValueError(f"step must be non-negative, got {step!r}")
    arr = arr.astype(np.int64)
    if np.any(arr > INT32_MAX):
      arr = (fold or (lambda s: np.minimum(s, INT32_MAX)))(arr)
    return jnp.asarray(np.asarray(arr, dtype=np.int64).astype(np.int32))
  step = jnp.asarray(step)
  if jnp.issubdtype(step.dtype, jnp.floating):
    step = jnp.clip(jnp.floor(step), 0.0, _FLOAT32_BELOW_2_31)
    return step.astype(jnp.int32)
  if not jnp.issubdtype(step.dtype, jnp.integer):
    raise ValueError(f"step must be an integer or float array, got dtype {step.dtype}")
  if step.dtype.itemsize > 4 or step.dtype == jnp.uint32:
    step = jnp.clip(step, 0, INT32_MAX)
  return jnp.maximum(step.astype(jnp.int32), 0)


def fold_periodic(
  step: np.ndarray, offset: Any, period: Any, max_cycles: int | None = None
) -> np.ndarray:
  """Host fold for schedules periodic with `period` after `offset` (both concrete ints).

  Keeps the phase `(step - offset) % period` and as many whole cycles as int32 holds (or
  `max_cycles`): a schedule whose value still depends on the cycle index (a decay per cycle) is
  then as far along its decay as an int32 step can take it.
  """
  try:
    offset, period = int(offset), int(period)
  except (TypeError, jax.errors.ConcretizationTypeError):
    return np.minimum(step, INT32_MAX)
  if period <= 0:
    return np.minimum(step, INT32_MAX)
  fit = max((INT32_MAX - offset - period + 1) // period, 0)
  rel = step - offset
  cycles = np.minimum(rel // period, fit if max_cycles is None else min(max_cycles, fit))
  folded = offset + cycles * period + rel % period
  return np.where(step > INT32_MAX, np.minimum(folded, INT32_MAX), step)
