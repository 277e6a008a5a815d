"""Schedule cost against optax, measured side by side in one process.

For each pair (an lrjax schedule and the optax schedule with the same values):
- vectorised: one jitted call over 10**6 steps;
- scalar: one call per step inside a jitted `lax.fori_loop` of 10**5 steps.
The figure is lrjax time / optax time (target <= 1.05): the median, over rounds, of the ratio
of the two timed back to back (with its quartiles, to show the noise).
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
    "linear_decay": (
      lrjax.linear_decay(0.1, 10_000, 0.001),
      optax.linear_schedule(0.1, 0.001, 10_000),
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


def _once(fn, *args) -> float:
  t = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t


def _paired_ratio(ours, theirs, args_ours=(), args_theirs=(), rounds: int = 61) -> tuple:
  """Median over rounds of (time of ours / time of theirs), the two timed back to back.

  Pairing cancels drifts in machine speed; alternating which side goes first cancels cache and
  turbo effects of going second. Returns (median ratio, quartiles of the ratio, median theirs s).
  """
  for _ in range(3):  # compile and warm up outside the timing
    _once(ours, *args_ours), _once(theirs, *args_theirs)
  ratios, base = [], []
  for r in range(rounds):
    if r % 2:
      a, b = _once(ours, *args_ours), _once(theirs, *args_theirs)
    else:
      b, a = _once(theirs, *args_theirs), _once(ours, *args_ours)
    ratios.append(a / b)
    base.append(b)
  q1, med, q3 = np.percentile(ratios, [25, 50, 75])
  return float(med), (float(q1), float(q3)), float(np.median(base))


def measure(num_vector: int = 10**6, num_scalar: int = 10**5, rounds: int = 61) -> dict:
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
    vec = _paired_ratio(vec_ours, vec_theirs, (steps,), (steps,), rounds)
    loop = _paired_ratio(loop_ours, loop_theirs, rounds=rounds)
    vec_a = _paired_ratio(vec_arg, vec_theirs, (ours, steps), (steps,), rounds)
    loop_a = _paired_ratio(loop_arg, loop_theirs, (ours,), (), rounds)
    results[name] = {
      "vectorised_ratio": vec[0],
      "vectorised_ratio_quartiles": vec[1],
      "scalar_loop_ratio": loop[0],
      "scalar_loop_ratio_quartiles": loop[1],
      "as_argument_vectorised_ratio": vec_a[0],
      "as_argument_scalar_loop_ratio": loop_a[0],
      "optax_vectorised_ms": vec[2] * 1e3,
      "optax_scalar_loop_ms": loop[2] * 1e3,
    }
  return results
