"""Tests of lrjax.schedules.cyclic: triangle, cyclical and one_cycle."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_values import values

from lrjax.schedules.base import INT32_MAX
from lrjax.schedules.cyclic import cyclical, one_cycle, triangle


def torch_cyclic(t, base, top, up, down, mode="triangular", gamma=1.0):
  """PyTorch CyclicLR's closed form (lr_scheduler.py), in float64."""
  t = np.asarray(t, np.float64)
  total = up + down
  cycle = np.floor(1 + t / total)
  x = 1.0 + t / total - cycle
  ratio = up / total
  s = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
  if mode == "triangular2":
    s = s * 0.5 ** (cycle - 1)
  elif mode == "exp_range":
    s = s * gamma**t
  return base + (top - base) * s


def cos_onecycle(t, total, peak, pct=0.3, div=25.0, final_div=1e4):
  """optax.cosine_onecycle_schedule's formula, in float64."""
  t = np.asarray(t, np.float64)
  w, init = int(pct * total), peak / div
  low = init / final_div
  up = peak + (init - peak) / 2 * (np.cos(np.pi * t / max(w, 1)) + 1)
  p = np.clip((t - w) / (total - w), 0, 1)
  return np.where(t < w, up, low + (peak - low) / 2 * (np.cos(np.pi * p) + 1))


# ---------------------------------------------------------------- triangle


def test_triangle_table_matches_hugging_face_linear_with_warmup():
  # Ran: get_linear_schedule_with_warmup(2, 10) at t = 0..12.
  ran = [0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0, 0, 0]
  s = triangle(1.0, warmup_steps=2, total_steps=10)
  np.testing.assert_allclose(values(s, np.arange(13)), ran, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(values(s, [2, 10, 11, 10**6, INT32_MAX]), [1, 0, 0, 0, 0])
  assert float(s(2**62)) == 0.0


def test_triangle_exact_ends_with_init_and_end_values():
  s = triangle(0.3, 7, 30, init_value=0.01, end_value=0.07)
  got = values(s, [0, 7, 30, 31, INT32_MAX])
  np.testing.assert_array_equal(got, np.float32([0.01, 0.3, 0.07, 0.07, 0.07]))
  assert float(s(2**62)) == np.float32(0.07)


@pytest.mark.parametrize(
  "peak, warmup, total, init, end",
  [
    (0.1, 10, 100, 0.0, 0.0),
    (1.0, 3, 7, 0.2, 0.05),
    (0.5, 0, 50, 0.0, 0.1),
    (2.0, 37, 1000, 0.01, 0.0),
    (0.4, 1, 2, 0.0, 0.3),
  ],
)
def test_triangle_parity_with_optax_join_of_linear_schedules(peak, warmup, total, init, end):
  ref = optax.join_schedules(
    [optax.linear_schedule(init, peak, warmup), optax.linear_schedule(peak, end, total - warmup)],
    [warmup],
  )
  steps = np.arange(total + 20)
  want = np.asarray(jax.jit(jax.vmap(ref))(steps), np.float64)
  got = values(triangle(peak, warmup, total, init_value=init, end_value=end), steps)
  # optax's 1 - t / T cancels near T (3e-6 relative at T - 1): compare to the peak's resolution.
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7 * peak)


def test_triangle_warmup_equal_to_total_is_a_ramp_then_end():
  s = triangle(1.0, 4, 4, end_value=0.1)
  np.testing.assert_allclose(values(s, [0, 1, 3, 4, 5]), [0, 0.25, 0.75, 0.1, 0.1], rtol=1e-6)


def test_triangle_vmaps_over_durations():
  ws = jnp.asarray([0, 1, 5, 10])
  got = jax.jit(jax.vmap(lambda w: triangle(1.0, w, 10)(jnp.arange(12))))(ws)
  for w, row in zip(ws, np.asarray(got)):
    np.testing.assert_allclose(row, values(triangle(1.0, int(w), 10), np.arange(12)), rtol=1e-6)
  batch = jax.jit(jax.vmap(lambda w, t: triangle(0.5, 3, w)(t)))(
    jnp.asarray([5, 9]), jnp.asarray([4, 4])
  )
  np.testing.assert_allclose(batch, [0.25, 0.5 * 5 / 6], rtol=1e-6)


