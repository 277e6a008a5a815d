import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrjax
from lrjax.schedules import arithmetic, compose
from lrjax.schedules.base import INT32_MAX, Schedule, schedule_class
from lrjax.schedules.decay import (
  Constant,
  constant,
  exponential_decay,
  linear_decay,
  step_decay,
)
from lrjax.schedules.formulas import fraction_done

# One namespace for the combinators of both modules.
c = type("Combinators", (), {**vars(compose), **vars(arithmetic)})

_jit_call = jax.jit(lambda s, t: s(t))


@schedule_class
class _Cosine(Schedule):
  """optax.cosine_decay_schedule's formula, as a child for the warmup parity test."""

  init_value: object
  decay_steps: object
  alpha: object

  def _value(self, t):
    cos = 0.5 * (1 + jnp.cos(jnp.pi * fraction_done(t, self.decay_steps)))
    return self.init_value * ((1 - self.alpha) * cos + self.alpha)


def _cosine(init_value, decay_steps, alpha=0.0):
  return _Cosine(np.float32(init_value), np.int32(decay_steps), np.float32(alpha))


def _values(s, steps):
  n = len(steps)
  # One padded shape for every table keeps JAX's per-shape compilations few.
  padded = np.zeros(max(8, n), np.int64)
  padded[:n] = steps
  eager = np.asarray(s(padded))
  # Fused under jit, XLA may round the last bit differently.
  np.testing.assert_allclose(_jit_call(s, jnp.asarray(padded, jnp.int32)), eager, rtol=1e-6)
  return eager[:n]


LIN = linear_decay(1.0, 10)  # 1 - t/10, then 0
REP = c.repeat(linear_decay(1.0, 8), 8)  # periodic, for the fold tests

# (schedule, steps, expected values): edges at 0, boundaries, boundary - 1 and far beyond.
EDGES = [
  (c.join([constant(1.0), LIN], [5]), [0, 4, 5, 10, 15, 10**6], [1, 1, 1, 0.5, 0, 0]),
  (
    c.join([constant(3.0), constant(2.0), constant(1.0)], [2, 2]),
    [0, 1, 2, 3],
    [3, 3, 1, 1],
  ),
  (c.join([LIN], []), [0, 5, 10], [1, 0.5, 0]),
  (c.warmup(LIN, 4, 0.2), [0, 1, 2, 3, 4, 9, 14, 10**6], [0.2, 0.4, 0.6, 0.8, 1, 0.5, 0, 0]),
  (c.warmup(LIN, 0), [0, 5, 10], [1, 0.5, 0]),
  (c.per_epoch(LIN, 3), [0, 2, 3, 5, 15, 29, 30, 10**6], [1, 1, 0.9, 0.9, 0.5, 0.1, 0, 0]),
  (c.repeat(LIN, 5), [0, 4, 5, 9, 10, 10**6 + 2], [1, 0.6, 1, 0.6, 1, 0.8]),
  (c.shift(LIN, 3), [0, 3, 4, 13, 10**6], [1, 1, 0.9, 0, 0]),
  (c.scale(LIN, 0.5), [0, 5, 10], [0.5, 0.25, 0]),
  (c.add(LIN, 0.25), [0, 5, 10], [1.25, 0.75, 0.25]),
  (c.multiply(LIN, step_decay(1.0, 0.5, 5)), [0, 4, 5, 10], [1, 0.6, 0.25, 0]),
  (c.clip(LIN, 0.2, 0.7), [0, 3, 5, 8, 10], [0.7, 0.7, 0.5, 0.2, 0.2]),
  (c.clip(LIN, 0.3), [0, 10], [1, 0.3]),
]


