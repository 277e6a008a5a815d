"""The contract every registered schedule keeps, checked on each one's registered example."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax.schedules.base import Schedule

REGISTRY = lrjax.registry()
NAMES = sorted(REGISTRY)
EDGE_STEPS = [0, 1, 2, 24, 25, 49, 50, 99, 100, 101, 1000, 10**6]


def example(name):
  entry = REGISTRY[name]
  return entry.factory(**entry.example)


def test_registry_is_populated():
  chapter = {
    "constant",
    "time_based_decay",
    "step_decay",
    "linear_decay",
    "polynomial_decay",
    "triangle",
    "cosine_annealing",
  }
  assert chapter <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_pytree_leaves_are_arrays_and_kind_is_static(name):
  s = example(name)
  leaves, treedef = jax.tree.flatten(s)
  assert leaves, f"{name} has no numeric leaves"
  for leaf in leaves:
    assert isinstance(leaf, (np.ndarray, jax.Array)), (name, leaf)
    assert leaf.dtype in (np.float32, np.int32), (name, leaf.dtype)
  assert jax.tree.unflatten(treedef, leaves) == s
  with pytest.raises(dataclass_frozen_error()):
    s.__setattr__(next(iter(s.fields())), 1.0)


def dataclass_frozen_error():
  import dataclasses

  return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
  "step", [3, np.int32(3), np.int64(3), jnp.int32(3), 3.0, np.float32(3.7), jnp.float32(3.2)]
)
def test_every_step_kind_gives_a_float32_array(name, step):
  s = example(name)
  out = s(step)
  assert isinstance(out, jax.Array) and out.dtype == jnp.float32 and out.shape == ()
  assert float(out) == float(s(3))


@pytest.mark.parametrize("name", NAMES)
def test_vectorised_equals_looped_and_jit_equals_eager(name, jit_eval):
  s = example(name)
  steps = np.array(EDGE_STEPS, dtype=np.int32)
  vec = np.asarray(s(steps))
  looped = np.array([float(s(int(t))) for t in steps], dtype=np.float32)
  jitted = np.asarray(jit_eval(s, jnp.asarray(steps)))
  np.testing.assert_allclose(vec, looped, rtol=1e-6, atol=1e-12)
  np.testing.assert_allclose(jitted, vec, rtol=2e-6, atol=1e-9)
  assert s(steps.reshape(3, 4)).shape == (3, 4)


@pytest.mark.parametrize("name", NAMES)
def test_large_steps_are_finite(name):
  s = example(name)
  for step in [2**24 + 1, np.int32(2**31 - 1), jnp.int32(2**31 - 1), 2**31, 2**40, 2**62]:
    v = float(s(step))
    assert math.isfinite(v) and v >= 0.0, (name, step, v)


@pytest.mark.parametrize("name", NAMES)
def test_negative_or_non_finite_concrete_step_raises(name):
  s = example(name)
  for bad in [-1, np.array([0, -3]), float("nan"), float("inf")]:
    with pytest.raises(ValueError, match="step"):
      s(bad)


@pytest.mark.parametrize("name", NAMES)
def test_drives_optax_through_inject_hyperparams(name):
  s = example(name)
  opt = optax.inject_hyperparams(optax.sgd)(learning_rate=s)
  params = jnp.zeros(())
  state = opt.init(params)

  @jax.jit
  def update(params, state):
    updates, state = opt.update(jnp.ones(()), state, params)
    return optax.apply_updates(params, updates), state

  expected = 0.0
  for t in range(4):
    params, state = update(params, state)
    expected -= float(s(t))  # the update with index t uses lr(t), as optax does
    assert float(params) == pytest.approx(expected, rel=1e-6, abs=1e-9)
  assert float(state.hyperparams["learning_rate"]) == pytest.approx(float(s(3)), rel=1e-6)
  # And as a plain optax learning_rate callable.
  plain = optax.sgd(learning_rate=s)
  u, _ = plain.update(jnp.ones(()), plain.init(jnp.zeros(())))
  assert float(u) == pytest.approx(-float(s(0)), rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_no_recompile_for_new_values_of_the_same_kind(name):
  s = example(name)
  f = jax.jit(lambda sched, t: sched(t))
  f(s, 5)
  other = jax.tree.map(lambda x: x * 0.5 if x.dtype == np.float32 else x, s)
  f(other, 5)
  f(example(name), 7)
  assert f._cache_size() == 1


def test_kinds_of_the_same_layout_never_share_a_compiled_program():
  # jax 0.10's register_dataclass let the structures of two classes of one layout compare
  # equal: a jitted function handed a Repeat could reuse the program traced for a PerEpoch.
  lin = lrjax.linear_decay(1.0, 10)
  kinds = [lrjax.per_epoch(lin, 5), lrjax.repeat(lin, 5), lrjax.shift(lin, 5)]
  structures = [jax.tree.structure(s) for s in kinds]
  for i, a in enumerate(structures):
    for b in structures[i + 1 :]:
      assert a != b
  f = jax.jit(lambda sched, t: sched(t))
  steps = np.array([0, 4, 5, 9, 10, 12], np.int32)
  for s in kinds:
    np.testing.assert_allclose(f(s, steps), s(steps), rtol=1e-6)
  assert f._cache_size() == len(kinds)
  names = sorted(REGISTRY)
  all_structures = {}
  for name in names:
    all_structures.setdefault(jax.tree.structure(example(name)), set()).add(type(example(name)))
  assert all(len(types) == 1 for types in all_structures.values()), all_structures


def _numeric_kwargs(name):
  out = {}
  for key, value in REGISTRY[name].example.items():
    if isinstance(value, bool) or isinstance(value, str) or value is None:
      continue
    if isinstance(value, (int, float)):
      out[key] = value
  return out


@pytest.mark.parametrize("name", NAMES)
def test_every_numeric_hyperparameter_can_be_vmapped(name):
  entry = REGISTRY[name]
  for key, value in _numeric_kwargs(name).items():
    dtype = jnp.int32 if isinstance(value, int) else jnp.float32
    batch = jnp.asarray([value, value], dtype)

    def one(v, key=key):
      return entry.factory(**{**entry.example, key: v})(13)

    out = jax.vmap(one)(batch)
    np.testing.assert_allclose(out, [float(example(name)(13))] * 2, rtol=2e-6, err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_wrt_hyperparameters_are_finite(name):
  s = example(name)
  leaves, treedef = jax.tree.flatten(s)
  floats = [i for i, x in enumerate(leaves) if x.dtype == np.float32]
  if not floats:
    pytest.skip(f"{name} has no float hyperparameters")

  def total(fl, step):
    new = list(leaves)
    for i, x in zip(floats, fl):
      new[i] = x
    return jax.tree.unflatten(treedef, new)(step)

  grad = jax.jit(jax.grad(total))
  for step in EDGE_STEPS + [2**31 - 1]:
    g = grad([jnp.asarray(leaves[i]) for i in floats], jnp.int32(step))
    for gi in g:
      assert np.all(np.isfinite(np.asarray(gi))), (name, step, g)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
  s = example(name)
  cfg = s.to_config()
  again = lrjax.from_config(json.loads(json.dumps(cfg)))
  assert again == s
  assert type(again) is type(s)
  np.testing.assert_array_equal(again(np.arange(120)), s(np.arange(120)))


@pytest.mark.parametrize("name", NAMES)
def test_nan_hyperparameter_is_rejected_by_name(name):
  entry = REGISTRY[name]
  for key, value in _numeric_kwargs(name).items():
    with pytest.raises(ValueError, match=key):
      entry.factory(**{**entry.example, key: float("nan")})
    if isinstance(value, int):
      with pytest.raises(ValueError, match=key):
        entry.factory(**{**entry.example, key: -1})


@pytest.mark.parametrize("name", NAMES)
def test_hash_agrees_with_equality(name):
  a, b = example(name), example(name)
  assert a == b and a is not b
  assert hash(a) == hash(b)
  assert len({a, b}) == 1
  # Equal by value whatever the leaves' types: a float64 copy is equal and hashes alike.
  c = jax.tree.map(lambda x: np.asarray(x, np.float64), a)
  assert c == a and hash(c) == hash(a)


@pytest.mark.parametrize("name", NAMES)
def test_jit_of_the_schedule_itself(name):
  s = example(name)
  steps = np.array(EDGE_STEPS, dtype=np.int32)
  np.testing.assert_allclose(jax.jit(s)(steps), s(steps), rtol=2e-6, atol=1e-9)
  assert float(jax.jit(s)(3)) == pytest.approx(float(s(3)), rel=2e-6, abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_schedule_as_a_static_argument(name):
  calls = []

  @functools.partial(jax.jit, static_argnums=0)
  def f(schedule, t):
    calls.append(1)  # runs once per trace
    return schedule(t)

  s = example(name)
  np.testing.assert_allclose(f(s, jnp.int32(7)), s(7), rtol=2e-6, atol=1e-9)
  f(example(name), jnp.int32(9))  # an equal schedule built again: no new trace
  assert len(calls) == 1


@pytest.mark.parametrize("name", NAMES)
def test_schedule_as_an_lru_cache_key(name):
  @functools.lru_cache(maxsize=8)
  def at_seven(schedule):
    return float(schedule(7))

  at_seven(example(name))
  at_seven(example(name))
  info = at_seven.cache_info()
  assert (info.hits, info.misses) == (1, 1)


def test_traced_schedules_hash_by_identity():
  def inside(v):
    s = lrjax.linear_decay(v, 10)
    assert hash(s) == hash(s) and s == s
    assert s != lrjax.linear_decay(v, 10)  # no values to compare: only itself
    return s(3)

  jax.jit(inside)(0.1)


def test_from_config_errors_name_the_problem():
  with pytest.raises(ValueError, match="known names.*linear_decay"):
    lrjax.from_config({"name": "no_such_schedule"})
  with pytest.raises(ValueError, match="'name'"):
    lrjax.from_config({"init_value": 0.1})
  with pytest.raises(ValueError, match="total_steps"):
    lrjax.from_config({"name": "linear_decay", "init_value": 0.1})
  with pytest.raises(ValueError, match="bogus"):
    lrjax.from_config({"name": "linear_decay", "init_value": 0.1, "total_steps": 5, "bogus": 1})
  with pytest.raises(ValueError, match="dict"):
    lrjax.from_config(["linear_decay"])


def test_schedules_are_equal_by_value():
  assert lrjax.linear_decay(0.1, 10) == lrjax.linear_decay(0.1, 10)
  assert lrjax.linear_decay(0.1, 10) != lrjax.linear_decay(0.1, 11)
  assert lrjax.linear_decay(0.1, 10) != lrjax.constant(0.1)
  assert isinstance(lrjax.constant(0.1), Schedule)
  assert "LinearDecay(init_value=0.1, total_steps=10" in repr(lrjax.linear_decay(0.1, 10))
