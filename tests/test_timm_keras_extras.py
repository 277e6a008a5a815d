"""timm's k-decay and cycle limit, and Keras's cycling polynomial decay.

Parity with the values timm and Keras produce (recorded by scripts/peers/timm_keras_extras.py)
at every recorded step, and the promises of the docstrings: exact ends, k_decay=1 and no
cycle_limit are the schedules as they were, configs written before the new arguments still build
them. timm's noise, recorded in the same file, is tested in tests/test_noise.py.
"""

import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from schedule_values import values

import lrjax
from lrjax.schedules import formulas

RECORD = json.loads(
  (Path(__file__).parent / "data" / "peers" / "timm_keras_extras.json").read_text()
)
CASES = {c["id"]: c for c in RECORD["cases"]}
STEPPED = sorted(c for c in CASES if "values" in CASES[c] and not c.startswith("noise"))


def _lrjax_schedule(case):
  s = case["settings"]
  if case["peer"].startswith("keras"):
    return lrjax.polynomial_decay(
      s["initial_learning_rate"],
      s["decay_steps"],
      s["power"],
      s["end_learning_rate"],
      cycle=s["cycle"],
    )
  if case["peer"].endswith("PolyLRScheduler"):
    return lrjax.polynomial_decay(
      s["peak"], s["t_initial"], s["power"], s["lr_min"], k_decay=s["k_decay"]
    )
  if "cycle_limit" in s:
    return lrjax.sgdr(
      s["peak"],
      s["t_initial"],
      period_mult=s["cycle_mul"],
      peak_decay=s["cycle_decay"],
      end_value=s["lr_min"],
      cycle_limit=s["cycle_limit"],
      k_decay=s["k_decay"],
    )
  if "warmup_t" in s:
    # timm's warmup_prefix=True: the decay's t_initial counts after the warmup.
    cosine = lrjax.cosine_decay(s["peak"], s["t_initial"], k_decay=s["k_decay"])
    return lrjax.warmup(cosine, s["warmup_t"], init_value=s["warmup_lr_init"])
  return lrjax.cosine_decay(s["peak"], s["t_initial"], end_value=s["lr_min"], k_decay=s["k_decay"])


def test_every_setting_is_recorded():
  assert len([c for c in CASES if c.startswith("cosine-k")]) == 3 * 2 + 1
  assert len([c for c in CASES if c.startswith("poly-k")]) == 2 * 2 * 2
  assert len([c for c in CASES if c.startswith("cycles-")]) == 3 * 2 * 2 * 2
  assert len([c for c in CASES if c.startswith("keras-")]) == 5
  assert len([c for c in CASES if c.startswith("noise-")]) == 4 + 3


@pytest.mark.parametrize("case_id", STEPPED)
def test_same_values_at_every_step(case_id):
  # timm reads step_update(t) and Keras schedule(t) for the update with index t, as lrjax does:
  # no shift, also at the cycle limit (timm's cycle i >= n is lrjax's) and the warmup prefix.
  case = CASES[case_id]
  expected = np.asarray(case["values"])
  got = values(_lrjax_schedule(case), np.arange(len(expected)))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)


def test_timm_s_default_cycle_limit_is_one_cosine_decay():
  case = CASES["cycles-mul1.0-decay1.0-limit1-k2.0"]
  s = lrjax.cosine_decay(0.1, 10, end_value=0.001, k_decay=2.0)
  np.testing.assert_allclose(values(s, np.arange(20)), case["values"], rtol=1e-5, atol=0)


# ----------------------------------------------------------------------------- k-decay

K_SCHEDULES = [
  functools.partial(lrjax.cosine_decay, 0.1, 50, end_value=0.001),
  functools.partial(lrjax.cosine_decay, 0.01, 13, end_value=0.1, exponent=2.0),  # rising
  functools.partial(lrjax.polynomial_decay, 0.1, 50, 2.0, 0.001),
  functools.partial(lrjax.polynomial_decay, 0.1, 37, 0.5),
  functools.partial(lrjax.polynomial_decay, 0.1, 10, 2.0, 0.001, cycle=True),
  functools.partial(lrjax.sgdr, 0.1, 10, 2.0, 0.5, 0.001, cycle_limit=3),
]


def _jit_closed(s, steps):
  return np.asarray(jax.jit(lambda t: s(t))(jnp.asarray(steps)))


def _jit_traced(s, steps):
  return np.asarray(jax.jit(lambda sched, t: sched(t))(s, jnp.asarray(steps)))