@pytest.mark.parametrize("s,steps,expected", EDGES, ids=lambda x: type(x).__name__)
def test_edge_values(s, steps, expected):
  np.testing.assert_allclose(_values(s, steps), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("s,steps,expected", EDGES, ids=lambda x: type(x).__name__)
def test_int32_max_does_not_overflow(s, steps, expected):
  far = float(s(10**6 * 2000 if isinstance(s, c.Repeat) else 10**6))
  top = s(jnp.int32(INT32_MAX))
  assert np.isfinite(top) and float(top) == float(s(INT32_MAX))
  if not isinstance(s, c.Repeat):
    assert float(top) == far


FOLDS = [
  c.repeat(linear_decay(1.0, 7), 7),
  c.per_epoch(REP, 1000),
  c.per_epoch(REP, 3),
  c.join([constant(1.0), REP], [5]),
  c.warmup(REP, 3, 0.1),
  c.shift(REP, 11),
  c.scale(REP, 0.5),
  c.clip(REP, 0.2, 0.9),
  c.add(REP, 0.25),
  0.5 * REP + 0.01,
  c.multiply(constant(0.5), REP),
  c.add(REP, c.scale(REP, 2.0)),
  c.repeat(c.per_epoch(REP, 10), 1000),
]


def _reference_step(s, step):
  """An int32 step with the same value, computed from the structure by hand."""
  if isinstance(s, c.Repeat):
    return _reference_step(s.schedule, step % int(s.period))
  if isinstance(s, c.PerEpoch):
    spe = int(s.steps_per_epoch)
    return spe * _reference_step(s.schedule, step // spe) + step % spe
  if isinstance(s, c.Join):
    b = int(s.boundaries[-1])
    return b + _reference_step(s.schedules[-1], step - b)
  if isinstance(s, (c.Warmup, c.Shift)):
    o = int(s.warmup_steps if isinstance(s, c.Warmup) else s.offset)
    return o + _reference_step(s.schedule, step - o)
  if isinstance(s, (c.Scale, c.Clip)):
    return _reference_step(s.schedule, step)
  if isinstance(s, (c.Add, c.Multiply)):
    parts = [x for x in (s.a, s.b) if not isinstance(x, Constant)]
    return _reference_step(parts[0], step)
  assert isinstance(s, Constant) or step <= INT32_MAX, s
  return min(step, INT32_MAX)


@pytest.mark.parametrize("s", FOLDS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("step", [2**62, 2**62 + 5, 2**31, 2**40 + 123])
def test_fold_matches_equivalent_small_step(s, step):
  small = _reference_step(s, step)
  assert small <= INT32_MAX
  assert float(s(step)) == float(s(small))
  # Vector and scalar evaluation may differ in the last bit (XLA's division).
  np.testing.assert_allclose(s(np.array([3, step])), [s(3), s(small)], rtol=1e-6)


def test_add_of_differently_periodic_children_saturates():
  s = c.add(c.repeat(LIN, 7), c.repeat(LIN, 5))
  assert float(s(2**62 + 1)) == float(s(INT32_MAX))
  # Where both phases happen to agree (2**62 = 4 mod 7 and mod 5) the fold is still exact.
  assert float(s(2**62)) == float(s(4))


def test_join_matches_optax():
  ours = c.join(
    [linear_decay(0.0, 10, end_value=0.1), constant(0.05), exponential_decay(0.1, 7, 0.5)],
    [10, 25],
  )
  theirs = optax.join_schedules(
    [
      optax.linear_schedule(0.0, 0.1, 10),
      optax.constant_schedule(0.05),
      optax.exponential_decay(0.1, 7, 0.5),
    ],
    [10, 25],
  )
  t = jnp.arange(0, 80)
  np.testing.assert_allclose(_values(ours, t), theirs(t), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("init,warm", [(0.0, 10), (0.02, 1)])
def test_warmup_matches_optax(init, warm):
  t = jnp.arange(0, 120)
  cos = c.warmup(_cosine(0.1, 100 - warm, alpha=0.1), warm, init)
  ref = optax.warmup_cosine_decay_schedule(init, 0.1, warm, 100, end_value=0.01)
  np.testing.assert_allclose(_values(cos, t), ref(t), rtol=1e-5, atol=1e-7)
  exp = c.warmup(exponential_decay(0.1, 9, 0.7, transition_begin=4, end_value=0.02), warm, init)
  ref = optax.warmup_exponential_decay_schedule(init, 0.1, warm, 9, 0.7, 4, end_value=0.02)
  np.testing.assert_allclose(_values(exp, t), ref(t), rtol=1e-5, atol=1e-7)
  const = c.warmup(constant(0.1), warm, init)
  ref = optax.warmup_constant_schedule(init, 0.1, warm)
  np.testing.assert_allclose(_values(const, t), ref(t), rtol=1e-6, atol=1e-8)


def test_operators_build_compositions():
  s, u = linear_decay(0.1, 100), step_decay(1.0, 0.5, 25)
  combo = 0.5 * s + 0.01
  assert isinstance(combo, c.Add) and isinstance(combo.a, c.Scale)
  assert combo == c.add(c.scale(s, 0.5), 0.01)
  assert isinstance(s * u, c.Multiply) and isinstance(0.01 + s, c.Add)
  assert isinstance(sum([s, u]), c.Add)
  t = np.arange(0, 120, 7)
  np.testing.assert_allclose(_values(combo, t), 0.5 * s(t) + 0.01, rtol=1e-6)
  np.testing.assert_allclose(_values(s * u, t), s(t) * u(t), rtol=1e-6)
  np.testing.assert_allclose(_values(s * 2, t), 2 * s(t), rtol=1e-6)


COMPOSED = [
  c.warmup(c.join([step_decay(0.1, 0.5, 9), c.repeat(LIN, 13)], [40]), 5, 0.01),
  c.clip(c.per_epoch(exponential_decay(0.1, 3, 0.5), 7) + 0.3 * c.shift(REP, 17), 0.01, 0.2),
  c.repeat(c.warmup(linear_decay(0.1, 20), 4) * step_decay(1.0, 0.9, 6), 31),
]
STEPS = st.lists(st.integers(0, 2**62), min_size=4, max_size=4) | st.lists(
  st.integers(0, 300), min_size=4, max_size=4
)


@pytest.mark.parametrize("s", COMPOSED, ids=["warmup_join", "clip_sum", "repeat_product"])
@settings(max_examples=8, deadline=None)
@given(steps=STEPS)
def test_vectorised_equals_looped(s, steps):
  looped = [float(s(x)) for x in steps]
  np.testing.assert_allclose(s(np.asarray(steps, np.int64)), looped, rtol=1e-6)
  small = [x for x in steps if x <= INT32_MAX]
  if small:
    jitted = _jit_call(s, jnp.asarray(small, jnp.int32))
    np.testing.assert_allclose(jitted, s(np.asarray(small)), rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(
  # float32 subnormals are left out: XLA:CPU flushes them to 0.
  lo=st.floats(0.0, 0.125, width=32, allow_subnormal=False),
  width=st.floats(0.0, 0.125, width=32, allow_subnormal=False),
  steps=st.lists(st.integers(0, 200), min_size=8, max_size=8),
)
def test_clip_bounds(lo, width, steps):
  s = c.clip(COMPOSED[2] + c.repeat(LIN, 9), lo, lo + width)
  v = _jit_call(s, jnp.asarray(steps, jnp.int32))
  assert np.all(v >= np.float32(lo)) and np.all(v <= np.float32(lo + width))


@pytest.mark.parametrize(
  "build,values",
  [
    (lambda b: c.join([constant(1.0), LIN], [b]), [0, 3, 9]),
    (lambda w: c.warmup(LIN, w, 0.5), [0, 3, 9]),
    (lambda p: c.repeat(LIN, p), [1, 3, 9]),
    (lambda e: c.per_epoch(LIN, e), [1, 3, 9]),
    (lambda o: c.shift(LIN, o), [0, 3, 9]),
  ],
  ids=["boundaries", "warmup_steps", "period", "steps_per_epoch", "offset"],
)
def test_vmap_over_durations(build, values):
  t = jnp.arange(0, 40, 3)
  mapped = jax.jit(jax.vmap(lambda v: build(v)(t)))(jnp.asarray(values))
  looped = np.stack([_jit_call(build(v), t) for v in values])
  np.testing.assert_allclose(mapped, looped, rtol=1e-6)


def test_vmap_over_a_batched_composition():
  schedules = [c.join([constant(1.0), c.repeat(LIN, p)], [b]) for p, b in [(3, 4), (7, 0)]]
  batched = jax.tree.map(lambda *xs: jnp.stack(xs), *schedules)
  t = jnp.arange(30)
  out = jax.jit(jax.vmap(lambda s: s(t)))(batched)
  looped = np.stack([_jit_call(s, t) for s in schedules])
  np.testing.assert_allclose(out, looped, rtol=1e-6)


@pytest.mark.parametrize("warm", [0, 5])
def test_gradients_are_finite(warm):
  def lr(v, step):
    pieces = [linear_decay(v, 10), exponential_decay(v, 5, 0.5, end_value=0.0)]
    s = c.warmup(c.join(pieces, [10]), warm, v * 0.1)
    s = c.clip(c.scale(c.per_epoch(s, 2), v) + c.repeat(s, 7) * s, 0.0, 10.0)
    return s(step)

  steps = jnp.asarray([0, warm, 9, 10, 11, 200, INT32_MAX], jnp.int32)
  grads = jax.jit(jax.vmap(jax.grad(lr), in_axes=(None, 0)))(jnp.float32(0.1), steps)
  assert np.all(np.isfinite(grads)), grads


NESTED = [
  c.warmup(c.join([linear_decay(0.1, 10), c.repeat(REP, 16)], [10]), 5, 0.001),
  c.clip(0.5 * c.per_epoch(step_decay(0.1, 0.5, 3), 10) + 0.01, 0.02, None),
  c.shift(c.multiply(LIN, c.add(constant(0.1), REP)), 4),
  c.join([c.clip(REP, 0.1)], []),
]


@pytest.mark.parametrize("s", NESTED, ids=lambda s: type(s).__name__)
def test_config_round_trip(s):
  cfg = s.to_config()
  back = lrjax.from_config(cfg)
  assert back == s and back.to_config() == cfg
  np.testing.assert_array_equal(back(np.arange(50)), s(np.arange(50)))


@pytest.mark.parametrize(
  "name", ["join", "warmup", "per_epoch", "repeat", "shift", "scale", "add", "multiply", "clip"]
)
def test_registered_examples(name):
  entry = lrjax.registry()[name]
  s = entry.factory(**entry.example)
  v = s(np.arange(100))
  assert np.all(np.isfinite(v)) and 0 < float(v.max()) <= 0.1 + 1e-7
  assert lrjax.from_config(s.to_config()) == s


@pytest.mark.parametrize(
  "build,match",
  [
    (lambda: c.join([], []), "schedules"),
    (lambda: c.join(LIN, []), "schedules"),
    (lambda: c.join([LIN, 0.1], [3]), r"schedules\[1\]"),
    (lambda: c.join([LIN, LIN], [3, 4]), "boundaries"),
    (lambda: c.join([LIN, LIN, LIN], [5, 3]), "boundaries"),
    (lambda: c.join([LIN, LIN], [-1]), "boundaries"),
    (lambda: c.join([LIN, LIN], [2.5]), "boundaries"),
    (lambda: c.warmup(LIN, -1), "warmup_steps"),
    (lambda: c.warmup(LIN, 3, -0.1), "init_value"),
    (lambda: c.warmup(lambda t: t, 3), "schedule"),
    (lambda: c.per_epoch(LIN, 0), "steps_per_epoch"),
    (lambda: c.repeat(LIN, 0), "period"),
    (lambda: c.repeat(LIN, 2.5), "period"),
    (lambda: c.shift(LIN, -2), "offset"),
    (lambda: c.scale(LIN, -1.0), "factor"),
    (lambda: c.scale(LIN, float("inf")), "factor"),
    (lambda: LIN * float("nan"), "factor"),
    (lambda: c.add(LIN, -0.1), "b"),
    (lambda: c.add("x", LIN), "a"),
    (lambda: c.multiply(LIN, float("nan")), "b"),
    (lambda: c.clip(LIN, 0.5, 0.1), "min_value"),
    (lambda: c.clip(LIN, -0.5), "min_value"),
    (lambda: c.clip(LIN, 0.0, float("inf")), "max_value"),
  ],
)
def test_validation(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_operators_with_non_numbers_are_type_errors():
  with pytest.raises(TypeError):
    LIN + "x"
  with pytest.raises(TypeError):
    LIN * [1.0]
