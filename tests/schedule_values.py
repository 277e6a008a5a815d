"""Evaluating schedules as the schedule tests do: under jit, the schedule a traced argument."""

import jax
import numpy as np

jit_eval = jax.jit(lambda schedule, step: schedule(step))


def values(schedule, steps) -> np.ndarray:
  """float64 values at int32 `steps`, padded to a power-of-two length to share compilations."""
  steps = np.asarray(steps, np.int32).ravel()
  padded = np.zeros(max(16, 1 << (len(steps) - 1).bit_length()), np.int32)
  padded[: len(steps)] = steps
  return np.asarray(jit_eval(schedule, padded), np.float64)[: len(steps)]


def optax_values(schedule, steps) -> np.ndarray:
  """An optax schedule (a Python function of one step) vmapped under jit."""
  return np.asarray(jax.jit(jax.vmap(schedule))(np.asarray(steps, np.int32)))
