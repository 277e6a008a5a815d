"""Shared test setup: strict promotion catches silent float64/weak-type drift in the formulas.

The tests run with the XLA:CPU settings that `lrjax`'s command line uses (`xla_cpu.tune`), so
what they check is what users run.
"""

import jax
import pytest

from lrjax.train import xla_cpu

xla_cpu.tune()
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def jit_eval():
  """Evaluates a schedule under jit, with the schedule as an ordinary (traced) argument."""
  return jax.jit(lambda schedule, step: schedule(step))
