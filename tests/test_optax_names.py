"""Names lrjax shares with optax: a positional call means what it means in optax, or is refused."""

import inspect

import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import lrjax

STEPS = np.array([0, 1, 5, 9, 10, 11, 50, 99, 100, 101, 150, 1000], dtype=np.int32)


def _optax_twin(name):
  for module in (optax, optax.contrib):
    for candidate in (name, f"{name}_schedule", f"{name}_schedules"):
      if hasattr(module, candidate):
        return getattr(module, candidate)
  return None


# The same positional call in both libraries: the same values.
SAME = {
  "constant": [(0.1,)],
  "cosine_decay": [(0.1, 100)],
  "exponential_decay": [
    (0.1, 10, 0.5),
    (0.1, 10, 0.5, 5),
    (0.1, 10, 0.5, 5, True),
    (0.1, 10, 0.5, 5, True, 0.01),
    (0.1, 10, 2.0, 0, False, 0.5),
  ],
  "warmup_cosine_decay": [
    (0.0, 0.1, 10, 100),
    (0.01, 0.1, 10, 100, 0.001),
    (0.01, 0.1, 10, 100, 0.001, 2.0),
  ],
}

# Calls that mean something else in optax: lrjax refuses them.
REFUSED = {
  "cosine_decay": [(0.1, 100, 0.1), (0.1, 100, 0.1, 2.0)],  # optax: alpha, exponent
  "piecewise_constant": [(0.1, {10: 0.5, 20: 0.1})],  # optax: init_value, boundaries_and_scales
  "sgdr": [([dict(init_value=0.1, peak_value=0.1, warmup_steps=0, decay_steps=10)],)],
  "reduce_on_plateau": [(0.5, 5), (0.5, 5, 1e-3)],  # optax: factor, patience, rtol
  "scale": [(0.1,)],  # optax: a gradient transformation, scale(step_size)
  "clip": [(0.1,)],  # optax: clip(max_delta)
}


def test_every_shared_name_is_covered():
  shared = {n for n in lrjax.__all__ if n[0].islower() and _optax_twin(n) is not None}
  assert shared == set(SAME) | set(REFUSED) | {"join"}


@pytest.mark.parametrize("name, args", [(n, a) for n, cases in SAME.items() for a in cases])
def test_same_positional_call_same_values(name, args):
  ours, theirs = getattr(lrjax, name)(*args), _optax_twin(name)(*args)
  want = np.array([float(theirs(int(t))) for t in STEPS])
  np.testing.assert_allclose(ours(STEPS), want, rtol=2e-6, atol=1e-8)


def test_join_same_positional_call_same_values():
  a = lrjax.linear_decay(0.0, 10, end_value=0.1)
  b = lrjax.cosine_decay(0.1, 90)
  ours, theirs = lrjax.join([a, b], [10]), optax.join_schedules([a, b], [10])
  # optax calls the pieces at negative steps: give it device steps, which lrjax clamps to 0.
  np.testing.assert_allclose(ours(STEPS), theirs(jnp.asarray(STEPS)), rtol=2e-6)


@pytest.mark.parametrize("name, args", [(n, a) for n, cases in REFUSED.items() for a in cases])
def test_positional_call_with_another_meaning_is_refused(name, args):
  # A gradient transformation's argument is no schedule: clip says so by name (ValueError).
  error = ValueError if name == "clip" else TypeError
  with pytest.raises(error):
    getattr(lrjax, name)(*args)


def test_cosine_decay_takes_optax_alpha():
  ours = lrjax.cosine_decay(0.1, 100, alpha=0.1, exponent=2.0)
  theirs = optax.cosine_decay_schedule(0.1, 100, alpha=0.1, exponent=2.0)
  np.testing.assert_allclose(ours(STEPS), [float(theirs(int(t))) for t in STEPS], rtol=2e-6)
  end = np.float32(0.1) * np.float32(0.1)
  assert ours == lrjax.cosine_decay(0.1, 100, end_value=end, exponent=2.0)
  assert lrjax.from_config(ours.to_config()) == ours
  with pytest.raises(ValueError, match="end_value or alpha"):
    lrjax.cosine_decay(0.1, 100, end_value=0.01, alpha=0.1)
  with pytest.raises(ValueError, match="alpha"):
    lrjax.cosine_decay(0.1, 100, alpha=-0.5)


def test_keyword_only_arguments_are_marked():
  params = inspect.signature(lrjax.cosine_decay).parameters
  assert [p for p in params if params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == [
    "init_value",
    "decay_steps",
  ]
  params = inspect.signature(lrjax.reduce_on_plateau).parameters
  assert [p for p in params if params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == [
    "init_value"
  ]
