"""Tests of lrjax.schedules.wsd: inverse_sqrt and warmup_stable_decay."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_values import values

from lrjax.schedules.base import INT32_MAX
from lrjax.schedules.wsd import inverse_sqrt, warmup_stable_decay, wsd


def hf_inverse_sqrt(t, warmup, timescale=None):
  """Hugging Face get_inverse_sqrt_schedule's lambda, in float64."""
  timescale = timescale or warmup or 10_000
  t = np.asarray(t, np.float64)
  decay = 1 / np.sqrt((np.maximum(t - warmup, 0) + timescale) / timescale)
  return np.where(t < warmup, t / max(1, warmup), decay)


def hf_wsd(t, warmup, stable, decay, floor, shape):
  """Hugging Face get_wsd_schedule's lambda (min_lr_ratio = floor), in float64."""
  t = np.asarray(t, np.float64)
  p = np.clip((t - warmup - stable) / max(1, decay), 0, 1)
  f = {"linear": 1 - p, "cosine": 0.5 * (1 + np.cos(np.pi * p)), "1-sqrt": 1 - np.sqrt(p)}[shape]
  out = np.where(t < warmup + stable, 1.0, f * (1 - floor) + floor)
  return np.where(t < warmup, t / max(1, warmup) * (1 - floor) + floor, out)


# ---------------------------------------------------------------- inverse_sqrt


def test_inverse_sqrt_ran_values():
  # Ran: Hugging Face = big_vision = timm with W = timescale = 4.
  s = inverse_sqrt(1.0, warmup_steps=4)
  ran = [0, 0.25, 0.5, 0.75, 1, 0.8944, 0.7071, 0.5, 0.2]
  np.testing.assert_allclose(values(s, [0, 1, 2, 3, 4, 5, 8, 16, 100]), ran, atol=5e-5)
  assert values(s, [4])[0] == 1.0 and values(s, [0])[0] == 0.0


@pytest.mark.parametrize("warmup, timescale", [(4, None), (0, None), (100, None), (10, 3), (0, 7)])
def test_inverse_sqrt_matches_hugging_face_formula(warmup, timescale):
  steps = np.arange(0, 5000, 3)
  got = values(inverse_sqrt(0.5, warmup, timescale), steps)
  np.testing.assert_allclose(got, 0.5 * hf_inverse_sqrt(steps, warmup, timescale), rtol=1e-6)


def test_inverse_sqrt_timescale_default_is_resolved_and_stored():
  assert int(inverse_sqrt(1.0, 7).timescale) == 7
  assert int(inverse_sqrt(1.0, 0).timescale) == 10_000
  assert int(inverse_sqrt(1.0, 0, timescale=3).timescale) == 3
  assert inverse_sqrt(1.0, 7).to_config()["timescale"] == 7


def test_inverse_sqrt_keeps_decaying_past_int32():
  s = inverse_sqrt(0.1, 4, init_value=0.01)
  for step in (INT32_MAX, 2**40, 2**62, 2**63 - 1, 1e30):
    want = 0.1 / np.sqrt(1 + (float(step) - 4) / 4)
    np.testing.assert_allclose(float(s(step)), want, rtol=1e-6)
  np.testing.assert_allclose(
    values(s, [INT32_MAX]), [0.1 / np.sqrt(1 + (INT32_MAX - 4) / 4)], rtol=1e-6
  )
  mixed = np.asarray([0, 5, 2**40])
  want = [0.01, 0.1 / np.sqrt(1.25), 0.1 / np.sqrt(1 + (2**40 - 4) / 4)]
  np.testing.assert_allclose(s(mixed), want, rtol=1e-6)
  assert float(s(2**62)) < float(s(2**40)) < float(s(INT32_MAX))


def test_inverse_sqrt_vmaps_over_warmup_with_default_timescale():
  t = jnp.arange(0, 64, 3)
  got = jax.jit(jax.vmap(lambda w: inverse_sqrt(1.0, w)(t)))(jnp.asarray([0, 1, 8]))
  for w, row in zip([0, 1, 8], np.asarray(got)):
    np.testing.assert_allclose(row, values(inverse_sqrt(1.0, w), t), rtol=1e-6)
  got = jax.jit(jax.vmap(lambda s: inverse_sqrt(1.0, 4, s)(t)))(jnp.asarray([1, 100]))
  np.testing.assert_allclose(got[1], hf_inverse_sqrt(t, 4, 100), rtol=1e-6)


# ---------------------------------------------------------------- warmup_stable_decay

