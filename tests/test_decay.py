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
  # float32 subnormals are left out: XLA:CPU flushes them to 0 (see the conventions).
  init=st.floats(0.0, 10.0, width=32, allow_subnormal=False),
  end=st.floats(0.0, 10.0, width=32, allow_subnormal=False),
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


# Linear ramps with known values (closed over by a jitted function, as in a training step) take
# `known_ramp`: one slope constant and no pins, so their ends are checked here under jit, where XLA
# fuses and folds the arithmetic; `jit_eval` (the schedule a traced argument) takes the general
# path.
RAMPS = [
  (0.1, 10_000, 0.001),
  (0.1, 10_000, 0.0),
  (0.4226872, 80_400, 0.0),  # no exact slope: the capped one
  (0.6706244, 5353, 0.0),
  (0.8764842, 316_466, 0.0),
  (0.38367754, 257_300, 0.9972099),  # a rise
  (0.0, 500, 0.1),
  (0.3, 7, 0.1),
  (1.0, 1, 0.0),
  (0.0, 1, 1.0),
  (0.25, 3, 0.25),
  (0.1, 2**24, 0.0),
  (0.1, 2**24 + 1, 0.0),  # past float32's integers: the general path
  (3e-6, 123_457, 1e-8),
]


def closed_over(schedule):
  return jax.jit(lambda t: schedule(t))


@pytest.mark.parametrize("init, total, end", RAMPS)
@pytest.mark.parametrize("power", [None, 1.0])
def test_linear_edges_closed_over_under_jit(init, total, end, power):
  if power is None:
    s = lrjax.linear_decay(init, total, end)
  else:
    s = lrjax.polynomial_decay(init, total, power, end)
  start, stop = np.float32(init), np.float32(end)
  steps = np.array([0, 1, total - 1, total, total + 1, 2**31 - 1], np.int64).clip(0, 2**31 - 1)
  v = np.asarray(closed_over(s)(jnp.asarray(steps, jnp.int32)))
  assert v.dtype == np.float32
  assert v[0] == start and v[3] == stop and v[4] == stop and v[5] == stop
  lo, hi = min(start, stop), max(start, stop)
  assert np.all((lo <= v) & (v <= hi))
  order = np.argsort(steps, kind="stable")
  assert np.all(np.diff(v[order]) * np.sign(stop - start) >= 0)  # monotone toward the end
  one = np.float64(stop) + (np.float64(start) - np.float64(stop)) * (total - 1) / total
  assert v[1] == pytest.approx(one, rel=3e-7, abs=1e-12)
  assert v[2] == pytest.approx(stop + (np.float64(start) - stop) / total, rel=3e-6, abs=1e-12)
  # The same values eagerly, and from the general path (a traced argument; a traced power 1
  # measures a rise from its end, so only to within a few ulps of hi there); past int32.
  np.testing.assert_allclose(np.asarray(s(steps)), v, rtol=3e-7, atol=1e-12)
  np.testing.assert_allclose(values(s, steps), v, rtol=3e-7, atol=1e-6 * hi)
  assert float(s(2**31 + 5)) == stop
  assert float(s(np.int64(2**31 + 5))) == stop
  assert float(s(2.0**40)) == stop


