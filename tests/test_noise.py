"""`lrjax.noisy`: timm's noise rule, checked where the draws do not matter.

timm draws with torch's generator seeded by `seed + t`, which JAX cannot reproduce; lrjax's draws
are a hash of (seed, step). So against timm's recorded values (scripts/peers/timm_keras_extras.py)
only what does not depend on the draws is compared: outside the noise range the values are the
schedule's, inside they stay within the bound, and the noise's mean and spread over many steps
are timm's. The rest is the rule's own properties.
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
from lrjax.schedules.noise import symmetric_uniform

RECORD = json.loads(
  (Path(__file__).parent / "data" / "peers" / "timm_keras_extras.json").read_text()
)
CASES = {c["id"]: c for c in RECORD["cases"]}
NOISY = sorted(c for c in CASES if c.startswith("noise-") and not c.startswith("noise-draws"))
DRAWS = sorted(c for c in CASES if c.startswith("noise-draws"))


def _jit_traced(s, steps):
  return np.asarray(jax.jit(lambda sched, t: sched(t))(s, jnp.asarray(steps)))


def _noisy(case):
  s = case["settings"]
  base = lrjax.cosine_decay(s["peak"], s["t_initial"], end_value=s["lr_min"])
  return base, lrjax.noisy(
    base,
    noise_pct=s.get("noise_pct", 0.67),
    noise_std=s.get("noise_std", 1.0),
    seed=s.get("noise_seed", 42),
    noise_type=s["noise_type"],
    noise_range=s["noise_range_t"],
  )


def _inside(case, steps):
  r = case["settings"]["noise_range_t"]
  return (steps >= r[0]) & (steps < r[1]) if isinstance(r, list) else steps >= r


@pytest.mark.parametrize("case_id", NOISY)
def test_noise_follows_timm_s_rule_where_the_draws_do_not_matter(case_id):
  case = CASES[case_id]
  pct = case["settings"].get("noise_pct", 0.67)
  steps = np.arange(len(case["values"]))
  inside = _inside(case, steps)
  timm, timm_base = np.asarray(case["values"]), np.asarray(case["base"])
  base, s = _noisy(case)
  ours, ours_base = values(s, steps), values(base, steps)
  np.testing.assert_allclose(ours_base, timm_base, rtol=1e-5, atol=0)
  # Outside the range: the schedule's values, exactly (and timm's, as it has them).
  np.testing.assert_array_equal(ours[~inside], ours_base[~inside])
  np.testing.assert_array_equal(timm[~inside], timm_base[~inside])
  # Inside: within (1 - pct, 1 + pct) of the schedule, for timm and lrjax alike.
  for noisy, clean in ((timm, timm_base), (ours, ours_base)):
    ratio = noisy[inside] / clean[inside] - 1
    assert np.all(np.abs(ratio) < pct + 1e-6), ratio
    assert np.any(ratio != 0)
  # The draws are torch's in timm and lrjax's own hash here: equal nowhere.
  assert not np.any(np.isclose(ours[inside], timm[inside], rtol=1e-6, atol=0))


def _truncated_normal_std(pct, std):
  a = pct / std
  phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
  return std * math.sqrt(1 - 2 * a * phi / math.erf(a / math.sqrt(2)))


@pytest.mark.parametrize("case_id", DRAWS)
def test_noise_has_timm_s_distribution(case_id):
  case = CASES[case_id]
  st = case["settings"]
  pct, std, kind, n = st["noise_pct"], st["noise_std"], st["noise_type"], st["draws"]
  s = lrjax.noisy(lrjax.constant(1.0), noise_pct=pct, noise_std=std, noise_type=kind)
  noise = np.asarray(s(np.arange(n)), np.float64) - 1
  expected = _truncated_normal_std(pct, std) if kind == "normal" else pct / math.sqrt(3)
  for who, mean, spread in (
    ("lrjax", noise.mean(), noise.std()),
    ("timm", case["mean"], case["std"]),
  ):
    # 4 standard errors of the mean and of the spread over n draws.
    assert abs(mean) < 4 * expected / math.sqrt(n), (who, mean)
    assert abs(spread - expected) < 4 * expected / math.sqrt(2 * n), (who, spread, expected)
  assert np.abs(noise).max() < pct and case["largest"] < pct
  assert np.abs(noise).max() > 0.99 * pct  # the whole range is reached
  assert abs(np.corrcoef(noise[1:], noise[:-1])[0, 1]) < 4 / math.sqrt(n)  # steps independent


def test_noise_is_a_function_of_the_seed_and_the_step():
  steps = np.arange(100)
  # The draw itself is exact integer arithmetic: the same bits in any order, shape or program.
  u = np.asarray(symmetric_uniform(5, jnp.asarray(steps)))
  np.testing.assert_array_equal([float(symmetric_uniform(5, jnp.int32(t))) for t in steps], u)
  np.testing.assert_array_equal(np.asarray(symmetric_uniform(5, jnp.asarray(steps[::-1])))[::-1], u)
  draw = jax.jit(lambda seed, t: symmetric_uniform(seed, t))
  np.testing.assert_array_equal(draw(jnp.int32(5), jnp.asarray(steps)), u)
  # Values: the same step gives the same value in any order; other shapes and programs round
  # the schedule's own arithmetic alike within an ulp or two (as every schedule's do).
  s = lrjax.noisy(lrjax.cosine_decay(0.1, 100), seed=5)
  once = np.asarray(s(steps))
  np.testing.assert_array_equal(np.asarray(s(steps[::-1]))[::-1], once)
  np.testing.assert_array_equal(np.asarray(s(steps)), once)
  rebuilt = lrjax.noisy(lrjax.cosine_decay(0.1, 100), seed=5)
  np.testing.assert_array_equal(np.asarray(rebuilt(steps)), once)
  np.testing.assert_allclose([float(s(int(t))) for t in steps], once, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(s(steps.reshape(10, 10))).ravel(), once, rtol=1e-6)
  np.testing.assert_allclose(_jit_traced(s, steps), once, rtol=1e-6)
  other = np.asarray(lrjax.noisy(lrjax.cosine_decay(0.1, 100), seed=6)(steps))
  assert np.mean(np.isclose(other, once, rtol=1e-4)) < 0.05
  # vmapped over seeds: each seed's own values.
  seeds = jnp.asarray([5, 6], jnp.int32)
  batch = jax.vmap(lambda seed: lrjax.noisy(lrjax.cosine_decay(0.1, 100), seed=seed)(steps))(seeds)
  np.testing.assert_allclose(batch, np.stack([once, other]), rtol=1e-6)


def test_noise_draws_stay_what_they_are():
  # The hash is part of the schedule's definition: a change would move every noisy run.
  u = np.asarray(symmetric_uniform(42, jnp.arange(5, dtype=jnp.int32)), np.float64)
  odd = np.asarray([2218665, 4267789, 113939, -7569881, -395609])  # (2j + 1) - 2**24
  np.testing.assert_array_equal(u * 2**24, odd)
  s = lrjax.noisy(lrjax.constant(1.0))
  expected = [1.0824906826019287, 1.1591674089431763, 1.0042314529418945, 0.7150590419769287]
  np.testing.assert_allclose(np.asarray(s(np.arange(4))), expected, rtol=1e-6)


def test_noise_range_forms_and_config():
  base = lrjax.cosine_decay(0.1, 100)
  assert lrjax.noisy(base, noise_range=(10, 20)) == lrjax.noisy(base, noise_start=10, noise_end=20)
  assert lrjax.noisy(base, noise_range=[10, 20]) == lrjax.noisy(base, noise_start=10, noise_end=20)
  assert lrjax.noisy(base, noise_range=10) == lrjax.noisy(base, noise_start=10)
  for s in (lrjax.noisy(base, noise_range=(10, 20)), lrjax.noisy(base, noise_type="uniform")):
    again = lrjax.from_config(json.loads(json.dumps(s.to_config())))
    assert again == s and hash(again) == hash(s)
    np.testing.assert_array_equal(again(np.arange(120)), s(np.arange(120)))
  assert "noise_range" not in lrjax.noisy(base).to_config()
  # Values of the same kind share one program; a new seed or range compiles nothing.
  f = jax.jit(lambda sched, t: sched(t))
  for seed, start in ((1, 0), (2, 5), (3, 7)):
    f(lrjax.noisy(base, seed=seed, noise_start=start, noise_end=50), 9)
  assert f._cache_size() == 1


@functools.cache
def _base():
  return lrjax.cosine_decay(0.1, 100)


@pytest.mark.parametrize(
  "kwargs, name",
  [
    (dict(noise_pct=0.0), "noise_pct"),
    (dict(noise_pct=1.5), "noise_pct"),
    (dict(noise_std=0.0), "noise_std"),
    (dict(seed=-1), "seed"),
    (dict(seed=2.5), "seed"),
    (dict(noise_start=-1), "noise_start"),
    (dict(noise_start=20, noise_end=20), "noise_start"),
    (dict(noise_type="gaussian"), "noise_type"),
    (dict(noise_range=(1, 2, 3)), "noise_range"),
    (dict(noise_range=(1, 2), noise_end=5), "noise_range"),
    (dict(noise_range=(1, 2), noise_start=5), "noise_range"),
    (dict(noise_range=(5, 2)), "noise_start"),
  ],
)
def test_bad_noise_arguments_are_refused_by_name(kwargs, name):
  with pytest.raises(ValueError, match=name):
    lrjax.noisy(_base(), **kwargs)
  with pytest.raises(ValueError, match="schedule"):
    lrjax.noisy(0.1)


def test_noise_gradients_are_finite():
  s = lrjax.noisy(lrjax.cosine_decay(0.1, 100), noise_pct=1.0, noise_std=0.01)
  leaves, treedef = jax.tree.flatten(s)
  floats = [i for i, x in enumerate(leaves) if x.dtype == np.float32]

  def at(fl, step):
    new = list(leaves)
    for i, x in zip(floats, fl):
      new[i] = x
    return jax.tree.unflatten(treedef, new)(step)

  grad = jax.jit(jax.grad(at))
  for step in range(0, 2000, 7):
    for g in grad([jnp.asarray(leaves[i]) for i in floats], jnp.int32(step)):
      assert np.all(np.isfinite(np.asarray(g))), step
