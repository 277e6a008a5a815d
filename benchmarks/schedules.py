"""Schedule cost against optax, measured side by side in one process.

For each pair (an lrjax schedule and the optax schedule with the same values):
- vectorised: one jitted call over 10**6 steps;
- scalar: one call per step inside a jitted `lax.fori_loop` of 10**5 steps.
The figure is lrjax time / optax time (target <= 1.05), the median of interleaved repeats.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax


def pairs() -> dict[str, tuple]:
  return {
    "cosine_decay": (
      lrjax.cosine_decay(0.1, 10_000, end_value=0.001),
      optax.cosine_decay_schedule(0.1, 10_000, alpha=0.01),
    ),
    "polynomial": (
      lrjax.polynomial_decay(0.1, 10_000, 2.0, 0.001),
      optax.polynomial_schedule(0.1, 0.001, 2.0, 10_000),
    ),
    "staircase_exponential": (
      lrjax.exponential_decay(0.1, 1000, 0.5, staircase=True),
      optax.exponential_decay(0.1, 1000, 0.5, staircase=True),
    ),
    "warmup_cosine": (
      lrjax.warmup_cosine_decay(0.0, 0.1, 500, 10_000),
      optax.warmup_cosine_decay_schedule(0.0, 0.1, 500, 10_000),
    ),
    "join_of_three": (
      lrjax.join(
        [lrjax.linear_decay(0.0, 500, 0.1), lrjax.constant(0.1), lrjax.cosine_decay(0.1, 5000)],
        [500, 3000],
      ),
      optax.join_schedules(
        [
          optax.linear_schedule(0.0, 0.1, 500),
          optax.constant_schedule(0.1),
          optax.cosine_decay_schedule(0.1, 5000),
        ],
        [500, 3000],
      ),
    ),
  }


def _time(fn, *args, repeats: int) -> list[float]:
  jax.block_until_ready(fn(*args))  # compile and warm up outside the timing
  out = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    out.append(time.perf_counter() - t)
  return out


def measure(num_vector: int = 10**6, num_scalar: int = 10**5, repeats: int = 15) -> dict:
  steps = jnp.arange(num_vector, dtype=jnp.int32)
  results = {}
  for name, (ours, theirs) in pairs().items():
    # Like for like: both schedules closed over (their values are compile-time constants).
    # Also lrjax's schedule as a jit argument (a pytree), which is what lets new values reuse the
    # compiled program; its values are then runtime inputs (no constant folding).
    vec_ours = jax.jit(lambda t, f=ours: f(t))
    vec_arg = jax.jit(lambda s, t: s(t))
    vec_theirs = jax.jit(lambda t, f=theirs: f(t))

    def looped(f, n=num_scalar):
      return jax.lax.fori_loop(0, n, lambda i, acc: acc + f(i), jnp.float32(0))

    loop_ours = jax.jit(lambda f=ours: looped(f))
    loop_arg = jax.jit(looped)
    loop_theirs = jax.jit(lambda f=theirs: looped(f))
    np.testing.assert_allclose(
      vec_ours(steps[:20_000]), vec_theirs(steps[:20_000]), rtol=1e-4, atol=1e-7
    )
    t = {k: [] for k in ("vo", "va", "vt", "lo", "la", "lt")}
    # Interleave the sides so drifts in machine speed hit them alike.
    for _ in range(3):
      t["vo"] += _time(vec_ours, steps, repeats=repeats // 3)
      t["va"] += _time(vec_arg, ours, steps, repeats=repeats // 3)
      t["vt"] += _time(vec_theirs, steps, repeats=repeats // 3)
      t["lo"] += _time(loop_ours, repeats=repeats // 3)
      t["la"] += _time(loop_arg, ours, repeats=repeats // 3)
      t["lt"] += _time(loop_theirs, repeats=repeats // 3)
    m = {k: float(np.median(v)) for k, v in t.items()}
    results[name] = {
      "vectorised_ratio": m["vo"] / m["vt"],
      "scalar_loop_ratio": m["lo"] / m["lt"],
      "as_argument_vectorised_ratio": m["va"] / m["vt"],
      "as_argument_scalar_loop_ratio": m["la"] / m["lt"],
      "optax_vectorised_ms": m["vt"] * 1e3,
      "optax_scalar_loop_ms": m["lt"] * 1e3,
    }
  return results