@settings(max_examples=30, deadline=None)
@given(
  init=st.floats(0.0, 10.0, width=32, allow_subnormal=False),
  end=st.floats(0.0, 10.0, width=32, allow_subnormal=False) | st.just(0.0),
  total=st.integers(1, 2**24) | st.integers(1, 1000),
)
def test_linear_exact_at_both_ends_under_jit(init, end, total):
  s = lrjax.linear_decay(init, total, end)
  v = np.asarray(closed_over(s)(jnp.array([0, total // 2, total - 1, total, total + 1])))
  assert v[0] == np.float32(init) and v[3] == np.float32(end) and v[4] == np.float32(end)
  lo, hi = min(np.float32(init), np.float32(end)), max(np.float32(init), np.float32(end))
  assert np.all((lo <= v) & (v <= hi))
  assert np.all(np.diff(v) * np.sign(np.float32(end) - np.float32(init)) >= 0)


@pytest.mark.parametrize(
  "step",
  [
    5,
    np.int32(5),
    np.int64(5),
    np.uint32(5),
    5.7,
    np.float32(5.2),
    np.float64(5.9),
    jnp.int32(5),
    jnp.float32(5.5),
    jnp.uint8(5),
  ],
)
def test_linear_steps_of_every_kind(step):
  s = lrjax.linear_decay(1.0, 10, 0.5)
  assert float(s(step)) == 0.75
  assert float(closed_over(s)(step)) == 0.75
  assert float(jit_eval(s, step)) == 0.75


def test_linear_negative_jax_steps_clamp_to_the_start():
  s = lrjax.linear_decay(0.3, 10, 0.1)
  v = closed_over(s)(jnp.array([-5, 0], jnp.int32))
  assert np.asarray(v).tolist() == [np.float32(0.3)] * 2
  with pytest.raises(ValueError, match="non-negative"):
    s(-1)


@pytest.mark.parametrize("total", [1, 7, 10_000, 80_400, 2**24 + 1])
def test_linear_traced_total_steps_exact_at_the_end(total):
  def at(T, t):
    return lrjax.linear_decay(0.4226872, T, 0.0)(t), lrjax.polynomial_decay(0.3, T, 1.0, 0.1)(t)

  f = jax.jit(at)
  for t, want in [(0, (0.4226872, 0.3)), (total, (0.0, 0.1)), (total + 1, (0.0, 0.1))]:
    a, b = f(jnp.int32(total), jnp.int32(t))
    assert (float(a), float(b)) == (float(np.float32(want[0])), float(np.float32(want[1])))
  out = jax.vmap(lambda T: lrjax.linear_decay(0.3, T, 0.1)(T))(jnp.array([3, 7, 10_000]))
  assert np.asarray(out).tolist() == [float(np.float32(0.1))] * 3


def test_linear_traced_values_under_jit():
  f = jax.jit(lambda a, b: lrjax.linear_decay(a, 80_400, b)(jnp.array([0, 80_400])))
  v = np.asarray(f(jnp.float32(0.4226872), jnp.float32(0.0)))
  assert v.tolist() == [float(np.float32(0.4226872)), 0.0]
  with pytest.raises(ValueError, match="total_steps"):
    lrjax.linear_decay(0.1, 2.5)
  with pytest.raises(ValueError, match="end_value"):
    lrjax.linear_decay(0.1, 10, -0.5)


def _elementwise_ops(fn) -> list[str]:
  """The operations XLA compiles `fn` over 4e6 int32 steps into (broadcasts, parameters and
  constants aside): the per-step work, counted instead of timed."""
  import re

  steps = jnp.arange(4_000_000, dtype=jnp.int32)
  text = jax.jit(fn).lower(steps).compile().as_text()
  skip = {"parameter", "constant", "fusion", "tuple", "get-tuple-element", "bitcast", "broadcast"}
  return [n for n in re.findall(r"= \S+ ([\w-]+)\(", text) if n not in skip]


@pytest.mark.parametrize("init, end", [(0.1, 0.0), (0.1, 0.001), (0.0, 0.1), (0.05, 0.05)])
def test_linear_decay_does_no_more_work_per_step_than_optax(init, end):
  # It took 1.05-1.12x optax's time over 4e6 steps: five more operations per step (two pins and a
  # cap); now no more than optax's, exact ends and all.
  ours = _elementwise_ops(lambda t: lrjax.linear_decay(init, 10_000, end)(t))
  theirs = _elementwise_ops(lambda t: optax.linear_schedule(init, end, 10_000)(t))
  assert len(ours) <= len(theirs), (ours, theirs)
