"""Piecewise schedules: boundary conventions, parity with optax and torch, vmap over boundaries."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_values import optax_values, values

from lrjax.schedules.piecewise import multi_step, piecewise_constant, piecewise_linear

I32_MAX = 2**31 - 1


@pytest.mark.parametrize(
  "schedule, steps, expected",
  [
    # Ran (boundary 5, x0.1, t=3..7): optax = torch MultiStepLR = big_vision switch AT 5.
    (piecewise_constant([5], [1.0, 0.1]), range(3, 8), [1, 1, 0.1, 0.1, 0.1]),
    (multi_step(1.0, [5], 0.1), range(3, 8), [1, 1, 0.1, 0.1, 0.1]),
    # Keras PiecewiseConstantDecay([5], ...) is boundary 6 here; timm MultiStep([5]) is 4.
    (piecewise_constant([6], [1.0, 0.1]), range(3, 8), [1, 1, 1, 0.1, 0.1]),
    (multi_step(1.0, [4], 0.1), range(3, 8), [1, 0.1, 0.1, 0.1, 0.1]),
    (piecewise_constant([0, 2], [9.0, 1.0, 2.0]), [0, 1, 2, 10**6], [1, 1, 2, 2]),
    (piecewise_constant([], [0.3]), [0, 10**6], [0.3, 0.3]),
    (
      piecewise_constant([10, 20, 30], [0.1, 0.2, 0.0, 0.05]),
      [0, 9, 10, 19, 20, 29, 30, 31, 10**9],
      [0.1, 0.1, 0.2, 0.2, 0, 0, 0.05, 0.05, 0.05],
    ),
    # Ran every 3, x0.5 (optax staircase = torch StepLR) as milestones.
    (multi_step(1.0, [3, 6], 0.5), range(8), [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]),
    # torch: a repeated milestone multiplies twice.
    (multi_step(1.0, [2, 2, 4], 0.5), [0, 1, 2, 3, 4, 100], [1, 1, 0.25, 0.25, 0.125, 0.125]),
    (multi_step(0.1, [], 0.5), [0, 10**6], [0.1, 0.1]),
    (multi_step(1.0, [0], 2.0), [0, 1], [2, 2]),
    (
      piecewise_linear([0, 10, 100], [0.0, 1.0, 0.0]),
      [0, 5, 9, 10, 55, 99, 100, 101, 10**6],
      [0, 0.5, 0.9, 1, 0.5, 1 / 90, 0, 0, 0],
    ),
    (piecewise_linear([5, 15], [0.2, 0.4]), [0, 5, 10, 15, 20], [0.2, 0.2, 0.3, 0.4, 0.4]),
    (piecewise_linear([7], [0.7]), [0, 7, 100], [0.7, 0.7, 0.7]),
    (
      piecewise_linear([2, 4, 8], [1.0, 0.1, 0.2], "cosine"),
      [0, 2, 3, 4, 6, 8, 9],
      [1, 1, 0.55, 0.1, 0.15, 0.2, 0.2],
    ),
  ],
)
def test_formula_table(schedule, steps, expected):
  np.testing.assert_allclose(values(schedule, list(steps)), expected, rtol=1e-6, atol=1e-7)


def test_points_are_hit_exactly_and_large_steps_hold_the_last_value():
  b, v = [0, 3, 17, 1000, 2**30], [0.3, 0.01, 0.7, 0.123, 0.02]
  for kind in ("linear", "cosine"):
    s = piecewise_linear(b, v, kind)
    np.testing.assert_array_equal(values(s, b), np.float32(v))
    for step in [np.int32(I32_MAX), jnp.int32(I32_MAX), 2**31, 2**62]:
      assert float(s(step)) == np.float32(0.02)
  s = piecewise_constant([10, 2**30], [0.3, 0.2, 0.1])
  np.testing.assert_array_equal(values(s, [2**30 - 1, 2**30, I32_MAX]), np.float32([0.2, 0.1, 0.1]))
  assert float(s(2**62)) == float(multi_step(0.1, [1], 1.0)(2**62)) == np.float32(0.1)
  assert float(multi_step(1.0, [10, 2**30], 0.5)(2**62)) == 0.25


@pytest.mark.parametrize(
  "init, scales",
  [(1.0, {5: 0.1}), (0.1, {10: 0.5, 20: 0.2, 35: 3.0}), (0.3, {0: 0.5, 1: 0.5, 40: 0.0})],
)
def test_piecewise_constant_matches_optax(init, scales):
  bounds = sorted(scales)
  vals = init * np.cumprod([1.0] + [scales[k] for k in bounds])
  theirs = optax.piecewise_constant_schedule(init, scales)
  steps = np.arange(0, 50)
  want = optax_values(theirs, steps)
  np.testing.assert_allclose(values(piecewise_constant(bounds, vals), steps), want, rtol=1e-6)
  # multi_step is the same schedule when every scale is gamma.
  gamma = 0.3
  same = optax.piecewise_constant_schedule(init, {k: gamma for k in bounds})
  want = optax_values(same, steps)
  np.testing.assert_allclose(values(multi_step(init, bounds, gamma), steps), want, rtol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize(
  "init, scales", [(1.0, {4: 0.1, 8: 0.1}), (0.2, {10: 3.0, 25: 0.5, 26: 0.01, 60: 1.0})]
)
def test_piecewise_linear_matches_optax_interpolate(kind, init, scales):
  bounds = sorted(scales)
  vals = init * np.cumprod([1.0] + [scales[k] for k in bounds])
  theirs = optax.piecewise_interpolate_schedule(kind, init, scales)
  steps = np.arange(0, 70)
  want = optax_values(theirs, steps)
  ours = values(piecewise_linear([0, *bounds], vals, kind), steps)
  np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-9)


def test_optax_interpolate_reference_values():
  # Ran: optax linear {4: .1, 8: .01} at t=0,2,4,5,6,8,10,12 (cumulative values .1 -> .001).
  s = piecewise_linear([0, 4, 8], [1.0, 0.1, 0.001])
  np.testing.assert_allclose(
    values(s, [0, 2, 4, 5, 6, 8, 10, 12]),
    [1, 0.55, 0.1, 0.0752, 0.0505, 0.001, 0.001, 0.001],
    rtol=2e-3,
  )


@st.composite
def pieces(draw):
  n = draw(st.sampled_from([1, 3]))  # few shapes: each is a new compiled program
  b = sorted(draw(st.sets(st.integers(0, 300), min_size=n, max_size=n)))
  # float32 subnormals are left out: XLA:CPU flushes them to 0.
  value = st.floats(0, 2, width=32, allow_subnormal=False)
  v = draw(st.lists(value, min_size=n + 1, max_size=n + 1))
  return b, v


STEPS = np.array([0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 299, 300, 301, 10**6], np.int32)


@settings(max_examples=12, deadline=None)
@given(bv=pieces(), kind=st.sampled_from(["constant", "linear", "cosine", "multi"]))
def test_properties(bv, kind):
  b, v = bv
  if kind == "constant":
    s, lo, hi = piecewise_constant(b, v), min(v), max(v)
  elif kind == "multi":
    gamma = v[1] / 2 + 0.1
    s = multi_step(v[0], b, gamma)
    ends = [v[0], v[0] * np.float32(gamma) ** len(b)]
    lo, hi = min(ends) * (1 - 1e-6), max(ends) * (1 + 1e-6)
  else:
    s, lo, hi = piecewise_linear(b, v[1:], kind), min(v[1:]), max(v[1:])
  out = values(s, STEPS)
  assert np.all(out >= np.float32(lo)) and np.all(out <= np.float32(hi)), (out, lo, hi)
  np.testing.assert_allclose(np.asarray(s(STEPS)), out, rtol=1e-6, atol=1e-7 * hi)
  looped = [float(s(int(t))) for t in STEPS[::4]]
  np.testing.assert_allclose(out[::4], looped, rtol=1e-6, atol=1e-7 * hi)


def test_vmap_over_boundaries():
  vals = jnp.array([0.3, 0.2, 0.1])
  b = jnp.array([[5, 10], [8, 10], [0, 1]])
  out = jax.vmap(lambda b: piecewise_constant(b, vals)(jnp.array([0, 7, 9, 10])))(b)
  np.testing.assert_allclose(
    out, [[0.3, 0.2, 0.2, 0.1], [0.3, 0.3, 0.2, 0.1], [0.2, 0.1, 0.1, 0.1]]
  )
  out = jax.vmap(lambda m, g: multi_step(1.0, m, g)(7))(b, jnp.array([0.5, 0.1, 0.2]))
  np.testing.assert_allclose(out, [0.5, 1.0, 0.04], rtol=1e-6)
  f = jax.jit(jax.vmap(lambda b: piecewise_linear(b, vals[:2], "linear")(jnp.array([0, 5, 7, 10]))))
  np.testing.assert_allclose(
    f(b), [[0.3, 0.3, 0.26, 0.2], [0.3, 0.3, 0.3, 0.2], [0.3, 0.2, 0.2, 0.2]], rtol=1e-6
  )


@pytest.mark.parametrize(
  "build, args",
  [
    (lambda v: piecewise_constant([5, 10], v), [0.3, 0.0, 0.1]),
    (lambda v: piecewise_linear([5, 10, 20], v), [0.3, 0.0, 0.1]),
    (lambda v: piecewise_linear([5, 10, 20], v, "cosine"), [0.0, 0.0, 0.0]),
    (lambda v: multi_step(v[0], [5, 10], v[1]), [0.1, 0.5]),
    (lambda v: multi_step(v[0], [0, 5], v[1]), [0.0, 1.0]),
  ],
)
def test_gradients_are_finite_at_the_edges(build, args):
  grad = jax.jit(jax.grad(lambda v, t: build(v)(t)))
  for t in [0, 4, 5, 6, 10, 20, 21, I32_MAX]:
    g = grad(jnp.asarray(args, jnp.float32), jnp.int32(t))
    assert np.all(np.isfinite(np.asarray(g))), (t, g)
  # d lr / d v_i is the interpolation weight: 1 at a point, split between neighbours inside.
  g = jax.grad(lambda v: piecewise_linear([0, 10], v)(4))(jnp.array([1.0, 0.0]))
  np.testing.assert_allclose(g, [0.6, 0.4], rtol=1e-6)


@pytest.mark.parametrize(
  "factory, kwargs, name",
  [
    (piecewise_constant, dict(boundaries=[5, 3], values=[1, 2, 3]), "boundaries"),
    (piecewise_constant, dict(boundaries=[5, 5], values=[1, 2, 3]), "boundaries"),
    (piecewise_constant, dict(boundaries=[-1], values=[1, 2]), "boundaries"),
    (piecewise_constant, dict(boundaries=[2.5], values=[1, 2]), "boundaries"),
    (piecewise_constant, dict(boundaries=[[1], [2]], values=[1, 2, 3]), "boundaries"),
    (piecewise_constant, dict(boundaries=[5], values=[1.0]), "values"),
    (piecewise_constant, dict(boundaries=[5], values=[1.0, 2.0, 3.0]), "values"),
    (piecewise_constant, dict(boundaries=[5], values=[1.0, -2.0]), "values"),
    (piecewise_constant, dict(boundaries=[5], values=[1.0, float("nan")]), "values"),
    (piecewise_constant, dict(boundaries=[], values=0.1), "values"),
    (multi_step, dict(init_value=0.1, milestones=[5, 3]), "milestones"),
    (multi_step, dict(init_value=0.1, milestones=[-5]), "milestones"),
    (multi_step, dict(init_value=0.1, milestones=[5], gamma=0.0), "gamma"),
    (multi_step, dict(init_value=0.1, milestones=[5], gamma=-0.5), "gamma"),
    (multi_step, dict(init_value=-0.1, milestones=[5]), "init_value"),
    (piecewise_linear, dict(boundaries=[], values=[]), "boundaries"),
    (piecewise_linear, dict(boundaries=[3, 1], values=[1, 2]), "boundaries"),
    (piecewise_linear, dict(boundaries=[1, 1], values=[1, 2]), "boundaries"),
    (piecewise_linear, dict(boundaries=[1, 2], values=[1]), "values"),
    (piecewise_linear, dict(boundaries=[1, 2], values=[1, 2, 3]), "values"),
    (piecewise_linear, dict(boundaries=[1, 2], values=[1, float("inf")]), "values"),
    (piecewise_linear, dict(boundaries=[1, 2], values=[1, 2], interpolation="cubic"), "interp"),
  ],
)
def test_validation_errors_name_the_argument(factory, kwargs, name):
  with pytest.raises(ValueError, match=name):
    factory(**kwargs)
