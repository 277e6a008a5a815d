"""Warmup shapes (`warmup()` and WSD) and WSD sized from a total with fractions."""

import math

import jax
import numpy as np
import pytest

import lrjax
from tests.schedule_values import values

SHAPES = {
  "linear": lambda p: p,
  "cosine": lambda p: 0.5 * (1 - math.cos(math.pi * p)),
  "1-sqrt": lambda p: 1 - math.sqrt(1 - p),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_warmup_shapes_follow_their_formula_and_hand_over_exactly(shape):
  inner = lrjax.linear_decay(0.1, 50)
  s = lrjax.warmup(inner, 8, init_value=0.01, warmup_shape=shape)
  got = values(s, np.arange(60))
  want = [0.01 + (0.1 - 0.01) * SHAPES[shape](t / 8) for t in range(8)]
  want += list(values(inner, np.arange(52)))
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert got[0] == np.float32(0.01) and got[8] == np.float32(0.1)


def test_exponential_warmup_is_geometric_and_needs_a_positive_start():
  s = lrjax.warmup(lrjax.constant(0.1), 4, init_value=0.001, warmup_shape="exponential")
  got = values(s, np.arange(6))
  np.testing.assert_allclose(got, [0.001, 0.001 * 10**0.5, 0.01, 0.01 * 10**0.5, 0.1, 0.1], 1e-6)
  assert got[0] == np.float32(0.001)
  with pytest.raises(ValueError, match=r"init_value must be > 0 for warmup_shape='exponential'"):
    lrjax.warmup(lrjax.constant(0.1), 4, warmup_shape="exponential")
  with pytest.raises(ValueError, match="init_value must be > 0"):
    lrjax.warmup_stable_decay(0.1, 2, 2, 2, warmup_shape="exponential")
  with pytest.raises(ValueError, match="warmup_shape must be one of"):
    lrjax.warmup(lrjax.constant(0.1), 4, warmup_shape="quadratic")


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt", "exponential"])
def test_wsd_warmup_shapes_keep_the_contract(shape):
  s = lrjax.warmup_stable_decay(0.1, 10, 5, 5, init_value=0.001, warmup_shape=shape)
  got = values(s, [0, 5, 9, 10, 14, 15, 20, 2**31 - 1])
  assert got[0] == np.float32(0.001) and got[3] == got[4] == np.float32(0.1)
  assert got[6] == got[7] == 0.0
  assert np.all(np.diff(got[:4]) > 0)
  assert lrjax.from_config(s.to_config()) == s
  # The shape is static: a new value of a leaf runs the same program, a new shape another.
  f = jax.jit(lambda sched, t: sched(t))
  f(s, 3)
  before = f._cache_size()
  f(s.replace(peak_value=0.2), 3)
  assert f._cache_size() == before


def test_stable_phase_inferred_from_the_total():
  s = lrjax.warmup_stable_decay(1.0, warmup_steps=2, decay_steps=4, total_steps=10)
  assert s == lrjax.warmup_stable_decay(1.0, 2, 4, 4)
  assert s.to_config()["stable_steps"] == 4 and "total_steps" not in s.to_config()
  # Given both, they must agree.
  assert lrjax.warmup_stable_decay(1.0, 2, 4, 4, total_steps=10) == s
  with pytest.raises(ValueError, match=r"stable_steps=5 disagrees with total_steps=10"):
    lrjax.warmup_stable_decay(1.0, 2, 5, 4, total_steps=10)


@pytest.mark.parametrize(
  "warmup_fraction, decay_fraction, expected",
  [(0.01, 0.2, (10, 790, 200)), (0.0, 1.0, (0, 0, 1000)), (0.0001, 0.0004, (1, 999 - 1, 1))],
)
def test_fractions_of_the_total(warmup_fraction, decay_fraction, expected):
  s = lrjax.warmup_stable_decay(
    0.1, total_steps=1000, warmup_fraction=warmup_fraction, decay_fraction=decay_fraction
  )
  assert (int(s.warmup_steps), int(s.stable_steps), int(s.decay_steps)) == expected


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(warmup_steps=2, decay_steps=4), "stable_steps is None: give stable_steps, or total"),
    (dict(warmup_steps=2, stable_steps=3), "decay_steps is None"),
    (dict(decay_fraction=0.2, stable_steps=3), "decay_fraction needs total_steps"),
    (dict(warmup_fraction=0.1, decay_steps=3, stable_steps=3), "warmup_fraction needs total_steps"),
    (dict(total_steps=10, warmup_steps=8, decay_steps=4), "total_steps must hold the warmup and"),
    (dict(total_steps=10, warmup_steps=1, warmup_fraction=0.1, decay_steps=2), "both given"),
    (dict(total_steps=10, decay_fraction=0.0), r"decay_fraction must be in \(0, 1\], got 0.0"),
    (dict(total_steps=10, decay_fraction=1.5), r"decay_fraction must be in \(0, 1\], got 1.5"),
    (dict(total_steps=10, decay_steps=2, warmup_fraction=1.0), r"warmup_fraction must be in \[0"),
    (dict(total_steps=10, decay_steps=2, warmup_fraction="a"), "warmup_fraction must be a number"),
    (dict(total_steps=0, decay_steps=2), "total_steps must be a positive integer, got 0"),
    (dict(total_steps=10, decay_steps=2, decay_shape="step"), "decay_shape must be one of"),
  ],
)
def test_bad_sizes_name_the_argument(kwargs, message):
  with pytest.raises(ValueError, match=message):
    lrjax.warmup_stable_decay(0.1, **kwargs)


