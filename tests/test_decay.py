"""Formulas of the monotone decays at their edges, parity with optax and the reference values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_values import jit_eval, values

import lrjax

BIG = [np.int32(2**31 - 1), 2**31, 2**62]


@pytest.mark.parametrize(
  "schedule, steps, expected",
  [
    (lrjax.constant(0.1), [0, 1, 10**9], [0.1, 0.1, 0.1]),
    # Keras InverseTimeDecay(1, decay_steps=1, decay_rate=.25) = 1 / (1 + .25 t).
    (lrjax.time_based_decay(1.0, 0.25), [0, 2, 4, 8, 12], [1, 2 / 3, 0.5, 1 / 3, 0.25]),
    (lrjax.time_based_decay(0.1, 0.0), [0, 10**6], [0.1, 0.1]),
    # Drops AT the boundary: [1,1,1,.5,.5,.5,.25,.25] (optax staircase = Keras = torch StepLR).
    (lrjax.step_decay(1.0, 0.5, 3), range(8), [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]),
    (lrjax.step_decay(0.1, 0.5, 10), [9, 10, 19, 20], [0.1, 0.05, 0.05, 0.025]),
    (lrjax.linear_decay(1.0, 10), [0, 1, 5, 9, 10, 11, 10**6], [1, 0.9, 0.5, 0.1, 0, 0, 0]),
    (lrjax.linear_decay(0.0, 4, end_value=1.0), [0, 2, 4, 5], [0, 0.5, 1, 1]),
    # Ran: optax = Keras = HF = timm (1 -> .1, power 2, T=10) at t=0,5,9,10,11,15,20.
    (
      lrjax.polynomial_decay(1.0, 10, 2.0, end_value=0.1),
      [0, 5, 9, 10, 11, 15, 20],
      [1, 0.325, 0.109, 0.1, 0.1, 0.1, 0.1],
    ),
    # torch PolynomialLR (to 0), same setting: [1,.25,.01,0,...].
    (lrjax.polynomial_decay(1.0, 10, 2.0), [0, 5, 9, 10, 11], [1, 0.25, 0.01, 0, 0]),
    # Ran: optax continuous exponential (every 3, x0.5).
    (
      lrjax.exponential_decay(1.0, 3, 0.5),
      range(8),
      [1, 0.7937, 0.63, 0.5, 0.3969, 0.315, 0.25, 0.1984],
    ),
    # Ran: optax with transition_begin=2, end_value=.3 at t=0,2,4,5,6,8,10,12.
    (
      lrjax.exponential_decay(1.0, 4, 0.5, transition_begin=2, end_value=0.3),
      [0, 2, 4, 5, 6, 8, 10, 12],
      [1, 1, 0.7071, 0.5946, 0.5, 0.3536, 0.3, 0.3],
    ),
    (
      lrjax.exponential_decay(1.0, 3, 0.5, staircase=True),
      range(8),
      [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25],
    ),
    # Growth with a ceiling.
    (lrjax.exponential_decay(1.0, 1, 2.0, end_value=5.0), [0, 1, 2, 3, 100], [1, 2, 4, 5, 5]),
  ],
)
def test_formula_table(schedule, steps, expected):
  np.testing.assert_allclose(values(schedule, list(steps)), expected, rtol=2e-4, atol=1e-7)


def test_end_is_exact_for_fractional_powers_under_jit():
  # A naive `1 - t / T` leaves ~1.5e-5 at t = T under jit with power 0.5.
  for T in [3, 7, 50, 99, 1000, 123457]:
    s = lrjax.polynomial_decay(1.0, T, 0.5)
    assert float(jit_eval(s, jnp.int32(T))) == 0.0
    assert float(jit_eval(s, jnp.int32(0))) == 1.0
    assert float(jit_eval(lrjax.linear_decay(0.3, T, 0.1), jnp.int32(T))) == np.float32(0.1)


@pytest.mark.parametrize("step", BIG)
def test_far_beyond_the_horizon(step):
  assert float(lrjax.linear_decay(0.1, 100)(step)) == 0.0
  assert float(lrjax.polynomial_decay(0.1, 100, 5.0, end_value=0.01)(step)) == np.float32(0.01)
  assert float(lrjax.step_decay(0.1, 0.5, 10)(step)) == 0.0
  assert float(lrjax.constant(0.1)(step)) == np.float32(0.1)
  assert 0.0 < float(lrjax.time_based_decay(0.1, 1e-6)(step)) < 1e-3


def test_step_decay_is_exact_past_float32_integers():
  # 2**24 + 1 is not a float32; an integer floor still puts it in the right interval.
  s = lrjax.step_decay(1.0, 0.5, 2**24 + 1)
  assert float(s(2**24)) == 1.0
  assert float(s(2**24 + 1)) == 0.5


@pytest.mark.parametrize("t", [0, 1, 7, 30, 99, 100, 150])
def test_parity_with_optax(t):
  pairs = [
    (lrjax.linear_decay(0.1, 100), optax.linear_schedule(0.1, 0.0, 100)),
    (lrjax.polynomial_decay(0.1, 100, 5.0, 0.001), optax.polynomial_schedule(0.1, 0.001, 5.0, 100)),
    (lrjax.exponential_decay(0.1, 7, 0.8), optax.exponential_decay(0.1, 7, 0.8)),
    (
      lrjax.exponential_decay(0.1, 7, 0.8, 5, True, 0.02),
      optax.exponential_decay(0.1, 7, 0.8, 5, True, 0.02),
    ),
    (lrjax.step_decay(0.1, 0.5, 10), optax.exponential_decay(0.1, 10, 0.5, staircase=True)),
  ]
  for ours, theirs in pairs:
    assert float(jit_eval(ours, t)) == pytest.approx(float(theirs(t)), rel=1e-6, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
  init=st.floats(0.0, 10.0),
  end=st.floats(0.0, 10.0),
  total=st.integers(1, 10**6),
  power=st.floats(0.0, 8.0),
  t=st.integers(0, 2**31 - 1),
)
def test_polynomial_stays_between_its_ends(init, end, total, power, t):
  v = float(lrjax.polynomial_decay(init, total, power, end)(t))
  lo, hi = float(np.float32(min(init, end))), float(np.float32(max(init, end)))
  assert lo - 1e-6 * hi <= v <= hi + 1e-6 * hi


@settings(max_examples=25, deadline=None)
@given(
  total=st.integers(1, 5000),
  power=st.floats(0.1, 6.0),
  rate=st.floats(0.0, 1.0),
  drop=st.floats(0.01, 1.0),
  every=st.integers(1, 500),
)
def test_decays_are_monotone_non_increasing(total, power, rate, drop, every):
  steps = np.linspace(0, 3 * total, 64).astype(np.int32)
  for s in [
    lrjax.polynomial_decay(1.0, total, power),
    lrjax.linear_decay(1.0, total),
    lrjax.time_based_decay(1.0, rate),
    lrjax.step_decay(1.0, drop, every),
    lrjax.exponential_decay(1.0, every, drop),
  ]:
    v = np.asarray(s(steps))
    assert np.all(np.diff(v) <= 1e-7), s


def test_traced_durations_vmap():
  totals = jnp.array([10, 20, 40])
  out = jax.vmap(lambda T: lrjax.linear_decay(1.0, T)(5))(totals)
  np.testing.assert_allclose(out, [0.5, 0.75, 0.875], rtol=1e-6)
  out = jax.vmap(lambda k: lrjax.step_decay(1.0, 0.5, k)(8))(jnp.array([2, 4, 9]))
  np.testing.assert_allclose(out, [0.0625, 0.25, 1.0], rtol=1e-6)


@pytest.mark.parametrize(
  "factory, kwargs, argument",
  [
    (lrjax.constant, dict(value=-0.1), "value"),
    (lrjax.constant, dict(value=float("inf")), "value"),
    (lrjax.time_based_decay, dict(init_value=0.1, decay_rate=-1.0), "decay_rate"),
    (lrjax.step_decay, dict(init_value=0.1, drop_factor=0.5, drop_every=0), "drop_every"),
    (lrjax.step_decay, dict(init_value=0.1, drop_factor=0.0, drop_every=5), "drop_factor"),
    (lrjax.step_decay, dict(init_value=0.1, drop_factor=-0.5, drop_every=5), "drop_factor"),
    (lrjax.step_decay, dict(init_value=0.1, drop_factor=0.5, drop_every=2.5), "drop_every"),
    (lrjax.linear_decay, dict(init_value=0.1, total_steps=0), "total_steps"),
    (lrjax.polynomial_decay, dict(init_value=0.1, total_steps=10, power=-1.0), "power"),
    (
      lrjax.polynomial_decay,
      dict(init_value=0.1, total_steps=10, power=2, end_value=-1),
      "end_value",
    ),
    (
      lrjax.exponential_decay,
      dict(init_value=0.1, transition_steps=3, decay_rate=0.0),
      "decay_rate",
    ),
    (
      lrjax.exponential_decay,
      dict(init_value=0.1, transition_steps=3, decay_rate=0.5, transition_begin=-2),
      "transition_begin",
    ),
    (
      lrjax.exponential_decay,
      dict(init_value=0.1, transition_steps=3, decay_rate=0.5, staircase="yes"),
      "staircase",
    ),
    (lrjax.linear_decay, dict(init_value="0.1", total_steps=10), "init_value"),
    (lrjax.linear_decay, dict(init_value=True, total_steps=10), "init_value"),
  ],
)
def test_bad_input_names_the_argument(factory, kwargs, argument):
  with pytest.raises(ValueError, match=argument):
    factory(**kwargs)


def test_error_message_shows_the_value():
  with pytest.raises(ValueError, match=r"drop_every must be a positive integer, got 0"):
    lrjax.step_decay(0.1, 0.5, 0)


def test_time_based_decay_keeps_falling_past_int32():
  # It never settles, so a huge step is evaluated in float32 rather than saturated.
  s = lrjax.time_based_decay(0.1, 0.05)
  for step in [2**31, 2**40, 2**62]:
    assert float(s(step)) == pytest.approx(0.1 / (1 + 0.05 * step), rel=1e-6)
  np.testing.assert_allclose(s(np.array([5, 2**40])), [0.08, 0.1 / (1 + 0.05 * 2**40)], rtol=1e-6)
