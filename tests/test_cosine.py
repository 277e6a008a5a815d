"""Cosine decays, cyclic cosine, SGDR and tanh: edges, parity with optax and reference values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_values import jit_eval, optax_values, values

from lrjax.schedules.cosine import (
  cosine_annealing,
  cosine_decay,
  sgdr,
  warmup_cosine_decay,
)
from lrjax.schedules.decay import tanh_decay

I32_MAX = 2**31 - 1


def one(schedule, step):
  return float(jit_eval(schedule, jnp.int32(step)))


@pytest.mark.parametrize(
  "schedule, steps, expected",
  [
    # Ran A (T=10, floor .1): optax = Keras = timm; torch/HF agree up to T, then rise.
    (
      cosine_decay(1.0, 10, end_value=0.1),
      [0, 1, 5, 9, 10, 11, 15, 20],
      [1, 0.978, 0.55, 0.122, 0.1, 0.1, 0.1, 0.1],
    ),
    # torch CosineAnnealingLR and HF min_lr agree up to T only.
    (cosine_decay(1.0, 10, end_value=0.1), [0, 1, 5, 9], [1, 0.978, 0.55, 0.122]),
    # Ran: optax exponent=2 at t=0,2,5,8,10.
    (cosine_decay(1.0, 10, exponent=2.0), [0, 2, 5, 8, 10], [1, 0.8181, 0.25, 0.0091, 0]),
    (cosine_decay(0.1, 4, end_value=0.3), [0, 2, 4, 5], [0.1, 0.2, 0.3, 0.3]),
    (cosine_decay(0.1, 10, exponent=0.0), [0, 5, 10, 100], [0.1] * 4),
    # Ran B (warmup 2, total 10, 0 -> 1 -> 0): optax = Keras(decay 8) = timm(prefix) = bv.
    (
      warmup_cosine_decay(0.0, 1.0, 2, 10),
      [0, 1, 2, 3, 6, 9, 10, 11],
      [0, 0.5, 1, 0.9619, 0.5, 0.03806, 0, 0],
    ),
    (warmup_cosine_decay(0.2, 1.0, 0, 4), [0, 2, 4, 9], [1, 0.5, 0, 0]),
    # Snapshot Ensembles, T=10, M=3: P = ceil(10/3) = 4; keeps cycling after T.
    (
      cosine_annealing(1.0, 10, 3),
      [0, 1, 2, 3, 4, 7, 8, 11, 12, 13],
      [1, 0.8536, 0.5, 0.1464, 1, 0.1464, 1, 0.1464, 1, 0.8536],
    ),
    (cosine_annealing(1.0, 5, 5), [0, 1, 7], [1, 1, 1]),
    (cosine_annealing(0.5, 7, 1), [0, 7, 14], [0.5, 0.5, 0.5]),
    # Ran D (T_0=4, T_mult=2): torch = Keras(m_mul=1) = timm = optax sgdr_schedule.
    (
      sgdr(1.0, 4, 2.0),
      range(15),
      [
        1,
        0.8536,
        0.5,
        0.1464,
        1,
        0.9619,
        0.8536,
        0.6913,
        0.5,
        0.3087,
        0.1464,
        0.03806,
        1,
        0.9904,
        0.9619,
      ],
    ),
    # timm cycle_decay=.5, lr_min=.1: the second cycle starts at .5, the third at .25.
    (sgdr(1.0, 4, 2.0, peak_decay=0.5, end_value=0.1), [0, 4, 12, 28], [1, 0.5, 0.25, 0.125]),
    # A decayed peak below the floor flattens to the floor.
    (sgdr(1.0, 2, peak_decay=0.1, end_value=0.05), [0, 2, 3, 4, 5], [1, 0.1, 0.075, 0.05, 0.05]),
    (sgdr(1.0, 2, peak_decay=0.0), [0, 1, 2, 3, 100], [1, 0.5, 0, 0, 0]),
    (sgdr(1.0, 3, 3.0), [0, 3, 12, 39], [1, 1, 1, 1]),
    # Ran: timm TanhLRScheduler T=10 at 0,5,9 is [1,.982,.01799] unscaled (see test below).
    (tanh_decay(1.0, 10), [0, 5, 10, 11, 10**6], [1, 0.98197, 0, 0, 0]),
    (tanh_decay(1.0, 10, end_value=0.5), [0, 10, 20], [1, 0.5, 0.5]),
  ],
)
def test_formula_table(schedule, steps, expected):
  np.testing.assert_allclose(values(schedule, list(steps)), expected, rtol=2e-4, atol=2e-5)


def test_tanh_rescales_timm_exactly():
  # timm's value is g(r) = (1 - tanh(-7 (1 - r) + 3 r)) / 2; lrjax maps g(0) to 1 and g(1) to 0.
  g = lambda r: 0.5 * (1 - np.tanh(-7 * (1 - r) + 3 * r))
  timm_ran = [1, 0.982, 0.01799]  # at t = 0, 5, 9 of T = 10
  ours = values(tanh_decay(1.0, 10), [0, 5, 9])
  np.testing.assert_allclose(ours * (g(0) - g(1)) + g(1), timm_ran, rtol=5e-4)
  t = np.arange(0, 1001)
  want = (g(t / 1000) - g(1)) / (g(0) - g(1))
  np.testing.assert_allclose(values(tanh_decay(1.0, 1000), t), want, rtol=3e-6, atol=1e-12)


@pytest.mark.parametrize(
  "ours, theirs, steps",
  [
    (cosine_decay(0.1, 100), optax.cosine_decay_schedule(0.1, 100), range(0, 130, 3)),
    (
      cosine_decay(0.3, 37, end_value=0.03, exponent=1.5),
      optax.cosine_decay_schedule(0.3, 37, alpha=0.1, exponent=1.5),
      range(0, 50),
    ),
    (
      cosine_decay(2.0, 1000, end_value=0.5, exponent=3.0),
      optax.cosine_decay_schedule(2.0, 1000, alpha=0.25, exponent=3.0),
      range(0, 1100, 7),
    ),
    (
      warmup_cosine_decay(0.0, 0.1, 10, 100),
      optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100),
      range(0, 120),
    ),
    (
      warmup_cosine_decay(0.01, 0.5, 7, 50, 0.05, 2.0),
      optax.warmup_cosine_decay_schedule(0.01, 0.5, 7, 50, 0.05, 2.0),
      range(0, 60),
    ),
    (
      warmup_cosine_decay(0.3, 0.1, 5, 20, 0.2),
      optax.warmup_cosine_decay_schedule(0.3, 0.1, 5, 20, 0.2),
      range(0, 30),
    ),
    (
      sgdr(1.0, 4, 2.0),
      optax.sgdr_schedule(
        [dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=d) for d in (4, 8, 16)]
      ),
      range(0, 28),
    ),
    (
      sgdr(0.5, 10, peak_decay=0.8, end_value=0.01),
      optax.sgdr_schedule(
        [
          dict(
            init_value=0.5 * 0.8**i,
            peak_value=0.5 * 0.8**i,
            warmup_steps=0,
            decay_steps=10,
            end_value=0.01,
          )
          for i in range(5)
        ]
      ),
      range(0, 50),
    ),
  ],
)
def test_parity_with_optax(ours, theirs, steps):
  steps = np.asarray(list(steps), np.int32)
  want = optax_values(theirs, steps)
  np.testing.assert_allclose(values(ours, steps), want, rtol=1e-6, atol=1e-7)


def keras_restarts(t, first, t_mul, m_mul=1.0, alpha=0.0):
  """Keras CosineDecayRestarts (initial value 1), transcribed in float64."""
  f = t / first
  i = np.floor(np.log(1 - f * (1 - t_mul)) / np.log(t_mul))
  f = (f - (1 - t_mul**i) / (1 - t_mul)) / t_mul**i
  return (1 - alpha) * 0.5 * m_mul**i * (1 + np.cos(np.pi * f)) + alpha


def restarts_by_walking(t, first, mult):
  """The definition: walk the cycles one by one in float64 (torch's loop for integer mult)."""
  start, length = 0.0, float(first)
  while t >= start + length:
    start, length = start + length, length * mult
  return 0.5 * (1 + math.cos(math.pi * (t - start) / length))


@pytest.mark.parametrize("first, mult", [(4, 2.0), (5, 1.5), (3, 3.0), (10, 1.1), (1, 2.0)])
def test_growing_cycles_match_the_definition_and_keras(first, mult):
  t = np.arange(0, 400)
  ours = values(sgdr(1.0, first, mult), t)
  want = [restarts_by_walking(int(k), first, mult) for k in t]
  np.testing.assert_allclose(ours, want, rtol=2e-5, atol=2e-6)
  # Keras's and timm's closed-form log index agrees except where it rounds down exactly on a
  # cycle start (L=3, r=3: step 363 = 3 (3**5 - 1) / 2 gives the previous cycle's end, 0).
  keras = keras_restarts(t, first, mult)
  off = np.abs(ours - keras) > 1e-4
  assert set(t[off]) <= {363}


@pytest.mark.parametrize("first, mult", [(1, 2.0), (4, 2.0), (3, 3.0), (7, 4.0), (2, 1.5)])
def test_every_integer_cycle_start_is_exactly_the_peak(first, mult):
  starts = [0]
  while (nxt := starts[-1] + first * mult ** (len(starts) - 1)) < I32_MAX:
    starts.append(nxt)
  starts = [int(s) for s in starts if float(s).is_integer() and s < 2**24]
  np.testing.assert_array_equal(values(sgdr(0.1, first, mult), starts), np.float32(0.1))
  before = [s - 1 for s in starts[1:] if s - 1 not in starts]
  assert np.all(values(sgdr(0.1, first, mult), before) < np.float32(0.1))


def test_int32_edges_and_beyond():
  # Periodic: 2**31 - 1 and 2**62 land on the phase of the same step mod P.
  for s, period in [(cosine_annealing(0.1, 100, 3), 34), (sgdr(0.1, 7), 7), (sgdr(0.1, 10), 10)]:
    for step in [np.int32(I32_MAX), jnp.int32(I32_MAX), 2**62]:
      phase = int(step) % period
      assert float(s(step)) == pytest.approx(one(s, phase), rel=1e-6), (s, step)
  # Decays hold their end value.
  for s, end in [
    (cosine_decay(0.1, 100, end_value=0.01), 0.01),
    (tanh_decay(0.1, 100, end_value=0.02), 0.02),
    (warmup_cosine_decay(0.0, 0.1, 10, 100, 0.001), 0.001),
  ]:
    v = values(s, [99, 100, 101, 10**6, I32_MAX])
    assert end < v[0] < 0.1 and np.all(v[1:] == np.float32(end))
    assert float(s(np.int32(I32_MAX))) == float(s(2**62)) == np.float32(end)
  # Decaying peaks: the 2**62-th step is as far along the decay as int32 can go (0 here).
  assert float(sgdr(1.0, 10, peak_decay=0.999, end_value=0.01)(2**62)) == np.float32(0.01)
  # Growing cycles (L = 1, r = 2: cycle i starts at 2**i - 1): exact while starts are below
  # 2**24; past it a start moves to its float32 rounding (2**30 - 1 -> 2**30) and the rest follows.
  s = sgdr(1.0, 1, 2.0)
  assert one(s, 2**23 - 1) == 1.0
  assert one(s, 2**23 - 2) == pytest.approx(0, abs=1e-12)
  assert one(s, 2**23) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2**23)), rel=1e-7)
  assert one(s, 2**30) == 1.0
  assert one(s, 2**30 - 1) == pytest.approx(0, abs=1e-12)
  assert one(s, 2**30 + 2**29) == pytest.approx(0.5, abs=1e-6)
  assert one(s, 2**30 + 7) == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 2**30)), rel=1e-7)
  assert math.isfinite(float(s(2**62))) and math.isfinite(one(sgdr(1.0, 3, 1.7), I32_MAX))