def test_old_configs_without_a_warmup_shape_build_the_linear_warmup():
  cfg = lrjax.warmup_stable_decay(0.1, 2, 3, 4).to_config()
  del cfg["warmup_shape"]
  assert lrjax.from_config(cfg).warmup_shape == "linear"
  cfg = lrjax.warmup(lrjax.constant(0.1), 3).to_config()
  del cfg["warmup_shape"]
  assert lrjax.from_config(cfg) == lrjax.warmup(lrjax.constant(0.1), 3)


@pytest.mark.parametrize("decay_shape", ["linear", "cosine", "1-sqrt"])
def test_a_power_stable_phase_is_exact_at_its_ends_and_never_rises(decay_shape):
  s = lrjax.warmup_stable_decay(
    0.1, 10, 50, 20, end_value=0.001, decay_shape=decay_shape, stable_shape="power"
  )
  got = values(s, np.arange(0, 90))
  assert got[0] == 0.0 and got[10] == np.float32(0.1)
  assert np.all(got[80:] == np.float32(0.001))
  assert np.all(np.diff(got[10:]) <= 0)
  np.testing.assert_allclose(got[30], 0.1 / math.sqrt(1 + 20 / 10), rtol=1e-6)
  assert values(s, [2**31 - 1])[0] == np.float32(0.001)
  assert lrjax.from_config(s.to_config()) == s


def test_power_stable_phase_errors_name_the_argument():
  with pytest.raises(ValueError, match="give a positive stable_timescale"):
    lrjax.warmup_stable_decay(0.1, 0, 5, 5, stable_shape="power")
  with pytest.raises(ValueError, match="stable_power must be > 0, got 0"):
    lrjax.warmup_stable_decay(0.1, 2, 5, 5, stable_shape="power", stable_power=0.0)
  with pytest.raises(ValueError, match="stable_timescale must be a positive integer, got 0"):
    lrjax.warmup_stable_decay(0.1, 2, 5, 5, stable_shape="power", stable_timescale=0)
  with pytest.raises(ValueError, match="stable_shape must be one of"):
    lrjax.warmup_stable_decay(0.1, 2, 5, 5, stable_shape="rsqrt")
  # No timescale is needed, or kept, for the constant stable phase.
  assert lrjax.warmup_stable_decay(0.1, 0, 5, 5, stable_timescale=3).stable_timescale is None