@pytest.mark.parametrize("make", K_SCHEDULES, ids=lambda m: m.func.__name__)
def test_k_decay_one_is_the_schedule_without_k_decay(make):
  steps = np.arange(120, dtype=np.int32)
  plain = make()
  assert plain == make(k_decay=1.0) and hash(plain) == hash(make(k_decay=1.0))
  config = plain.to_config()
  assert config.pop("k_decay") == 1.0
  assert lrjax.from_config(config) == plain  # a config written before k_decay builds it
  for run in (_jit_closed, _jit_traced):
    np.testing.assert_array_equal(run(make(k_decay=1.0), steps), run(plain, steps))


def test_k_decay_one_takes_the_plain_formula_bit_for_bit():
  t = jnp.arange(60, dtype=jnp.int32)
  s = lrjax.cosine_decay(0.1, 50, end_value=0.001, exponent=2.0)
  plain = jax.jit(lambda s, t: formulas.cosine_between(0.1, 0.001, t, s.decay_steps, s.exponent))
  np.testing.assert_array_equal(_jit_traced(s, t), plain(s, t))
  closed = jax.jit(lambda t: formulas.cosine_between(s.init_value, s.end_value, t, 50, 2.0))
  np.testing.assert_array_equal(_jit_closed(s, t), closed(t))


@pytest.mark.parametrize("k", [0.3, 0.5, 2.0, 3.0])
@pytest.mark.parametrize("make", K_SCHEDULES, ids=lambda m: m.func.__name__)
def test_k_decay_keeps_the_ends_exact_and_known_equals_traced(make, k):
  s = make(k_decay=k)
  steps = np.arange(200, dtype=np.int32)
  closed, traced = _jit_closed(s, steps), _jit_traced(s, steps)
  np.testing.assert_allclose(closed, traced, rtol=2e-6, atol=1e-9)
  plain = np.asarray(make()(steps))
  for out in (closed, traced):
    assert out[0] == plain[0]
    # Where the plain schedule reaches an end value exactly, so does the k-decayed one.
    ends = plain == np.float32(make().fields().get("end_value", 0.0))
    np.testing.assert_array_equal(out[ends], plain[ends])


@pytest.mark.parametrize("k", [0.5, 2.0])
def test_k_decay_warps_the_progress(k):
  # cos(pi (t / T)^k): the value at t is the plain cosine's at T (t / T)^k.
  t, total = np.arange(51), 50
  got = values(lrjax.cosine_decay(1.0, total, k_decay=k), t)
  np.testing.assert_allclose(got, 0.5 * (1 + np.cos(np.pi * (t / total) ** k)), atol=1e-6)
  # k > 1 stays higher than the plain cosine, k < 1 lower, between the ends.
  plain = values(lrjax.cosine_decay(1.0, total), t)
  inner = slice(1, total)
  assert np.all((got[inner] > plain[inner]) if k > 1 else (got[inner] < plain[inner]))


def test_k_decay_can_be_vmapped_and_has_finite_gradients():
  ks = jnp.asarray([0.5, 1.0, 2.0], jnp.float32)
  out = jax.vmap(lambda k: lrjax.cosine_decay(0.1, 50, k_decay=k)(25))(ks)
  expected = [float(lrjax.cosine_decay(0.1, 50, k_decay=float(k))(25)) for k in ks]
  np.testing.assert_allclose(out, expected, rtol=2e-6)
  for make in K_SCHEDULES:
    grad = jax.jit(jax.grad(lambda k, t, make=make: make(k_decay=k)(t)))
    for k in (0.5, 1.0, 2.0):
      for step in (0, 1, 10, 49, 50, 51, 2**31 - 1):
        assert np.isfinite(float(grad(jnp.float32(k), jnp.int32(step)))), (make, k, step)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("make", K_SCHEDULES, ids=lambda m: m.func.__name__)
def test_bad_k_decay_is_refused_by_name(make, bad):
  with pytest.raises(ValueError, match="k_decay"):
    make(k_decay=bad)


# ----------------------------------------------------------------------------- cycle limit


@pytest.mark.parametrize("mult", [1.0, 2.0, 1.5])
def test_after_the_cycle_limit_the_rate_holds_the_end_value(mult):
  limited = lrjax.sgdr(0.1, 10, period_mult=mult, peak_decay=0.5, end_value=0.001, cycle_limit=3)
  free = lrjax.sgdr(0.1, 10, period_mult=mult, peak_decay=0.5, end_value=0.001)
  end = free.cycle_ends(10**4)[2]  # the third cycle's end: 30, 70 or 48
  steps = np.arange(end + 50)
  got, before = values(limited, steps), values(free, steps)
  np.testing.assert_array_equal(got[:end], before[:end])
  np.testing.assert_array_equal(got[end:], np.float32(0.001))
  assert limited.cycle_ends(end + 50) == (*free.cycle_ends(end)[:3], end + 50)
  for huge in (2**31 - 1, 2**31, 2**40, 2**62):
    assert float(limited(huge)) == np.float32(0.001)