CASES = {  # (a, b, n) -> (schedule, lowest and highest value it may take)
  "cosine_decay": lambda a, b, n: (cosine_decay(a, n, end_value=b, exponent=1.5), a, b),
  "warmup_cosine_decay": lambda a, b, n: (warmup_cosine_decay(b, a, n // 3, n, b), a, b),
  "cosine_annealing": lambda a, b, n: (cosine_annealing(a, n, max(1, n // 7)), 0.0, a),
  "sgdr_equal": lambda a, b, n: (sgdr(max(a, b), n, 1.0, 0.9, min(a, b)), a, b),
  "sgdr_growing": lambda a, b, n: (sgdr(max(a, b), n, 1.6, 0.7, min(a, b)), a, b),
  "tanh_decay": lambda a, b, n: (tanh_decay(a, n, -5.0, 2.0, b), a, b),
}
STEPS = np.array([0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 10**6], np.int32)
DENSE = np.arange(0, 403, dtype=np.int32)
lr = st.floats(0.0, 2.0, allow_subnormal=False, width=32)


@pytest.mark.parametrize("kind", sorted(CASES))
@settings(max_examples=10, deadline=None)
@given(a=lr, b=lr, n=st.integers(1, 400))
def test_properties(kind, a, b, n):
  s, lo, hi = CASES[kind](a, b, n)
  v = values(s, STEPS)
  assert np.all(v >= np.float32(min(lo, hi))) and np.all(v <= np.float32(max(lo, hi))), v
  # A value rising from 0 is a difference of near-equal numbers: compare relative to the range.
  tol = dict(rtol=2e-6, atol=1e-6 * max(a, b))
  np.testing.assert_allclose(np.asarray(s(STEPS)), v, **tol)
  looped = [float(s(int(t))) for t in STEPS[::6]]
  np.testing.assert_allclose(v[::6], looped, **tol)
  if kind in ("cosine_decay", "tanh_decay"):
    dense = values(s, DENSE)
    assert np.all(np.diff(dense) * np.sign(b - a) >= 0), dense


VMAP_CASES = [  # (build from batched leaves, batches)
  (lambda w, d: warmup_cosine_decay(0.0, 1.0, w, d), ([0, 2, 5], [10, 10, 30])),
  (lambda t, m: cosine_annealing(1.0, t, m), ([10, 12, 9], [3, 4, 1])),
  (lambda f, r: sgdr(1.0, f, r, 0.8, 0.1), ([4, 4, 3], [1.0, 2.0, 1.5])),
  (lambda t, lo: tanh_decay(1.0, t, lo), ([5, 10, 11], [-7.0, -3.0, 0.0])),
]


def test_vmap_over_durations():
  T = jnp.array([10, 20])
  np.testing.assert_allclose(
    jax.vmap(lambda T: cosine_decay(1.0, T)(7))(T), [one(cosine_decay(1.0, t), 7) for t in (10, 20)]
  )
  steps = jnp.arange(40)
  for build, batches in VMAP_CASES:
    out = np.asarray(
      jax.jit(jax.vmap(lambda *a, build=build: build(*a)(steps)))(*map(jnp.asarray, batches))
    )
    for k, args in enumerate(zip(*batches)):
      np.testing.assert_allclose(out[k], values(build(*args), steps), rtol=2e-6, atol=1e-7)


GRAD_CASES = [
  (lambda i, e, p: cosine_decay(i, 10, end_value=e, exponent=p), (0.1, 0.01, 1.0), [0, 5, 10, 11]),
  (lambda i, e, p: cosine_decay(i, 10, end_value=e, exponent=p), (0.0, 0.0, 0.0), [0, 10, 99]),
  (lambda i, e, p: warmup_cosine_decay(i, 0.1, 3, 10, e, p), (0.0, 0.0, 2.0), [0, 3, 10, 50]),
  (lambda i, p, e: warmup_cosine_decay(i, p, 0, 10, e), (0.01, 0.0, 0.0), [0, 10, 20]),
  (lambda p: cosine_annealing(p, 10, 3), (0.1,), [0, 3, 4, 10, 12]),
  (lambda p, r, d: sgdr(p, 4, r, d, 0.0), (0.1, 1.0, 1.0), [0, 3, 4, 12, 28, 100]),
  (lambda p, r, d: sgdr(p, 4, r, d, 0.01), (0.1, 2.0, 0.0), [0, 3, 4, 12, 28, 100]),
  (lambda p, r, e: sgdr(p, 4, r, 0.5, e), (0.1, 1.5, 0.1), [0, 4, 10, 19, I32_MAX]),
  (lambda i, lo, e: tanh_decay(i, 10, lo, 3.0, e), (0.1, -7.0, 0.0), [0, 5, 10, 11]),
  (lambda i, up, e: tanh_decay(i, 10, -7.0, up, e), (0.1, -6.999, 0.0), [0, 5, 10]),
]


@pytest.mark.parametrize("build, args, steps", GRAD_CASES)
def test_gradients_are_finite_at_the_edges(build, args, steps):
  grad = jax.jit(jax.grad(lambda a, t: build(*a)(t)))
  for t in steps + [I32_MAX]:
    g = grad(tuple(jnp.float32(a) for a in args), jnp.int32(t))
    assert all(np.isfinite(np.asarray(x)) for x in g), (args, t, g)


@pytest.mark.parametrize(
  "factory, kwargs, name",
  [
    (cosine_decay, dict(init_value=-0.1, decay_steps=10), "init_value"),
    (cosine_decay, dict(init_value=float("inf"), decay_steps=10), "init_value"),
    (cosine_decay, dict(init_value=0.1, decay_steps=0), "decay_steps"),
    (cosine_decay, dict(init_value=0.1, decay_steps=2.5), "decay_steps"),
    (cosine_decay, dict(init_value=0.1, decay_steps=10, end_value=-1.0), "end_value"),
    (cosine_decay, dict(init_value=0.1, decay_steps=10, exponent=-1.0), "exponent"),
    (
      warmup_cosine_decay,
      dict(init_value=0, peak_value=-1, warmup_steps=1, decay_steps=5),
      "peak_value",
    ),
    (
      warmup_cosine_decay,
      dict(init_value=0, peak_value=1, warmup_steps=5, decay_steps=5),
      "warmup_steps",
    ),
    (
      warmup_cosine_decay,
      dict(init_value=0, peak_value=1, warmup_steps=9, decay_steps=5),
      "warmup_steps",
    ),
    (
      warmup_cosine_decay,
      dict(init_value=0, peak_value=1, warmup_steps=-1, decay_steps=5),
      "warmup_steps",
    ),
    (
      warmup_cosine_decay,
      dict(init_value=0, peak_value=1, warmup_steps=1, decay_steps=0),
      "decay_steps",
    ),
    (cosine_annealing, dict(peak_value=0.1, total_steps=10, num_cycles=0), "num_cycles"),
    (cosine_annealing, dict(peak_value=0.1, total_steps=10, num_cycles=11), "num_cycles"),
    (cosine_annealing, dict(peak_value=0.1, total_steps=0, num_cycles=1), "total_steps"),
    (cosine_annealing, dict(peak_value=-0.1, total_steps=10, num_cycles=1), "peak_value"),
    (sgdr, dict(peak_value=0.1, first_period=0), "first_period"),
    (sgdr, dict(peak_value=0.1, first_period=5, period_mult=0.5), "period_mult"),
    (sgdr, dict(peak_value=0.1, first_period=5, peak_decay=1.5), "peak_decay"),
    (sgdr, dict(peak_value=0.1, first_period=5, peak_decay=-0.1), "peak_decay"),
    (sgdr, dict(peak_value=0.1, first_period=5, end_value=0.2), "end_value"),
    (sgdr, dict(peak_value=float("nan"), first_period=5), "peak_value"),
    (tanh_decay, dict(init_value=0.1, total_steps=10, lower=3.0, upper=3.0), "lower"),
    (tanh_decay, dict(init_value=0.1, total_steps=10, upper=float("inf")), "upper"),
    (tanh_decay, dict(init_value=0.1, total_steps=-3), "total_steps"),
    (tanh_decay, dict(init_value=0.1, total_steps=10, end_value=-0.1), "end_value"),
  ],
)
def test_validation_errors_name_the_argument(factory, kwargs, name):
  with pytest.raises(ValueError, match=name):
    factory(**kwargs)


def test_traced_hyperparameters_pass_unchecked():
  # Under jit the factory cannot inspect values; the formulas must still be defined.
  f = jax.jit(
    lambda w, d, m: warmup_cosine_decay(0.0, 1.0, w, d)(5) + cosine_annealing(1.0, d, m)(5)
  )
  assert np.isfinite(float(f(jnp.int32(5), jnp.int32(5), jnp.int32(0))))
