"""k-decay (Zhang and Li 2020): a decay's progress t / T read as (t / T)^k.

`cosine_decay`, `sgdr` and `polynomial_decay` take `k_decay=k`, as timm's `CosineLRScheduler`
and `PolyLRScheduler` do: the decay's formula is evaluated at the progress :math:`(t/T)^k`
instead of :math:`t/T` (within each cycle for `sgdr`). :math:`k > 1` holds the rate high for
longer and decays it faster at the end; :math:`k < 1` decays early. Both ends stay where they
were: the progress is still exactly 0 at the start and 1 at the end.

A schedule whose `k_decay` is known to be 1 takes exactly the formula it had without one; a traced
`k_decay` computes both and selects, so its values at k = 1 are those too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from lrjax.schedules.formulas import known_equal, safe_pow
from lrjax.schedules.steps import host_scalar


def warp(done: jax.Array, left: jax.Array, k: Any) -> tuple[jax.Array, jax.Array]:
  """(done^k, 1 - done^k) from the fractions done and left = 1 - done of a decay, for k > 0.

  Each from the fraction that keeps its precision where it is small: done^k from done (exactly 0
  at done = 0) and 1 - (1 - left)^k = -expm1(k log1p(-left)) from left (exactly 0 at left = 0,
  and with full relative precision next to it, where a subtraction from 1 would cancel).
  Gradients stay finite at both ends.
  """
  inside = left < 1
  log_done = jnp.log1p(-jnp.where(inside, left, 0.0))
  left_k = jnp.where(inside, -jnp.expm1(k * log_done), 1.0)
  return safe_pow(done, k), left_k


def with_k_decay(
  k: Any, plain: Callable[[], jax.Array], warped: Callable[[], jax.Array]
) -> jax.Array:
  """`plain()` where k is 1, `warped()` elsewhere; only the one needed when k is known."""
  if known_equal(k, 1.0):
    return plain()
  if host_scalar(k) is not None:
    return warped()
  return jnp.where(k == 1, plain(), warped())
