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


def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
  """num / den with den == 0 mapped to 0, and a gradient that stays finite there."""
  zero = den == 0
  return jnp.where(zero, 0.0, num / jnp.where(zero, 1.0, den))


def fraction_left(t: jax.Array, total: jax.Array) -> jax.Array:
  """(T - min(t, T)) / T in float32: exactly 1 at t = 0 and exactly 0 at t >= T.

  XLA may compute x / T as x * (1 / T), which is not exact, so both ends are pinned explicitly.
  """
  t = jnp.clip(t, 0, total)
  frac = safe_div((total - t).astype(jnp.float32), jnp.asarray(total, jnp.float32))
  return jnp.where(t <= 0, 1.0, jnp.where(t >= total, 0.0, frac))


def fraction_done(t: jax.Array, total: jax.Array) -> jax.Array:
  """min(t, T) / T in float32: exactly 0 at t = 0 and exactly 1 at t >= T."""
  t = jnp.clip(t, 0, total)
  frac = safe_div(t.astype(jnp.float32), jnp.asarray(total, jnp.float32))
  return jnp.where(t >= total, 1.0, jnp.where(t <= 0, 0.0, frac))


def safe_pow(base: jax.Array, exponent: jax.Array) -> jax.Array:
  """base ** exponent for base >= 0 with 0 ** 0 = 1 and gradients that stay finite at base = 0."""
  pos = base > 0
  powered = jnp.power(jnp.where(pos, base, 1.0), exponent)
  return jnp.where(pos, powered, jnp.where(exponent == 0, 1.0, 0.0))


def lerp(start: jax.Array, end: jax.Array, frac: jax.Array, rest: Any = None) -> jax.Array:
  """start + (end - start) * frac: exactly `start` at frac <= 0 and `end` at frac >= 1.

  `rest` is 1 - frac where the caller has it exactly (from integer steps). The value is anchored
  at the smaller end (start + (end - start) * frac when rising, end + (start - end) * rest when
  falling), so values near it, a decay to 0 or a warmup from 0, keep full relative precision.
  The clip stops a rounded value from overshooting an end, keeping the result monotone in frac.
  """
  rest = 1.0 - frac if rest is None else rest
  v = jnp.where(start <= end, start + (end - start) * frac, end + (start - end) * rest)
  v = jnp.clip(v, jnp.minimum(start, end), jnp.maximum(start, end))
  return jnp.where(frac <= 0, start, jnp.where(frac >= 1, end, v))


def _host_scalar(x: Any) -> np.ndarray | None:
  """`x` as a 0-d host array when it is known at trace time (not traced, not batched)."""
  if isinstance(x, jax.core.Tracer) or np.ndim(x) != 0:
    return None
  return np.asarray(x)


def known_equal(x: Any, value: float) -> bool:
  """True when `x` is known at trace time (not traced) and equal to `value` everywhere.

  Lets a formula drop work that a hyperparameter makes unnecessary (an exponent of 1) when the
  schedule's values are compile-time constants; traced values take the general path.
  """
  if isinstance(x, jax.core.Tracer):
    return False
  return bool(np.all(np.asarray(x) == value))


def _exact_neighbour(guess: np.float32, hits) -> np.float32 | None:
  """`guess` or one of the float32s next to it for which `hits` holds, or None."""
  up, down = np.float32(np.inf), np.float32(-np.inf)
  for cand in (guess, np.nextafter(guess, up), np.nextafter(guess, down)):
    if hits(np.float32(cand)):
      return np.float32(cand)
  return None


def unit_scale(total: Any) -> np.float32 | None:
  """A float32 r with T * r == 1 exactly, for a known integer T in [1, 2**24]; else None.

  (T - t) * r is then exactly 1 at t = 0 and exactly 0 at t = T: a fraction with exact ends and
  no pins. (XLA computes x / T as x * fl(1 / T), which can miss 1 by an ulp.)
  """
  n = _host_scalar(total)
  if n is None or not 1 <= int(n) <= 2**24:
    return None
  t = np.float32(int(n))
  return _exact_neighbour(np.float32(1) / t, lambda r: t * r == np.float32(1))