HF_RAN = {  # get_wsd_schedule(2, 4, num_stable_steps=4, min_lr_ratio=.1) at t = 0..11
  "linear": [0.1, 0.55, 1, 1, 1, 1, 1, 0.775, 0.55, 0.325, 0.1, 0.1],
  "1-sqrt": [0.1, 0.55, 1, 1, 1, 1, 1, 0.55, 0.3636, 0.2206, 0.1, 0.1],
  "cosine": [0.1, 0.55, 1, 1, 1, 1, 1, 0.8682, 0.55, 0.2318, 0.1, 0.1],
}


@pytest.mark.parametrize("shape", sorted(HF_RAN))
def test_wsd_matches_hugging_face_ran_values(shape):
  s = warmup_stable_decay(1.0, 2, 4, 4, end_value=0.1, init_value=0.1, decay_shape=shape)
  np.testing.assert_allclose(values(s, np.arange(12)), HF_RAN[shape], atol=5e-5)
  # timm WSDLRScheduler is the same with its warmup starting at 0.
  timm = warmup_stable_decay(1.0, 2, 4, 4, end_value=0.1, decay_shape=shape)
  np.testing.assert_allclose(values(timm, np.arange(12)), [0, 0.5, *HF_RAN[shape][2:]], atol=5e-5)


@pytest.mark.parametrize("shape", sorted(HF_RAN))
@pytest.mark.parametrize("warmup, stable, decay", [(10, 70, 20), (0, 0, 1), (0, 5, 9), (7, 0, 33)])
def test_wsd_matches_hugging_face_formula(shape, warmup, stable, decay):
  steps = np.arange(warmup + stable + decay + 5)
  s = wsd(2.0, warmup, stable, decay, end_value=0.2, init_value=0.2, decay_shape=shape)
  want = 2.0 * hf_wsd(steps, warmup, stable, decay, 0.1, shape)
  np.testing.assert_allclose(values(s, steps), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", sorted(HF_RAN))
def test_wsd_exact_plateau_and_end(shape):
  s = warmup_stable_decay(0.3, 5, 10, 7, end_value=0.003, init_value=0.001, decay_shape=shape)
  got = values(s, [0, 5, 10, 14, 15, 22, 23, 10**6, INT32_MAX])
  want = np.float32([0.001, 0.3, 0.3, 0.3, 0.3, 0.003, 0.003, 0.003, 0.003])
  np.testing.assert_array_equal(got, want)
  assert float(s(2**62)) == np.float32(0.003)


@pytest.mark.parametrize(
  "shape, tail",
  [
    ("linear", lambda p, e, d: optax.linear_schedule(p, e, d)),
    ("cosine", lambda p, e, d: optax.cosine_decay_schedule(p, d, alpha=e / p)),
  ],
)
def test_wsd_parity_with_optax_join(shape, tail):
  peak, end, w, st_, d = 0.1, 0.001, 10, 30, 60
  ref = optax.join_schedules(
    [optax.linear_schedule(0.0, peak, w), optax.constant_schedule(peak), tail(peak, end, d)],
    [w, w + st_],
  )
  steps = np.arange(w + st_ + d + 10)
  want = np.asarray(jax.jit(jax.vmap(ref))(steps), np.float64)
  got = values(warmup_stable_decay(peak, w, st_, d, end_value=end, decay_shape=shape), steps)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * peak)


def test_wsd_durations_up_to_int32_do_not_overflow():
  s = warmup_stable_decay(1.0, 2**30, 2**30 - 10, 9)
  steps = [0, 2**29, 2**30, INT32_MAX - 9, INT32_MAX - 8, INT32_MAX - 1, INT32_MAX]
  np.testing.assert_allclose(values(s, steps), [0, 0.5, 1, 1, 8 / 9, 1 / 9, 0], rtol=1e-6)
  assert float(s(2**62)) == 0.0


