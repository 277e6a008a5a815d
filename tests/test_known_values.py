"""Schedules whose values are known at trace time take cheaper paths; they must agree with the
general (traced) path, keep both ends exact and stay monotone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrjax
from lrjax.schedules import formulas

NO_UNIT_SCALE = next(n for n in range(1, 1000) if formulas.unit_scale(n) is None)
CASES = [
  lrjax.polynomial_decay(0.1, 10_000, 2.0, 0.001),
  lrjax.polynomial_decay(0.1, 37, 3.0),
  lrjax.polynomial_decay(0.3, 37, 0.5, 0.01),
  lrjax.polynomial_decay(0.01, 50, 2.0, 0.7),  # rising
  lrjax.polynomial_decay(0.1, 50, 0.0, 0.02),
  lrjax.polynomial_decay(0.1, 3 * 2**23, 7.0),
  lrjax.polynomial_decay(0.1, 2**24 + 3, 2.0, 0.001),  # too long for the exact fraction
  lrjax.polynomial_decay(0.1, NO_UNIT_SCALE, 2.0, 0.001),
  lrjax.linear_decay(0.0, 500, 0.1),
  lrjax.linear_decay(0.1, 7, 0.0),
  lrjax.cosine_decay(0.1, 10_000, end_value=0.001),
  lrjax.cosine_decay(0.1, 13, exponent=2.0),
  lrjax.cosine_decay(0.1, 13, exponent=0.5, end_value=0.02),
  lrjax.cosine_decay(0.01, 13, end_value=0.1),  # rising
  lrjax.cosine_decay(0.01, 13, end_value=0.1, exponent=3.0),
  lrjax.cosine_decay(0.1, 13, exponent=0.0, end_value=0.05),
  lrjax.warmup_cosine_decay(0.0, 0.1, 500, 10_000),
  lrjax.warmup_cosine_decay(0.05, 0.01, 3, 20, 0.001),
  lrjax.warmup_cosine_decay(0.0, 0.1, 0, 20),
  lrjax.exponential_decay(0.1, 1000, 0.5, staircase=True),
  lrjax.exponential_decay(0.1, 7, 0.9, transition_begin=5, end_value=0.05),
  lrjax.step_decay(0.1, 0.5, 3),
]


def _horizon(s) -> int:
  for name in ("total_steps", "decay_steps", "transition_steps", "drop_every"):
    if hasattr(s, name):
      return int(np.asarray(getattr(s, name)))
  raise AssertionError(s)


def _steps(s) -> np.ndarray:
  n = _horizon(s)
  edges = [0, 1, 2, n // 2, n - 2, n - 1, n, n + 1, 2 * n, 10 * n, 2**31 - 1]
  return np.unique(np.clip(np.array(edges + list(range(min(n + 3, 300)))), 0, 2**31 - 1)).astype(
    np.int32
  )


@pytest.mark.parametrize("s", CASES, ids=repr)
def test_known_values_agree_with_traced_values(s):
  steps = jnp.asarray(_steps(s))
  closed = np.asarray(jax.jit(lambda t: s(t))(steps))
  traced = np.asarray(jax.jit(lambda sched, t: sched(t))(s, steps))
  eager = np.asarray(s(np.asarray(steps)))
  np.testing.assert_allclose(closed, traced, rtol=2e-6, atol=1e-9)
  np.testing.assert_allclose(eager, traced, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("s", CASES, ids=repr)
def test_known_values_are_exact_at_both_ends_and_monotone(s):
  steps = _steps(s)
  closed = np.asarray(jax.jit(lambda t: s(t))(jnp.asarray(steps)))
  traced = np.asarray(jax.jit(lambda sched, t: sched(t))(s, jnp.asarray(steps)))
  for out in (closed, traced):
    assert out[0] == np.float32(s(0))
    n = _horizon(s)
    if not isinstance(s, (lrjax.schedules.decay.StepDecay, lrjax.schedules.decay.ExponentialDecay)):
      np.testing.assert_array_equal(out[steps >= n], np.float32(s(10**9)))
    diffs = np.diff(out[steps <= n].astype(np.float64))
    warm = getattr(s, "warmup_steps", None)
    if warm is not None and int(np.asarray(warm)) > 0:
      continue  # rises then falls
    assert np.all(diffs <= 0) or np.all(diffs >= 0), s


@pytest.mark.parametrize("s", CASES, ids=repr)
def test_gradients_of_traced_values_are_finite(s):
  steps = jnp.asarray(_steps(s))

  def total(sched):
    return jnp.sum(sched(steps))

  grads = jax.grad(total, allow_int=True)(s)
  for g in jax.tree.leaves(grads):
    if jnp.issubdtype(g.dtype, jnp.floating):
      assert np.all(np.isfinite(np.asarray(g))), s


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**24))
def test_unit_scale_makes_the_fraction_exact_at_both_ends(total):
  r = formulas.unit_scale(total)
  if r is None:
    return
  assert np.float32(total) * r == np.float32(1)
  left = (np.float32(total) - np.array([0, 1, total], np.float32)) * r
  assert left[0] == 1 and left[2] == 0 and left[1] <= 1


def test_unit_scale_exists_for_most_totals_and_refuses_traced_or_huge():
  found = sum(formulas.unit_scale(n) is not None for n in range(1, 5001))
  assert found >= 4500  # the rest take the pinned path (see CASES)
  assert formulas.unit_scale(2**24 + 1) is None
  assert formulas.unit_scale(np.array([3, 4])) is None
  assert jax.jit(lambda n: jnp.float32(formulas.unit_scale(n) is None))(7) == 1


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 10, width=32), st.floats(0, 10, width=32))
def test_exact_gap_lands_on_start(end, start):
  gap = formulas.exact_gap(end, start)
  if gap is not None:
    assert np.float32(end) + gap == np.float32(start)


def test_exact_gap_exists_for_almost_every_decay():
  rng = np.random.default_rng(0)
  end = rng.uniform(0, 1, 2000).astype(np.float32)
  start = end + rng.uniform(0, 1, 2000).astype(np.float32)
  assert sum(formulas.exact_gap(e, s) is not None for e, s in zip(end, start)) >= 1990


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_whole_div_and_mod_are_floor_division_for_non_negative_ints(a, b):
  assert int(formulas.whole_div(a, b)) == a // b
  assert int(formulas.whole_mod(a, b)) == a % b


def test_known_equal_only_for_concrete_values():
  assert formulas.known_equal(np.float32(1.0), 1.0)
  assert formulas.known_equal(np.ones(3, np.float32), 1.0)
  assert not formulas.known_equal(np.array([1.0, 2.0]), 1.0)
  assert jax.jit(lambda x: jnp.float32(formulas.known_equal(x, 1.0)))(1.0) == 0


def test_interpolate_with_zero_length_is_the_end_and_finite_gradients():
  t = jnp.arange(4, dtype=jnp.int32)
  f = jax.jit(lambda a, b, n: formulas.interpolate(a, b, t, n))
  np.testing.assert_array_equal(f(0.0, 0.1, 0), np.full(4, np.float32(0.1)))
  g = jax.grad(lambda a, b: jnp.sum(formulas.interpolate(a, b, t, jnp.int32(0))), argnums=(0, 1))
  assert all(np.isfinite(np.asarray(x)) for x in g(0.0, 0.1))