# ---------------------------------------------------------------- cyclical


@pytest.mark.parametrize(
  "mode, gamma, ran",
  [
    ("triangular", 1.0, [0.1, 0.55, 1, 0.55, 0.1, 0.55, 1, 0.55, 0.1, 0.55, 1, 0.55, 0.1]),
    (
      "triangular2",
      1.0,
      [0.1, 0.55, 1, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1, 0.2125, 0.325, 0.2125, 0.1],
    ),
    (
      "exp_range",
      0.9,
      [0.1, 0.505, 0.829, 0.4281, 0.1, 0.3657, 0.5783, 0.3152, 0.1, 0.2743, 0.4138, 0.2412, 0.1],
    ),
  ],
)
def test_cyclical_matches_torch_ran_values(mode, gamma, ran):
  s = cyclical(0.1, 1.0, step_size_up=2, mode=mode, gamma=gamma)
  np.testing.assert_allclose(values(s, np.arange(13)), ran, atol=6e-5)


@pytest.mark.parametrize(
  "mode, gamma",
  [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.99), ("exp_range", 1.0)],
)
@pytest.mark.parametrize("up, down", [(2, 2), (3, 5), (7, 1), (1, 1)])
def test_cyclical_matches_torch_formula(mode, gamma, up, down):
  steps = np.arange(60)
  want = torch_cyclic(steps, 0.01, 0.3, up, down, mode, gamma)
  got = values(cyclical(0.01, 0.3, up, down, mode=mode, gamma=gamma), steps)
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("up, down", [(2, 2), (3, 5), (2**29 + 3, 2**29 - 1), (2**30, 2**30 - 1)])
def test_cyclical_far_steps_keep_their_phase(up, down):
  s = cyclical(0.1, 1.0, up, down)
  period = up + down
  for step in (INT32_MAX, 2**31, 2**40 + 3, 2**62, 2**63 - 1):
    assert float(s(step)) == values(s, [step % period])[0]
  want = torch_cyclic(INT32_MAX, 0.1, 1.0, up, down)
  np.testing.assert_allclose(values(s, [INT32_MAX]), [want], rtol=1e-6)


@pytest.mark.parametrize("mode, gamma", [("triangular2", 1.0), ("exp_range", 0.999)])
def test_cyclical_decaying_modes_end_at_min_value(mode, gamma):
  s = cyclical(0.1, 1.0, 3, 4, mode=mode, gamma=gamma)
  assert values(s, [INT32_MAX])[0] == np.float32(0.1)
  assert float(s(2**62)) == np.float32(0.1)
  assert float(s(2**62 + 3)) == np.float32(0.1)


def test_cyclical_exp_range_with_gamma_one_is_periodic():
  s = cyclical(0.0, 1.0, 3, mode="exp_range", gamma=1.0)
  assert float(s(2**62)) == values(s, [2**62 % 6])[0]


def test_cyclical_vmaps_over_step_sizes_and_gamma():
  t = jnp.arange(20)
  got = jax.jit(jax.vmap(lambda u: cyclical(0.1, 1.0, u)(t)))(jnp.asarray([1, 2, 5]))
  for u, row in zip([1, 2, 5], np.asarray(got)):
    np.testing.assert_allclose(row, values(cyclical(0.1, 1.0, u), t), rtol=1e-6)
  got = jax.jit(jax.vmap(lambda g: cyclical(0.1, 1.0, 2, 3, "exp_range", g)(t)))(
    jnp.asarray([0.5, 0.9])
  )
  for g, row in zip([0.5, 0.9], np.asarray(got)):
    np.testing.assert_allclose(row, torch_cyclic(t, 0.1, 1.0, 2, 3, "exp_range", g), rtol=2e-6)


# ---------------------------------------------------------------- one_cycle