def test_cycle_limit_default_is_no_limit_and_old_configs_build_it():
  s = lrjax.sgdr(0.1, 10, 2.0, 0.7)
  assert s.cycle_limit is None
  config = s.to_config()
  assert config.pop("cycle_limit") is None and config.pop("k_decay") == 1.0
  assert lrjax.from_config(config) == s
  limited = lrjax.sgdr(0.1, 10, cycle_limit=2)
  assert lrjax.from_config(json.loads(json.dumps(limited.to_config()))) == limited


def test_cycle_limit_is_a_leaf():
  f = jax.jit(lambda s, t: s(t))
  for n in (1, 2, 5):
    f(lrjax.sgdr(0.1, 10, cycle_limit=n), 25)
  assert f._cache_size() == 1
  out = jax.vmap(lambda n: lrjax.sgdr(0.1, 10, cycle_limit=n)(25))(jnp.asarray([2, 3], jnp.int32))
  np.testing.assert_allclose(out, [0.0, float(lrjax.sgdr(0.1, 10)(25))], rtol=1e-6)

  def traced(n):
    with pytest.raises(ValueError, match="cycle_limit"):
      lrjax.sgdr(0.1, 10, cycle_limit=n).cycle_ends(100)
    return n

  jax.jit(traced)(jnp.int32(2))


@pytest.mark.parametrize("bad", [0, -1, 2.5, float("nan"), True])
def test_bad_cycle_limit_is_refused_by_name(bad):
  with pytest.raises(ValueError, match="cycle_limit"):
    lrjax.sgdr(0.1, 10, cycle_limit=bad)


# ----------------------------------------------------------------------------- Keras cycle


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 0.0])
def test_keras_cycle_ends_exactly_at_every_multiple(power):
  total = 10
  s = lrjax.polynomial_decay(0.1, total, power, 0.001, cycle=True)
  steps = np.arange(0, 10 * total + 1)
  for out in (_jit_closed(s, steps), _jit_traced(s, steps), np.asarray(s(steps))):
    assert out[0] == np.float32(0.1)
    np.testing.assert_array_equal(out[total::total], np.float32(0.001))
    if power > 0:
      # Each cycle decays from its first step to the multiple ending it.
      for k in range(1, 10):
        cycle = out[k * total + 1 : (k + 1) * total + 1]
        assert np.all(np.diff(cycle) < 0), (k, cycle)
  # t = T + 1 reads (T + 1) / 2T of the longer horizon.
  left = 1 - (total + 1) / (2 * total)
  np.testing.assert_allclose(float(s(total + 1)), 0.001 + 0.099 * left**power, rtol=1e-6)


def test_keras_cycle_ends_and_restarts():
  s = lrjax.polynomial_decay(0.1, 10, 2.0, cycle=True)
  assert s.cycle_ends(45) == (11, 21, 31, 41, 45)
  assert lrjax.polynomial_decay(0.1, 10, 2.0).cycle_ends(45) == ()
  v = np.asarray(s(np.arange(46)))
  rises = [t for t in range(1, 46) if v[t] > v[t - 1]]
  assert rises == list(s.cycle_ends(45)[:-1])
  for huge in (2**31, 2**62):
    assert math.isfinite(float(s(huge)))


def test_keras_cycle_is_a_static_flag_with_a_config():
  s = lrjax.polynomial_decay(0.1, 10, 2.0, cycle=True, k_decay=2.0)
  config = json.loads(json.dumps(s.to_config()))
  assert config["cycle"] is True and lrjax.from_config(config) == s
  old = {"name": "polynomial_decay", "init_value": 0.1, "total_steps": 10, "power": 2.0}
  assert lrjax.from_config(old) == lrjax.polynomial_decay(0.1, 10, 2.0, cycle=False)
  assert lrjax.polynomial_decay(0.1, 10, 2.0) != lrjax.polynomial_decay(0.1, 10, 2.0, cycle=True)
  with pytest.raises(ValueError, match="cycle"):
    lrjax.polynomial_decay(0.1, 10, 2.0, cycle="yes")
