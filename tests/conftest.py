"""Shared test setup: strict promotion catches silent float64/weak-type drift in the formulas."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def jit_eval():
  """Evaluates a schedule under jit, with the schedule as an ordinary (traced) argument."""
  return jax.jit(lambda schedule, step: schedule(step))