def test_one_cycle_matches_optax_ran_values_and_shifted_torch():
  s = one_cycle(1.0, 10)
  optax_ran = [0.04, 0.28, 0.76, 1, 0.9505, 0.8117, 0.6113, 0.3887, 0.1883, 0.04952, 4e-6]
  np.testing.assert_allclose(values(s, np.arange(11)), optax_ran, rtol=1e-3, atol=1e-6)
  # torch OneCycleLR peaks one step earlier: its value at t is lrjax's at t + 1 from pct*T - 1.
  torch_cos = [0.04, 0.52, 1, 0.9505, 0.8117, 0.6113, 0.3887, 0.1883, 0.04952, 4e-6]
  np.testing.assert_allclose(values(s, np.arange(3, 11)), torch_cos[2:], rtol=1e-3, atol=1e-6)
  torch_linear = [1, 0.8571, 0.7143, 0.5714, 0.4286, 0.2857, 0.1429, 4e-6]
  lin = one_cycle(1.0, 10, anneal="linear")
  np.testing.assert_allclose(values(lin, np.arange(3, 11)), torch_linear, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(
  "total, peak, pct, div, final_div",
  [
    (10, 1.0, 0.3, 25.0, 1e4),
    (100, 0.1, 0.3, 25.0, 1e4),
    (1000, 2.0, 0.25, 10.0, 100.0),
    (1, 1.0, 0.3, 25.0, 1e4),
    (2, 1.0, 0.3, 25.0, 1e4),
    (7, 0.5, 0.5, 4.0, 3.0),
    (333, 0.01, 0.9, 2.0, 1.0),
  ],
)
def test_one_cycle_parity_with_optax(total, peak, pct, div, final_div):
  steps = np.arange(total + 10)
  ref = optax.cosine_onecycle_schedule(total, peak, pct, div, final_div)
  want = np.asarray(jax.jit(jax.vmap(ref))(steps), np.float64)
  got = values(one_cycle(peak, total, pct, div, final_div), steps)
  # optax's (cos(pi p) + 1) cancels near the end of the anneal (3e-5 relative at T - 1); lrjax's
  # sin**2 form does not, so it is compared with optax up to float32 resolution of the peak and
  # with the exact formula tightly.
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * peak)
  np.testing.assert_allclose(got, cos_onecycle(steps, total, peak, pct, div, final_div), rtol=3e-6)


def test_one_cycle_edges_are_exact():
  s = one_cycle(0.1, 100, div_factor=10.0, final_div_factor=100.0, anneal="linear")
  got = values(s, [0, 30, 100, 101, INT32_MAX])
  np.testing.assert_array_equal(got[:2], np.float32([0.01, 0.1]))
  np.testing.assert_allclose(got[2], 1e-4, rtol=1e-6)
  np.testing.assert_array_equal(got[2:], got[2])
  np.testing.assert_allclose(float(s(2**62)), got[2], rtol=1e-6)


@pytest.mark.parametrize(
  "pct, total, warmup",
  [(0.3, 10, 3), (0.7, 10, 7), (0.29, 100, 29), (0.1, 3, 0), (0.999, 1000, 999)],
)
def test_one_cycle_warmup_is_floor_of_decimal_product(pct, total, warmup):
  got = values(one_cycle(1.0, total, pct), np.arange(total + 1))
  assert int(np.argmax(got)) == warmup


def test_one_cycle_three_phase_table():
  s = one_cycle(1.0, 10, anneal="linear", three_phase=True)
  tail = [4e-6 + (0.04 - 4e-6) * k / 4 for k in (3, 2, 1)]
  want = [0.04, 0.36, 0.68, 1, 0.68, 0.36, 0.04, *tail, 4e-6, 4e-6]
  np.testing.assert_allclose(values(s, np.arange(12)), want, rtol=1e-5, atol=1e-7)
  # torch's three-phase shape (Ran) peaks and returns to the start one and two steps earlier.
  torch_ran = [0.04, 0.52, 1, 0.52, 0.04, 0.032, 0.024, 0.016, 0.008, 4e-6]
  assert np.argmax(torch_ran) + 1 == np.argmax(values(s, np.arange(10)))
  assert values(s, [6])[0] == np.float32(0.04) and torch_ran[4] == 0.04
  # float32 0.4999999 * 2 rounds to W = 1, so 2 W == T and the last phase has no length.
  cos = one_cycle(1.0, 2, pct_start=0.4999999, three_phase=True)
  np.testing.assert_allclose(values(cos, [0, 1, 2, 3]), [0.04, 1, 4e-6, 4e-6], rtol=1e-5)