def test_wsd_vmaps_over_every_duration():
  t = jnp.arange(0, 40)
  ws, ss, ds = jnp.asarray([0, 3, 5]), jnp.asarray([0, 10, 2]), jnp.asarray([1, 7, 20])
  fn = lambda w, s, d: warmup_stable_decay(1.0, w, s, d, decay_shape="1-sqrt")(t)
  got = jax.jit(jax.vmap(fn))(ws, ss, ds)
  for w, s, d, row in zip(ws.tolist(), ss.tolist(), ds.tolist(), np.asarray(got)):
    np.testing.assert_allclose(row, hf_wsd(t, w, s, d, 0.0, "1-sqrt"), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- properties

steps_st = st.lists(st.integers(0, 3000), min_size=8, max_size=8)
# XLA flushes float32 subnormals to zero: learning rates are drawn from 0 or [1e-6, hi].
lr_st = st.one_of(st.just(0.0), st.floats(1e-6, 10))


def _check_vectorised(s, steps, scale):
  """jit(array) == eager scalars == eager array, up to XLA's reciprocal rewrite of x / T."""
  got = values(s, steps)
  looped = np.float32([float(s(int(t))) for t in steps])
  np.testing.assert_allclose(got, looped, rtol=1e-6, atol=1e-6 * scale)
  np.testing.assert_allclose(looped, s(np.asarray(steps)), rtol=1e-6, atol=1e-6 * scale)
  return got


@settings(max_examples=20, deadline=None)
@given(
  peak=lr_st,
  init=lr_st,
  warmup=st.integers(0, 500),
  timescale=st.one_of(st.none(), st.integers(1, 10**6)),
  steps=steps_st,
)
def test_inverse_sqrt_properties(peak, init, warmup, timescale, steps):
  s = inverse_sqrt(peak, warmup, timescale, init_value=init)
  got = _check_vectorised(s, steps, max(peak, init))
  assert np.all(got >= 0) and np.all(got <= np.float32(max(peak, init)))
  after = values(s, np.sort(np.asarray(steps)) + warmup)
  assert np.all(np.diff(after) <= 0) and np.all(after <= np.float32(peak))


@settings(max_examples=20, deadline=None)
@given(
  peak=lr_st,
  init=lr_st,
  end=lr_st,
  warmup=st.integers(0, 500),
  stable=st.integers(0, 500),
  decay=st.integers(1, 1000),
  shape=st.sampled_from(["linear", "cosine", "1-sqrt"]),
  steps=steps_st,
)
def test_wsd_properties(peak, init, end, warmup, stable, decay, shape, steps):
  s = warmup_stable_decay(peak, warmup, stable, decay, end, init, shape)
  got = _check_vectorised(s, steps, max(peak, init, end))
  assert np.all(got >= np.float32(min(peak, init, end)))
  assert np.all(got <= np.float32(max(peak, init, end)))
  after = values(s, np.sort(np.asarray(steps)) + warmup)
  assert np.all(np.diff(after) <= 0) if peak >= end else np.all(np.diff(after) >= 0)


# ---------------------------------------------------------------- gradients and validation

EDGES = jnp.asarray([0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 1000, INT32_MAX], jnp.int32)


@pytest.mark.parametrize(
  "make, x0",
  [
    (lambda x: inverse_sqrt(x[0], 4, init_value=x[1]), [1.0, 0.0]),
    (lambda x: inverse_sqrt(x[0], 0, init_value=x[1]), [0.0, 0.0]),
    (lambda x: wsd(x[0], 2, 4, 4, x[1], x[2], "linear"), [1.0, 0.1, 0.0]),
    (lambda x: wsd(x[0], 0, 0, 1, x[1], x[2], "cosine"), [0.0, 0.0, 0.0]),
    (lambda x: wsd(x[0], 3, 0, 7, x[1], x[2], "1-sqrt"), [1.0, 0.0, 0.5]),
  ],
)
def test_gradients_are_finite_at_edges(make, x0):
  grads = jax.jit(jax.jacrev(lambda x: make(x)(EDGES)))(jnp.asarray(x0, jnp.float32))
  assert np.all(np.isfinite(np.asarray(grads)))


@pytest.mark.parametrize(
  "make, name",
  [
    (lambda: inverse_sqrt(-1.0, 4), "peak_value"),
    (lambda: inverse_sqrt(1.0, -4), "warmup_steps"),
    (lambda: inverse_sqrt(1.0, 2.5), "warmup_steps"),
    (lambda: inverse_sqrt(1.0, 4, timescale=0), "timescale"),
    (lambda: inverse_sqrt(1.0, 4, init_value=float("nan")), "init_value"),
    (lambda: wsd(-0.1, 1, 1, 1), "peak_value"),
    (lambda: wsd(0.1, -1, 1, 1), "warmup_steps"),
    (lambda: wsd(0.1, 1, 1.5, 1), "stable_steps"),
    (lambda: wsd(0.1, 1, 1, 0), "decay_steps"),
    (lambda: wsd(0.1, 2**30, 2**30, 1), "stable_steps"),
    (lambda: wsd(0.1, 1, 1, 1, end_value=float("inf")), "end_value"),
    (lambda: wsd(0.1, 1, 1, 1, init_value=-1e-3), "init_value"),
    (lambda: wsd(0.1, 1, 1, 1, decay_shape="sqrt"), "decay_shape"),
  ],
)
def test_validation_errors_name_the_argument(make, name):
  with pytest.raises(ValueError, match=name):
    make()