def exact_gap(end: Any, start: Any) -> np.float32 | None:
  """A float32 gap with end + gap == start exactly, for known scalars; else None.

  end + gap * y then starts exactly at `start` (y = 1) and ends exactly at `end` (y = 0), and is
  monotone in y, without pins. None also when no float32 next to start - end is such a gap.
  """
  e, s = _host_scalar(end), _host_scalar(start)
  if e is None or s is None:
    return None
  e, s = np.float32(e), np.float32(s)
  return _exact_neighbour(s - e, lambda g: e + g == s)


def whole_div(a: Any, b: Any) -> jax.Array:
  """a // b for int32 a >= 0 and b >= 1: C division, which is floor division for these signs.

  jnp's `//` adds sign corrections that cost a remainder, compares and a select per element.
  """
  a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
  return jax.lax.div(a, b)


def whole_mod(a: Any, b: Any) -> jax.Array:
  """a % b for int32 a >= 0 and b >= 1 (C remainder, which is Python's for these signs)."""
  a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
  return jax.lax.rem(a, b)


def power_of(base: jax.Array, exponent: Any) -> jax.Array:
  """base ** exponent for base >= 0 as `safe_pow`; a known whole exponent is multiplications."""
  p = _host_scalar(exponent)
  if p is not None and float(p).is_integer() and 0 < float(p) <= 8:
    return jax.lax.integer_pow(base, int(p))  # finite gradients at 0 for p >= 1
  return safe_pow(base, exponent)


def sin_squared_ramp(x: jax.Array) -> jax.Array:
  """sin(pi x / 2) ** 2 = (1 - cos(pi x)) / 2, unpinned (callers pin their ends)."""
  return jnp.square(jnp.sin((0.5 * np.pi) * x))


def fraction_from(t: jax.Array, total: Any, from_start: Any) -> jax.Array:
  """min(t, T) / T where `from_start`, else (T - min(t, T)) / T, in float32 (unpinned).

  The numerator is an exact integer; T = 0 divides by 1, keeping values and gradients finite.
  """
  tc = jnp.minimum(t, total)
  n = jnp.where(from_start, tc, total - tc).astype(jnp.float32)
  return n / jnp.maximum(total, 1).astype(jnp.float32)


def anchored_blend(
  start: Any, end: Any, m: jax.Array, t: jax.Array, total: Any, last: Any = None
) -> jax.Array:
  """lo + (hi - lo) * m, m in [0, 1] measured from the smaller end lo = min(start, end).

  Capped at hi (so rounding cannot overshoot and the result stays monotone in m), exactly `start`
  at t <= 0 and exactly `last` (default `end`) at t >= total.
  """
  lo, hi = jnp.minimum(start, end), jnp.maximum(start, end)
  v = jnp.minimum(lo + (hi - lo) * m, hi)
  return jnp.where(t >= total, end if last is None else last, jnp.where(t <= 0, start, v))


def interpolate(
  start: Any,
  end: Any,
  t: jax.Array,
  total: Any,
  shape: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
  """`start` -> `end` over `total` steps along a symmetric `shape`, exact at both ends.

  `shape` maps the fraction x in [0, 1] to [0, 1] with shape(0) = 0, shape(1) = 1 and
  1 - shape(1 - x) = shape(x) (linear when None; `sin_squared_ramp` for a cosine). The value is
  anchored at the smaller end: lo + (hi - lo) * shape(x), with x measured from that end, so a decay
  to 0 or a warmup from 0 keeps full relative precision there, and only one shape is evaluated.
  Exactly `start` at t <= 0 and `end` at t >= total (also for total = 0), monotone in between.
  """
  x = fraction_from(t, total, start < end)
  return anchored_blend(start, end, x if shape is None else shape(x), t, total)


def cosine_ramp(frac: jax.Array) -> jax.Array:
  """(1 - cos(pi * frac)) / 2: exactly 0 at frac <= 0 and exactly 1 at frac >= 1.

  Computed as sin(pi * frac / 2) ** 2, which keeps full relative precision near frac = 0 where
  1 - cos cancels.
  """
  ramp = jnp.square(jnp.sin(0.5 * jnp.pi * frac))
  return jnp.where(frac <= 0, 0.0, jnp.where(frac >= 1, 1.0, ramp))