def test_one_cycle_vmaps_over_pct_start_and_total():
  pcts = jnp.asarray([0.1, 0.3, 0.45])
  t = jnp.arange(0, 120, 7)
  got = jax.jit(jax.vmap(lambda p: one_cycle(0.1, 100, pct_start=p, three_phase=True)(t)))(pcts)
  for p, row in zip([0.1, 0.3, 0.45], np.asarray(got)):
    np.testing.assert_allclose(row, values(one_cycle(0.1, 100, p, three_phase=True), t), rtol=1e-6)
  got = jax.jit(jax.vmap(lambda n: one_cycle(0.1, n)(t)))(jnp.asarray([10, 100]))
  for n, row in zip([10, 100], np.asarray(got)):
    np.testing.assert_allclose(row, values(one_cycle(0.1, n), t), rtol=1e-6)


# ---------------------------------------------------------------- properties

steps_st = st.lists(st.integers(0, 3000), min_size=8, max_size=8)
# XLA flushes float32 subnormals to zero: learning rates are drawn from 0 or [1e-6, hi].
lr_st = lambda hi: st.one_of(st.just(0.0), st.floats(1e-6, hi))


def _check_vectorised(s, steps, scale):
  """jit(array) == eager scalars == eager array, up to XLA's reciprocal rewrite of x / T."""
  got = values(s, steps)
  looped = np.float32([float(s(int(t))) for t in steps])
  np.testing.assert_allclose(got, looped, rtol=1e-6, atol=1e-6 * scale)
  np.testing.assert_allclose(looped, s(np.asarray(steps)), rtol=1e-6, atol=1e-6 * scale)
  return got


@settings(max_examples=20, deadline=None)
@given(
  peak=lr_st(10),
  init=lr_st(10),
  end=lr_st(10),
  warmup=st.integers(0, 500),
  extra=st.integers(0, 1000),
  steps=steps_st,
)
def test_triangle_properties(peak, init, end, warmup, extra, steps):
  total = max(warmup + extra, 1)
  s = triangle(peak, warmup, total, init_value=init, end_value=end)
  got = _check_vectorised(s, steps, max(peak, init, end))
  lo, hi = np.float32(min(peak, init, end)), np.float32(max(peak, init, end))
  assert np.all(got >= lo) and np.all(got <= hi)
  after = values(s, np.sort(np.asarray(steps) + warmup))
  assert np.all(np.diff(after) <= 0) if peak >= end else np.all(np.diff(after) >= 0)


@settings(max_examples=20, deadline=None)
@given(
  lo=lr_st(1),
  span=lr_st(1),
  up=st.integers(1, 200),
  down=st.integers(1, 200),
  mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
  gamma=st.floats(0.5, 1.0),
  steps=steps_st,
)
def test_cyclical_properties(lo, span, up, down, mode, gamma, steps):
  s = cyclical(lo, lo + span, up, down, mode, gamma)
  got = _check_vectorised(s, steps, lo + span)
  assert np.all(got >= np.float32(lo)) and np.all(got <= np.float32(lo + span))
  gamma = float(np.float32(gamma))  # stored as float32: gamma**t amplifies its rounding by t
  np.testing.assert_allclose(
    got, torch_cyclic(steps, lo, lo + span, up, down, mode, gamma), rtol=1e-5, atol=1e-6
  )


@settings(max_examples=20, deadline=None)
@given(
  peak=lr_st(10),
  total=st.integers(1, 2000),
  pct=st.floats(0.01, 0.98),
  div=st.floats(1, 100),
  final_div=st.floats(1, 1e4),
  anneal=st.sampled_from(["cos", "linear"]),
  three=st.booleans(),
  steps=steps_st,
)
def test_one_cycle_properties(peak, total, pct, div, final_div, anneal, three, steps):
  s = one_cycle(peak, total, pct / 2 if three else pct, div, final_div, anneal, three)
  got = _check_vectorised(s, steps, peak)
  low = np.float32(np.float32(peak) / np.float32(div)) / np.float32(final_div)
  assert np.all(got >= low * (1 - 1e-6)) and np.all(got <= np.float32(peak))
  curve = values(s, np.arange(2048))[: total + 2]
  w = int(np.argmax(curve))
  assert np.all(np.diff(curve[2 * w if three else w :]) <= 0)


