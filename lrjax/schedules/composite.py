"""Schedules built from schedules: evaluating children, folding through them, their cycles.

The base classes of the combinators in time (`lrjax.schedules.compose`) and of values
(`lrjax.schedules.arithmetic`).

Folding (steps past 2**31 - 1, see `Schedule._fold`): a combinator folds a step through its child
so that, for example, `repeat(s, 100)` at step 2**62 equals `s` at step 2**62 % 100. An inner
fold must land low enough that the outer formula maps it back into int32 (an epoch index times
`steps_per_epoch`, a step plus a warmup length); children that are not composites only fold past
2**31 - 1, and where their fold does not land low enough the step saturates instead, which is
exact for a child that is constant from there on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax.schedules.base import Schedule
from lrjax.schedules.decay import Constant
from lrjax.schedules.steps import INT32_MAX, concrete_int, saturate


def evaluate(s: Schedule, t: jax.Array) -> jax.Array:
  """A child's value at int32 steps `t` (already folded by the parent)."""
  return s._value(t).astype(jnp.float32)


def step_free(s: Schedule) -> bool:
  """Whether `s` does not depend on the step (a constant, or composed of constants)."""
  return isinstance(s, Constant) or (isinstance(s, Composite) and s._step_free())


def fold_below(s: Schedule, step: np.ndarray, limit: int) -> np.ndarray:
  """Maps the int64 steps of `s` past `limit` to steps <= limit where `s` has the same value."""
  if isinstance(s, Composite):
    return s._fold_to(step, limit)
  if step_free(s):
    return saturate(step, limit)
  folded = np.where(step > INT32_MAX, s._fold(step), step)
  return np.where(step > limit, np.minimum(folded, limit), step)


def fold_after(child: Schedule, step: np.ndarray, offset: Any, limit: int) -> np.ndarray:
  """Fold for a child that sees `step - offset`."""
  o = concrete_int(offset)
  if o is None or o > limit:
    return saturate(step, limit)
  inner = fold_below(child, step - o, limit - o)
  return np.where(step > limit, o + inner, step)


def host_int(owner: Schedule, name: str) -> int:
  """A scalar field as a Python int for `cycle_ends`; ValueError when traced or batched."""
  v = concrete_int(getattr(owner, name))
  if v is None:
    raise ValueError(
      f"{type(owner).config_name or type(owner).__name__}.{name} must be a concrete scalar to "
      f"compute cycle ends, got {getattr(owner, name)!r}"
    )
  return v


def ends_after(child: Schedule, offset: int, total_steps: int) -> Iterable[int]:
  """The cycle ends of a child that starts after `offset` steps, in the parent's steps."""
  if total_steps <= offset:
    return ()
  return (offset + e for e in child.cycle_ends(total_steps - offset))


class Composite(Schedule):
  """A schedule with schedule children: folds through them (see the module docstring)."""

  def _fold(self, step: np.ndarray) -> np.ndarray:
    return self._fold_to(np.asarray(step, np.int64), INT32_MAX)

  def _fold_to(self, step: np.ndarray, limit: int) -> np.ndarray:
    return saturate(step, limit)

  def _step_free(self) -> bool:
    return False


class Wrapper(Composite):
  """A combinator of one child `schedule`: folds through it, has its cycles, is constant when it is.

  Subclasses that move the child in time override `_fold_to` and `_cycle_ends`.
  """

  def _fold_to(self, step: np.ndarray, limit: int) -> np.ndarray:
    return fold_below(self.schedule, step, limit)

  def _step_free(self) -> bool:
    return step_free(self.schedule)

  def _cycle_ends(self, total_steps: int) -> Iterable[int]:
    return self.schedule.cycle_ends(total_steps)


class Pair(Composite):
  """A combinator of two children `a` and `b` at the same step (see `add` for its fold)."""

  def _fold_to(self, step: np.ndarray, limit: int) -> np.ndarray:
    a, b = self.a, self.b
    if step_free(a) or step_free(b):
      return fold_below(b if step_free(a) else a, step, limit)
    fa, fb = fold_below(a, step, limit), fold_below(b, step, limit)
    # A folded step is valid for both children only where their folds agree; saturate elsewhere.
    return np.where(fa == fb, fa, saturate(step, limit))

  def _step_free(self) -> bool:
    return step_free(self.a) and step_free(self.b)

  def _cycle_ends(self, total_steps: int) -> Iterable[int]:
    return (*self.a.cycle_ends(total_steps), *self.b.cycle_ends(total_steps))
