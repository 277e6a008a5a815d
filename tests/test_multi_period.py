"""Tests of lrjax.schedules.multi_period: wsd_s, and the forked (pre-decay) variant it equals."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from schedule_values import values
from test_train import smoke_config

import lrjax
from lrjax.compare import plan
from lrjax.config import study as study_lib
from lrjax.schedules.base import INT32_MAX
from lrjax.schedules.multi_period import wsd_s
from lrjax.train import build

SHAPES = ("1-sqrt", "linear", "cosine")


def decayed(peak, end, p, shape):
  """end + (peak - end) f(p), in float64."""
  f = {"linear": 1 - p, "1-sqrt": 1 - np.sqrt(p), "cosine": 0.5 * (1 + np.cos(np.pi * p))}[shape]
  return end + (peak - end) * f


@pytest.mark.parametrize(
  "kwargs, steps, want",
  [
    # W = 2; decays 6..9 before P = 10 and 16..19 before P = 20, back at the peak at 10.
    (
      dict(decay_points=[10, 20], decay_steps=4, decay_shape="linear"),
      [0, 1, 2, 5, 6, 7, 8, 9, 10, 15, 16, 17, 19, 20, 21],
      [0, 0.5, 1, 1, 1, 0.75, 0.5, 0.25, 1, 1, 1, 0.75, 0.25, 0, 0],
    ),
    # One decay per point: 2 steps before 10, 5 before 25, 1 before 26.
    (
      dict(decay_points=[10, 25, 26], decay_steps=[2, 5, 1], decay_shape="linear", end_value=0.2),
      [7, 8, 9, 10, 19, 20, 21, 24, 25, 26, 27],
      [1, 1, 0.6, 1, 1, 1, 0.84, 0.36, 1, 0.2, 0.2],
    ),
    # 1-sqrt over 4 steps: 1 - sqrt(p) at p = 1/4, 1/2, 3/4.
    (
      dict(decay_points=[10, 20], decay_steps=4),
      [6, 7, 8, 9, 10, 17, 18, 19, 20],
      [1, 0.5, 1 - np.sqrt(0.5), 1 - np.sqrt(0.75), 1, 0.5, 1 - np.sqrt(0.5), 1 - np.sqrt(0.75), 0],
    ),
    # Cosine, end 0.1: 0.1 + 0.9 (1 + cos(pi p)) / 2.
    (
      dict(decay_points=[12, 24], decay_steps=4, decay_shape="cosine", end_value=0.1),
      [8, 9, 10, 11, 12, 22, 24],
      [1, decayed(1, 0.1, 0.25, "cosine"), 0.55, decayed(1, 0.1, 0.75, "cosine"), 1, 0.55, 0.1],
    ),
    # A decay as long as its period: back at the peak for the one step at each point.
    (
      dict(decay_points=[4, 8, 12], decay_steps=[2, 4, 4], decay_shape="linear"),
      [3, 4, 5, 6, 7, 8, 9, 11, 12],
      [0.5, 1, 0.75, 0.5, 0.25, 1, 0.75, 0.25, 0],
    ),
  ],
)
def test_hand_computed_values(kwargs, steps, want):
  s = wsd_s(1.0, 2, **kwargs)
  np.testing.assert_allclose(values(s, steps), want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(s(np.asarray(steps)), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_values_at_every_edge(shape):
  peak, end, init, w = np.float32(0.3), np.float32(0.003), np.float32(0.001), 5
  points, lengths = [20, 50, 60, 100], [6, 10, 10, 30]
  s = wsd_s(peak, w, points, lengths, end_value=end, init_value=init, decay_shape=shape)
  starts = [p - d for p, d in zip(points, lengths)]
  edges = [0, w, *starts, *points[:-1], points[-1], points[-1] + 1, 10**6, INT32_MAX]
  want = [init, peak, *[peak] * len(starts), *[peak] * (len(points) - 1), end, end, end, end]
  np.testing.assert_array_equal(values(s, edges), np.float32(want))
  np.testing.assert_array_equal(s(np.asarray(edges)), np.float32(want))
  for step in (INT32_MAX, jnp.int32(INT32_MAX), 2**40, 2**62):
    assert float(s(step)) == end
  # The last update of each decay, one step before its point: f((D - 1) / D).
  last = [decayed(peak, end, (d - 1) / d, shape) for d in lengths]
  np.testing.assert_allclose(values(s, [p - 1 for p in points]), last, rtol=2e-6)
  # Below the warmup's end, the warmup alone.
  np.testing.assert_allclose(values(s, [w - 1]), [init + (peak - init) * (w - 1) / w], rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("warmup_shape", ["linear", "cosine", "1-sqrt", "exponential"])
def test_one_point_is_warmup_stable_decay_at_every_step(shape, warmup_shape):
  w, p, d = 7, 40, 12
  kw = dict(end_value=0.01, init_value=0.002, decay_shape=shape, warmup_shape=warmup_shape)
  s = wsd_s(0.2, w, [p], d, **kw)
  ref = lrjax.warmup_stable_decay(0.2, w, p - w - d, d, **kw)
  steps = np.arange(p + 5)
  np.testing.assert_array_equal(values(s, steps), values(ref, steps))
  np.testing.assert_array_equal(s(steps), ref(steps))


def test_periods_are_the_same_decay_when_they_are_the_same_length():
  s = wsd_s(1.0, 0, [30, 60, 90], 10, decay_shape="cosine")
  got = values(s, np.arange(90)).reshape(3, 30)
  np.testing.assert_array_equal(got[0], got[1])
  np.testing.assert_array_equal(got[1], got[2])


def test_decay_fraction_of_each_period():
  # Periods 10, 20, 70; a fraction of each, rounded, at least one step.
  s = wsd_s(1.0, 2, [10, 30, 100], decay_fraction=0.25)
  assert s.decay_steps.tolist() == [2, 5, 18]  # 2.5 -> 2, 5, 17.5 -> 18 (to even)
  per_point = wsd_s(1.0, 2, [10, 30, 100], decay_fraction=[0.5, 0.01, 1.0])
  assert per_point.decay_steps.tolist() == [5, 1, 70]
  again = wsd_s(1.0, 2, [10, 30, 100], [2, 5, 18])
  assert again == s and lrjax.from_config(s.to_config()) == s
  assert s.to_config()["decay_steps"] == [2, 5, 18] and "decay_fraction" not in s.to_config()


def test_scalar_decay_steps_stay_scalar_through_replace_and_config():
  s = wsd_s(0.1, 10, [40, 70, 100], 10)
  assert np.ndim(s.decay_steps) == 0 and s.to_config()["decay_steps"] == 10
  longer = s.replace(decay_points=[40, 70, 100, 130])
  assert longer.cycle_ends(130) == (40, 70, 100, 130)
  assert float(longer(129)) < float(longer(120)) == np.float32(0.1)


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (
      dict(decay_points=[30, 20], decay_steps=5),
      r"decay_points must be strictly increasing.*30, 20",
    ),
    (
      dict(decay_points=[20, 20], decay_steps=5),
      r"decay_points must be strictly increasing.*20, 20",
    ),
    (dict(decay_points=[], decay_steps=5), r"decay_points must list at least one step, got \[\]"),
    (dict(decay_points=[10, -5], decay_steps=5), r"decay_points"),
    (dict(decay_points=[10.5], decay_steps=5), r"decay_points must be an integer.*10.5"),
    (dict(decay_points=20, decay_steps=5), r"decay_points must be a 1-D sequence.*20"),
    (dict(decay_points=[2**31], decay_steps=5), r"decay_points must be at most 2\*\*31 - 1"),
    (dict(decay_points=[20, 30], decay_steps=11), r"decay_steps\[1\] = 11 is longer .* 30 - 20"),
    (dict(decay_points=[20, 30], decay_steps=[5, 11]), r"decay_steps\[1\] = 11 is longer"),
    (dict(decay_points=[20, 30], decay_steps=25), r"decay_steps\[0\] = 25 is longer .* 20"),
    (dict(decay_points=[20], decay_steps=17), r"first decay .* warmup_steps \+ decay_steps\[0\]"),
    (dict(decay_points=[20, 30], decay_steps=0), r"decay_steps must be a positive integer, got 0"),
    (dict(decay_points=[20, 30], decay_steps=[5]), r"decay_steps must have len\(decay_points\)"),
    (dict(decay_points=[20, 30], decay_steps=[[5, 5]]), r"decay_steps must be an integer or a 1-D"),
    (dict(decay_points=[20, 30], decay_steps=2.5), r"decay_steps must be an integer number"),
    (dict(decay_points=[20, 30]), r"give one of decay_steps and decay_fraction"),
    (dict(decay_points=[20], decay_steps=5, decay_fraction=0.2), r"give one of decay_steps"),
    (dict(decay_points=[20, 30], decay_fraction=0), r"decay_fraction must be in \(0, 1\], got 0"),
    (dict(decay_points=[20, 30], decay_fraction=1.5), r"decay_fraction must be in \(0, 1\].*1.5"),
    (dict(decay_points=[20, 30], decay_fraction=-0.1), r"decay_fraction must be in \(0, 1\]"),
    (dict(decay_points=[20, 30], decay_fraction=float("nan")), r"decay_fraction must be finite"),
    (dict(decay_points=[20, 30], decay_fraction=[0.2]), r"decay_fraction must have len"),
    (dict(decay_points=[20], decay_fraction=1.0), r"first decay must start after the warmup"),
    (dict(decay_points=[20], decay_steps=5, decay_shape="exp"), r"decay_shape must be one of"),
    (dict(decay_points=[20], decay_steps=5, warmup_shape="exponential"), r"init_value must be > 0"),
    (dict(decay_points=[20], decay_steps=5, end_value=-0.1), r"end_value must be a finite"),
  ],
)
def test_bad_inputs_name_the_argument_and_value(kwargs, match):
  with pytest.raises(ValueError, match=match):
    wsd_s(1.0, 4, **kwargs)


def test_bad_scalars_name_the_argument():
  with pytest.raises(ValueError, match=r"warmup_steps must be an integer >= 0, got -1"):
    wsd_s(1.0, -1, [20], 5)
  with pytest.raises(ValueError, match=r"peak_value must be finite, got inf"):
    wsd_s(float("inf"), 1, [20], 5)


def test_traced_values_under_jit_and_vmap():
  steps = jnp.arange(0, 64)

  @jax.jit
  def curve(peak, w, d):
    return wsd_s(peak, w, [30, 60], d, decay_shape="linear")(steps)

  want = values(wsd_s(0.5, 3, [30, 60], 6, decay_shape="linear"), steps)
  np.testing.assert_array_equal(curve(0.5, 3, 6), want)
  got = jax.vmap(lambda d: wsd_s(1.0, 0, [30, 60], d)(steps))(jnp.asarray([3, 10]))
  for d, row in zip([3, 10], np.asarray(got)):
    np.testing.assert_array_equal(row, values(wsd_s(1.0, 0, [30, 60], d), steps))
  with pytest.raises(ValueError, match="concrete decay_points"):
    jax.jit(lambda p: wsd_s(1.0, 0, p, 5).cycle_ends(100))(jnp.asarray([30, 60]))


# ---------------------------------------------------------------- the forked variant

FORKS = [
  {"peak_value": 0.1, "warmup_epochs": 1, "cooldown": 0.25, "decay_shape": "1-sqrt"},
  {"peak_value": 0.05, "cooldown": 0.2, "decay_shape": "linear", "end_value": 0.001},
]


def fork_study(spec):
  config = smoke_config(num_epochs=8)
  config.dataset = "synthetic:16x16x3:320:64:4"  # 10 steps an epoch at batch 32
  config.study = ml_collections.ConfigDict()
  config.study.arms = {"wsd": {"wsd_fork": spec}}
  config.study.seeds = [0]
  config.study.budgets = [2, 4, 8]
  return study_lib.parse(config)


def in_steps(run):
  """The schedule a run of the study trains with, every duration in steps."""
  return build.schedule_in_steps(run, build.length(run))


@pytest.mark.parametrize("spec", FORKS)
def test_a_forked_budget_trains_with_wsd_s_of_its_one_point(spec):
  study = fork_study(spec)
  trunk = in_steps(study.trunk("wsd", 0))
  per_epoch = build.length(study.run("wsd", 0, 2)).steps_per_epoch
  warmup = spec.get("warmup_epochs", 0) * per_epoch
  shape = dict(end_value=spec.get("end_value", 0.0), decay_shape=spec["decay_shape"])
  points, lengths = [], []
  for budget in study.budgets:
    run = study.run("wsd", 0, budget)
    point = budget * per_epoch
    alone = wsd_s(spec["peak_value"], warmup, [point], decay_fraction=spec["cooldown"], **shape)
    steps = np.arange(point + 5)
    np.testing.assert_array_equal(values(in_steps(run), steps), values(alone, steps))
    # Its cooldown starts where the fork resumes from the trunk, which it equals until then.
    start = point - int(alone.decay_steps[0])
    assert start == plan.fork_start(run)
    np.testing.assert_array_equal(values(alone, np.arange(start)), values(trunk, np.arange(start)))
    points.append(point)
    lengths.append(int(alone.decay_steps[0]))
  # WSD-S over all the budgets: before each decay starts (from the previous point on), the trunk.
  multi = wsd_s(spec["peak_value"], warmup, points, lengths, **shape)
  for i, (point, length) in enumerate(zip(points, lengths)):
    steps = np.arange(points[i - 1] if i else 0, point - length)
    np.testing.assert_array_equal(values(multi, steps), values(trunk, steps))
    after_warmup = steps[steps >= warmup]
    assert np.all(values(multi, after_warmup) == np.float32(spec["peak_value"]))
  assert multi.cycle_ends(points[-1]) == tuple(points)