# ---------------------------------------------------------------- gradients and validation

EDGES = jnp.asarray([0, 1, 2, 3, 4, 5, 9, 10, 11, 1000, INT32_MAX], jnp.int32)


@pytest.mark.parametrize(
  "make, x0",
  [
    (lambda x: triangle(x[0], 3, 10, init_value=x[1], end_value=x[2]), [1.0, 0.0, 0.0]),
    (lambda x: triangle(x[0], 0, 1, init_value=x[1], end_value=x[2]), [0.0, 0.0, 0.0]),
    (lambda x: triangle(x[0], 10, 10, init_value=x[1], end_value=x[2]), [0.5, 0.1, 0.0]),
    (lambda x: cyclical(x[0], x[1], 2, 3, "exp_range", x[2]), [0.0, 1.0, 0.9]),
    (lambda x: cyclical(x[0], x[1], 1, 1, "exp_range", x[2]), [0.0, 0.0, 1.0]),
    (lambda x: cyclical(x[0], x[1], 4, 1, "triangular2", x[2]), [0.1, 1.0, 1.0]),
    (lambda x: one_cycle(x[0], 10, x[1], x[2], x[3]), [1.0, 0.3, 25.0, 1e4]),
    (lambda x: one_cycle(x[0], 1, x[1], x[2], x[3], "linear"), [0.0, 0.5, 1.0, 1.0]),
    (lambda x: one_cycle(x[0], 10, x[1], x[2], x[3], three_phase=True), [1.0, 0.3, 5.0, 3.0]),
  ],
)
def test_gradients_are_finite_at_edges(make, x0):
  grads = jax.jit(jax.jacrev(lambda x: make(x)(EDGES)))(jnp.asarray(x0, jnp.float32))
  assert np.all(np.isfinite(np.asarray(grads)))


@pytest.mark.parametrize(
  "make, name",
  [
    (lambda: triangle(-0.1, 1, 10), "peak_value"),
    (lambda: triangle(float("nan"), 1, 10), "peak_value"),
    (lambda: triangle(0.1, -1, 10), "warmup_steps"),
    (lambda: triangle(0.1, 1.5, 10), "warmup_steps"),
    (lambda: triangle(0.1, 11, 10), "warmup_steps"),
    (lambda: triangle(0.1, 0, 0), "total_steps"),
    (lambda: triangle(0.1, 1, 10, init_value=-1.0), "init_value"),
    (lambda: triangle(0.1, 1, 10, end_value=float("inf")), "end_value"),
    (lambda: cyclical(-0.1, 1.0, 2), "min_value"),
    (lambda: cyclical(0.1, float("inf"), 2), "max_value"),
    (lambda: cyclical(1.0, 0.1, 2), "min_value"),
    (lambda: cyclical(0.1, 1.0, 0), "step_size_up"),
    (lambda: cyclical(0.1, 1.0, 2, -3), "step_size_down"),
    (lambda: cyclical(0.1, 1.0, 2**30, 2**30), "step_size_up"),
    (lambda: cyclical(0.1, 1.0, 2, mode="triangle"), "mode"),
    (lambda: cyclical(0.1, 1.0, 2, mode="exp_range", gamma=0.0), "gamma"),
    (lambda: cyclical(0.1, 1.0, 2, mode="exp_range", gamma=1.5), "gamma"),
    (lambda: one_cycle(-1.0, 10), "peak_value"),
    (lambda: one_cycle(1.0, 0), "total_steps"),
    (lambda: one_cycle(1.0, 10, pct_start=0.0), "pct_start"),
    (lambda: one_cycle(1.0, 10, pct_start=1.0), "pct_start"),
    (lambda: one_cycle(1.0, 10, pct_start=0.5, three_phase=True), "pct_start"),
    (lambda: one_cycle(1.0, 10, div_factor=0.0), "div_factor"),
    (lambda: one_cycle(1.0, 10, final_div_factor=-1.0), "final_div_factor"),
    (lambda: one_cycle(1.0, 10, anneal="cosine"), "anneal"),
    (lambda: one_cycle(1.0, 10, three_phase="yes"), "three_phase"),
  ],
)
def test_validation_errors_name_the_argument(make, name):
  with pytest.raises(ValueError, match=name):
    make()
