"""Tests of lrjax.schedules.power: the Power scheduler, a power law of the tokens seen."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from schedule_values import values

import lrjax
from lrjax.schedules.base import INT32_MAX
from lrjax.schedules.power import power_scheduler


def reference(
  t,
  peak,
  tps,
  a,
  b,
  beta=1.0,
  warmup=0.0,
  total=None,
  decay=None,
  end=0.0,
  init=0.0,
  shape="exponential",
):
  """The Power scheduler in float64, from its definition."""
  n = np.asarray(t, np.float64) * tps

  def law(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, np.minimum(peak, beta * a * np.where(x > 0, x, 1.0) ** b), peak)

  out = law(n)
  if total is not None:
    start = total - decay
    p = np.clip((n - start) / decay, 0.0, 1.0)
    f = {
      "exponential": np.expm1(1 - p) / np.expm1(1.0),
      "linear": 1 - p,
      "cosine": 0.5 * (1 + np.cos(np.pi * p)),
      "1-sqrt": 1 - np.sqrt(p),
    }[shape]
    out = np.where(n < start, out, np.where(n >= total, end, end + (law(start) - end) * f))
  if warmup > 0:
    out = np.where(n < warmup, init + (law(warmup) - init) * n / warmup, out)
  return out


CASES = [
  dict(peak=0.1, tps=1000, a=4.6, b=-0.51, beta=4.0, warmup=10_000, total=100_000, decay=20_000),
  dict(peak=0.02, tps=2**20, a=4.0, b=-0.51, beta=64.0, warmup=2**26, total=2**30, decay=2**27),
  dict(peak=1.0, tps=3, a=2.0, b=-0.3, total=900, decay=300, end=0.05, init=0.01),
  dict(peak=0.5, tps=7, a=1.0, b=-1.0, warmup=70, end=0.0),
]


def schedule_of(case, shape="exponential"):
  c = dict(case)
  return power_scheduler(
    c.pop("peak"),
    c.pop("tps"),
    c.pop("a"),
    c.pop("b"),
    beta=c.pop("beta", 1.0),
    warmup_tokens=c.pop("warmup", 0.0),
    total_tokens=c.pop("total", None),
    decay_tokens=c.pop("decay", None),
    end_value=c.pop("end", 0.0),
    init_value=c.pop("init", 0.0),
    decay_shape=shape,
  )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape", ["exponential", "linear", "cosine", "1-sqrt"])
def test_matches_the_definition(case, shape):
  s = schedule_of(case, shape)
  last = (case.get("total") or 2000 * case["tps"]) // case["tps"]
  steps = np.unique(np.r_[np.arange(0, last + 3), np.linspace(0, 50 * last, 97).astype(int)])
  want = reference(steps, **case, shape=shape)
  np.testing.assert_allclose(values(s, steps), want, rtol=2e-6, atol=1e-9)
  np.testing.assert_allclose(s(steps), want, rtol=2e-6, atol=1e-9)


def test_hand_computed_values():
  # a = 1, b = -1/2, 4 tokens a step, warmup over 16 tokens to law(16) = 1/4.
  s = power_scheduler(1.0, 4, a=1.0, b=-0.5, warmup_tokens=16)
  np.testing.assert_allclose(
    values(s, [0, 1, 2, 4, 16, 64, 2500]), [0, 1 / 16, 1 / 8, 1 / 4, 1 / 8, 1 / 16, 0.01], rtol=1e-6
  )
  # beta = 100: the cap holds while 100 / sqrt(n) >= 1, to n = 10,000 tokens (2,500 steps).
  capped = s.replace(beta=100.0)
  np.testing.assert_allclose(values(capped, [2, 4, 2500, 10_000]), [0.5, 1, 1, 0.5], rtol=1e-6)
  # A decay over the last 200 of 400 tokens, from law(200) = 1/sqrt(200): at its middle
  # (e^0.5 - 1) / (e - 1) = 0.3775407 of it.
  decay = s.replace(total_tokens=400, decay_tokens=200)
  got = values(decay, [49, 50, 75, 99, 100])
  half = (np.exp(0.5) - 1) / (np.e - 1)
  want = [1 / np.sqrt(196), 1 / np.sqrt(200), half / np.sqrt(200), None, 0.0]
  want[3] = (np.exp(1 / 50) - 1) / (np.e - 1) / np.sqrt(200)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_exact_values_at_the_edges():
  kw = dict(a=4.6, b=-0.51, beta=1.0, end_value=0.001, init_value=0.0005)
  s = power_scheduler(
    0.1, 1000, warmup_tokens=8000, total_tokens=100_000, decay_tokens=20_000, **kw
  )
  no_warmup = s.replace(warmup_tokens=0)
  no_decay = power_scheduler(0.1, 1000, warmup_tokens=8000, **kw)
  law_at = 4.6 * np.float64(8000) ** -0.51  # 0.047, below the cap
  # 0: init; warmup end (step 8): the law there; decay start (step 80): the law there.
  assert float(s(0)) == np.float32(0.0005)
  assert float(s(8)) == float(no_warmup(8)) == pytest.approx(law_at, rel=1e-6)
  assert float(s(80)) == float(no_decay(80))
  np.testing.assert_array_equal(values(s, [8, 80]), values(no_decay, [8, 80]))
  # From the total on: the end value, also past int32.
  ends = [100, 101, 10**6, INT32_MAX]
  np.testing.assert_array_equal(values(s, ends), np.float32([0.001] * 4))
  for step in (INT32_MAX, jnp.int32(INT32_MAX), 2**40, 2**62):
    assert float(s(step)) == np.float32(0.001)
  # Without a warmup the cap holds at n = 0, where the law is infinite.
  assert float(no_warmup(0)) == np.float32(0.1)
  np.testing.assert_allclose(
    values(s, [7, 79, 99]),
    reference([7, 79, 99], 0.1, 1000, 4.6, -0.51, 1.0, 8000, 100_000, 20_000, 0.001, 0.0005),
    rtol=2e-6,
  )


def test_the_same_tokens_give_the_same_rates_for_two_batch_sizes():
  # Batches of 8 and 32 sequences of 128 tokens, the same schedule in tokens.
  tokens = dict(warmup_tokens=2**15, total_tokens=2**21, decay_tokens=2**19)
  small = power_scheduler(0.02, 8 * 128, a=4.6, b=-0.51, **tokens)
  large = small.replace(tokens_per_step=32 * 128)
  k = np.arange(0, 2**21 // (32 * 128) + 4)
  np.testing.assert_array_equal(values(small, 4 * k), values(large, k))
  np.testing.assert_array_equal(small(4 * k), large(k))
  # Same tokens, different steps: the large batch reaches them in a quarter of the updates.
  assert float(large(100)) == float(small(400)) != float(small(100))
  # The paper's beta = batch size: at equal tokens below the cap, the rate is 4x.
  paper_small = small.replace(beta=8.0, peak_value=1.0)
  paper_large = large.replace(beta=32.0, peak_value=1.0)
  np.testing.assert_allclose(
    values(paper_large, k[9:]), 4 * values(paper_small, 4 * k[9:]), rtol=1e-6
  )


def test_tokens_past_int32_are_counted_in_float32():
  # 4M tokens a step: int32 tokens would overflow after 512 steps.
  s = power_scheduler(0.02, 2**22, a=4.0, b=-0.51, beta=256.0)
  steps = np.array([1, 511, 512, 513, 10_000, 10**6, INT32_MAX])
  got = values(s, steps)
  want = reference(steps, 0.02, 2**22, 4.0, -0.51, 256.0)
  assert np.all(np.isfinite(got)) and np.all(got > 0) and np.all(np.diff(got) <= 0)
  np.testing.assert_allclose(got, want, rtol=2e-6)
  # Without a final decay the law goes on past int32 steps, from the float step.
  for step in (2**31, 2**40, 2**62):
    np.testing.assert_allclose(
      float(s(step)), reference(step, 0.02, 2**22, 4.0, -0.51, 256.0), rtol=2e-6
    )
  assert float(s(2**62)) < float(s(2**40)) < float(s(INT32_MAX))


def test_decay_fraction_is_of_the_total():
  s = power_scheduler(0.1, 10, a=1.0, b=-0.5, total_tokens=1000, decay_fraction=0.25)
  assert float(s.decay_tokens) == 250.0
  assert s == power_scheduler(0.1, 10, a=1.0, b=-0.5, total_tokens=1000, decay_tokens=250)
  assert "decay_fraction" not in s.to_config()


def test_stable_phase_is_warmup_stable_decay_with_a_power_stable_phase():
  # (t / W)^b times law(W tau) is beta a (t tau)^b: lrjax's (and timm's) power stable phase with
  # stable_power = -b and stable_timescale = W, in steps for one batch size.
  w, tau, a, b = 20, 512, 4.6, -0.51
  s = power_scheduler(
    10.0, tau, a, b, warmup_tokens=w * tau, total_tokens=200 * tau, decay_tokens=40 * tau
  )
  peak = float(a * (w * tau) ** b)
  ref = lrjax.warmup_stable_decay(
    peak, w, 140, 40, stable_shape="power", stable_power=-b, stable_timescale=w
  )
  steps = np.arange(w, 160)
  np.testing.assert_allclose(values(s, steps), values(ref, steps), rtol=1e-5)


def test_config_round_trip_without_a_decay():
  s = power_scheduler(0.02, 4096, a=4.0, b=-0.51, beta=8.0, warmup_tokens=1e6)
  config = s.to_config()
  assert config["total_tokens"] is None and config["decay_tokens"] is None
  again = lrjax.from_config(json.loads(json.dumps(config)))
  assert again == s and hash(again) == hash(s)
  big = power_scheduler(0.02, 2**22, a=4.0, b=-0.51, total_tokens=1e12, decay_fraction=0.1)
  assert lrjax.from_config(json.loads(json.dumps(big.to_config()))) == big


def test_one_program_for_new_values_and_traced_hyperparameters():
  f = jax.jit(lambda schedule, t: schedule(t))
  tokens = dict(warmup_tokens=1000, total_tokens=10_000, decay_tokens=2000)
  f(power_scheduler(0.1, 100, 4.6, -0.51, **tokens), 5)
  f(power_scheduler(0.2, 300, 2.0, -0.3, beta=7.0, **tokens), 9)
  assert f._cache_size() == 1

  @jax.jit
  def curve(tps, b, total):
    return power_scheduler(0.1, tps, 4.6, b, total_tokens=total, decay_tokens=2000)(jnp.arange(100))

  want = values(
    power_scheduler(0.1, 100, 4.6, -0.51, total_tokens=9000, decay_tokens=2000), np.arange(100)
  )
  np.testing.assert_allclose(curve(100.0, -0.51, 9000.0), want, rtol=1e-6)


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(b=0.0), r"b must be < 0 \(a falling power law\), got 0.0"),
    (dict(b=0.5), r"b must be < 0 \(a falling power law\), got 0.5"),
    (dict(b=float("nan")), r"b must be finite, got nan"),
    (dict(a=0.0), r"a must be > 0, got 0.0"),
    (dict(a=-4.6), r"a must be > 0, got -4.6"),
    (dict(beta=0.0), r"beta must be > 0, got 0.0"),
    (dict(tokens_per_step=0), r"tokens_per_step must be > 0, got 0"),
    (dict(tokens_per_step=-1), r"tokens_per_step must be > 0, got -1"),
    (dict(tokens_per_step=float("inf")), r"tokens_per_step must be finite"),
    (dict(peak_value=-0.1), r"peak_value must be a finite, non-negative learning rate"),
    (dict(warmup_tokens=-1), r"warmup_tokens must be >= 0, got -1"),
    (dict(decay_tokens=100), r"decay_tokens needs total_tokens, got decay_tokens=100"),
    (dict(decay_fraction=0.1), r"decay_fraction needs total_tokens"),
    (dict(total_tokens=1000), r"total_tokens needs a final decay"),
    (dict(total_tokens=0, decay_tokens=1), r"total_tokens must be > 0, got 0"),
    (dict(total_tokens=1000, decay_tokens=0), r"decay_tokens must be > 0, got 0"),
    (dict(total_tokens=1000, decay_tokens=100, decay_fraction=0.1), r"both given: give one"),
    (dict(total_tokens=1000, decay_fraction=0.0), r"decay_fraction must be in \(0.0, 1.0\]"),
    (dict(total_tokens=1000, decay_fraction=1.5), r"decay_fraction must be in \(0.0, 1.0\]"),
    (
      dict(total_tokens=1000, decay_tokens=600, warmup_tokens=500),
      r"total_tokens must hold the warmup and the decay, got total_tokens=1000 < "
      r"warmup_tokens \+ decay_tokens = 500 \+ 600",
    ),
    (dict(total_tokens=1000, decay_tokens=1001), r"total_tokens must hold"),
    (dict(total_tokens=1000, decay_tokens=100, decay_shape="exp"), r"decay_shape must be one of"),
  ],
)
def test_bad_inputs_name_the_argument_and_value(kwargs, match):
  args = dict(peak_value=0.1, tokens_per_step=100, a=4.6, b=-0.51) | kwargs
  with pytest.raises(ValueError, match=match):
    power_scheduler(**args)


def test_a_warmup_and_decay_filling_the_total_is_allowed():
  s = power_scheduler(
    1.0, 10, a=1.0, b=-0.5, warmup_tokens=500, total_tokens=1000, decay_tokens=500
  )
  got = values(s, [0, 25, 50, 75, 100])
  law = 1 / np.sqrt(500)
  assert got[0] == 0 and got[4] == 0
  want = [law / 2, law, law * (np.exp(0.5) - 1) / (np.e - 1)]
  np.testing.assert_allclose(got[1:4], want, rtol=1e-6)
