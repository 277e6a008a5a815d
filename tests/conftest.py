"""Shared test setup: strict promotion catches silent float64/weak-type drift in the formulas.

The tests run under the runtime `lrjax`'s command line gives a default config
(`lrjax.runtime.setup()`, applied here before any JAX computation), so what they check is what
users run.
"""

import jax
import pytest

from lrjax import runtime

runtime.setup({"threads": 1})
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def jit_eval():
  """Evaluates a schedule under jit, with the schedule as an ordinary (traced) argument."""
  return jax.jit(lambda schedule, step: schedule(step))
