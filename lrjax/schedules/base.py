"""The schedule pytree base class.

A schedule is an immutable dataclass registered as a JAX pytree. Its numeric hyperparameters
(values, durations, boundaries, cycle counts, child schedules) are leaves; its kind (the class)
and its few non-numeric options (a mode name, a flag), declared with `static_field()`, are static.
So a schedule can be passed as an ordinary argument to a jitted function, vmapped over, and
rebuilt from a config, and two schedules of the same kind with other values share one compiled
program.

Equality and hashing are by value: two schedules are equal when they are of the same kind, have
the same static fields and the same structure, and their leaves hold equal numbers (`0.1` and
`np.float32(0.1)` build equal schedules). The hash is computed from the same things (the pytree
structure and every leaf's values as float64 bytes), so equal schedules hash alike, and a
schedule can be a `jax.jit` function (`jax.jit(schedule)`), a static argument
(`static_argnums`) or a `functools.lru_cache` key. A schedule holding traced values (built
inside `jit` or `vmap` from traced hyperparameters) has no value to compare: it compares equal
only to itself and hashes by identity, which keeps hash and equality consistent.

Steps are 0-based optimizer updates. `Schedule.__call__` normalises every kind of step
(Python int, NumPy or JAX integer or float scalar, arrays of steps) to int32 before the formula
sees it (see `lrjax.schedules.steps`, where steps past 2**31 - 1 are handled).

The base knows nothing of particular schedules, their combinators or the config registry:
`config.register` sets a registered class's `config_name` and `factory`, and the arithmetic
operators (`a + b`, `0.5 * a`) are defined with the combinators in `lrjax.schedules.arithmetic`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules.steps import INT32_MAX as INT32_MAX
from lrjax.schedules.steps import Step, as_int32_step, true_steps


def static_field() -> Any:
  """Declares a dataclass field static: pytree metadata, hashable, part of the compiled program.

  `mode: str = static_field()`. Every other field is a child: a leaf array, a child schedule, a
  tuple of them, or None.
  """
  return dataclasses.field(metadata=dict(static=True))


def register_pytree(cls: type) -> type:
  """Registers a frozen dataclass as a pytree: `static_field()`s are metadata, the rest children.

  Not `jax.tree_util.register_dataclass`: in jax 0.10 the tree structures of two such classes
  with the same layout compare equal (only their hashes differ), so a jitted function given a
  `Repeat` could run the program compiled for a `PerEpoch` of the same shape whenever the cache
  met both. A node registered here keeps its class in its structure.
  """
  fields = dataclasses.fields(cls)
  static = tuple(f.name for f in fields if f.metadata.get("static", False))
  children = tuple(f.name for f in fields if not f.metadata.get("static", False))
  keys = tuple(jax.tree_util.GetAttrKey(name) for name in children)

  def flatten(x):
    return [getattr(x, n) for n in children], tuple(getattr(x, n) for n in static)

  def flatten_with_keys(x):
    return [(k, getattr(x, n)) for k, n in zip(keys, children)], tuple(
      getattr(x, n) for n in static
    )

  def unflatten(meta, leaves):
    return cls(**dict(zip(children, leaves)), **dict(zip(static, meta)))

  jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
  cls._static_fields, cls._child_fields = static, children
  return cls


def schedule_class(cls: type) -> type:
  """Turns a `Schedule` subclass into a frozen dataclass registered as a pytree.

  Fields declared with `static_field()` are pytree metadata; the others are children.
  """
  return register_pytree(dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls))


class Schedule:
  """Base class of every lrjax schedule: a pure `step -> learning rate` pytree.

  Subclasses are declared with `@schedule_class` and implement `_value(t)`, where `t` is an int32
  array (any shape) of non-negative steps; the result is cast to float32.
  """

  _static_fields: ClassVar[tuple[str, ...]] = ()
  _child_fields: ClassVar[tuple[str, ...]] = ()
  # Set by `config.register`: the name under which the schedule is registered and its factory.
  config_name: ClassVar[str] = ""
  factory: ClassVar[Callable[..., Schedule] | None] = None

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
    host = true_steps(step)
    if host is not None:
      tail = self._tail(jnp.asarray(host, jnp.float32), t)
      if tail is not None:
        return jnp.asarray(tail).astype(jnp.float32)
    return self._value(t).astype(jnp.float32)

  def cycle_ends(self, total_steps: int) -> tuple[int, ...]:
    """The step counts at which a cycle of the schedule has ended, in a run of `total_steps`.

    A cycle ends after `e` updates for each `e` returned: sorted, each at most `total_steps`, and
    the last one is `total_steps` itself (the run's end closes the last, possibly unfinished,
    cycle). A schedule without cycles returns `()`. Cyclic schedules: `cosine_annealing` (every
    :math:`\\lceil T / M \\rceil` steps), `sgdr` (cycles of :math:`L r^i` steps), `cyclical`
    (every :math:`U + D`) and `repeat` (every period, and its child's cycles within a period);
    combinators pass their children's cycles through, moved to where they run (`join`, `shift`,
    `warmup`), counted in epochs (`per_epoch`) or unchanged (`scale`, `clip`, `add`, ...).
    Snapshot ensembles keep a model at each of these steps.

    Args:
      total_steps: the number of updates of the run, an integer >= 0.

    Raises:
      ValueError: if `total_steps` is not a non-negative integer, or the schedule's cycle lengths
        are traced or batched (they are needed on the host).
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)):
      raise ValueError(f"total_steps must be a non-negative integer, got {total_steps!r}")
    if total_steps < 0:
      raise ValueError(f"total_steps must be a non-negative integer, got {total_steps!r}")
    return close_cycles(self._cycle_ends(int(total_steps)), int(total_steps))

  def _cycle_ends(self, total_steps: int) -> Iterable[int]:
    """Cycle ends before `close_cycles`: any order, repeats and ends past the run allowed."""
    return ()

  def replace(self, **changes: Any) -> Schedule:
    """A copy with some fields changed, validated again through the registered factory.

    Args:
      **changes: new values of some of the schedule's fields (its factory's arguments).

    Returns:
      A new schedule of the same kind.

    Raises:
      ValueError: if the schedule's kind is not registered, or the factory refuses a value.
      TypeError: for a name that is not one of the factory's arguments.

    Example:
      >>> lrjax.linear_decay(0.1, 100).replace(total_steps=50)
      LinearDecay(init_value=0.1, total_steps=50, end_value=0.0)
    """
    factory = type(self).factory
    if factory is None:
      raise ValueError(f"{type(self).__name__} is not registered and cannot be rebuilt")
    return factory(**{**self.fields(), **changes})

  def to_config(self) -> dict[str, Any]:
    """A JSON-serialisable dict that `lrjax.from_config` turns back into an equal schedule.

    `{"name": <factory name>, <argument>: <value>, ...}`: the keys are the factory's keyword
    arguments (a schedule's fields are exactly those), child schedules are nested dicts.
    """
    name = type(self).config_name
    if not name:
      raise ValueError(f"{type(self).__name__} is not registered and has no config")
    out: dict[str, Any] = {"name": name}
    for key, value in self.fields().items():
      out[key] = config_value(f"{name}.{key}", value)
    return out

  def fields(self) -> dict[str, Any]:
    """The schedule's fields by name, as stored: leaves are arrays, children are schedules."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def __eq__(self, other: object) -> bool:
    if type(self) is not type(other):
      return NotImplemented
    a, b = jax.tree.flatten(self), jax.tree.flatten(other)
    if _traced(a[0]) or _traced(b[0]):
      return NotImplemented  # no values to compare: Python falls back to identity
    if a[1] != b[1]:
      return False
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a[0], b[0]))

  def __hash__(self) -> int:
    leaves, treedef = jax.tree.flatten(self)
    if _traced(leaves):
      return object.__hash__(self)  # compares by identity too (see __eq__)
    return hash((treedef, tuple(_leaf_key(x) for x in leaves)))

  def __repr__(self) -> str:
    parts = []
    for name, v in self.fields().items():
      parts.append(f"{name}={_short_repr(v)}")
    return f"{type(self).__name__}({', '.join(parts)})"


def _traced(leaves: list[Any]) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in leaves)


def _leaf_key(x: Any) -> tuple[tuple[int, ...], bytes]:
  """Shape and values as float64 bytes: equal whenever `np.array_equal` holds.

  float64 holds every int32 and float32 exactly, so an int 3 and a float 3.0 (equal by value)
  give the same bytes; adding 0.0 turns -0.0 into 0.0, which equals it.
  """
  a = np.asarray(x).astype(np.float64) + 0.0
  return a.shape, a.tobytes()


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


def config_value(where: str, value: Any) -> Any:
  """A field's value as JSON-ready Python numbers, lists, strings and nested configs.

  `where` names the field in errors (a traced value has no config value).
  """
  if isinstance(value, Schedule):
    return value.to_config()
  if isinstance(value, (tuple, list)):
    return [config_value(f"{where}[{i}]", v) for i, v in enumerate(value)]
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


def close_cycles(ends: Iterable[int], total_steps: int) -> tuple[int, ...]:
  """Sorted, distinct cycle ends in [1, total_steps], closed by `total_steps` when any."""
  kept = sorted({int(e) for e in ends if 0 < int(e) <= total_steps})
  if not kept:
    return ()
  if kept[-1] != total_steps:
    kept.append(total_steps)
  return tuple(kept)


def periodic_ends(period: int, total_steps: int, offset: int = 0) -> list[int]:
  """Ends `offset + k * period` (k >= 1) of cycles of `period` steps within `total_steps`."""
  if period < 1 or total_steps <= offset:
    return []
  return list(range(offset + period, total_steps + 1, period)) + [total_steps]
