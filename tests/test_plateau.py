import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrjax.schedules.plateau import (
  PlateauState,
  plateau_from_config,
  reduce_on_plateau,
  set_learning_rate,
)


def _scan(rule, metrics):
  _, lrs = jax.lax.scan(rule.update, rule.init(), jnp.asarray(metrics, jnp.float32))
  return lrs


_jit_scan = jax.jit(_scan)


def _loop(rule, metrics):
  state, out = rule.init(), []
  for m in metrics:
    state, lr = rule.update(state, m)
    out.append(float(lr))
  return out


@pytest.mark.parametrize(
  "patience,cooldown,expected",
  [
    # optax.contrib.reduce_on_plateau and Keras (reduce when the count reaches patience).
    (2, 0, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]),
    (2, 2, [1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]),
    # PyTorch ReduceLROnPlateau(patience=2) is lrjax patience=3, with or without cooldown.
    (3, 0, [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]),
    (3, 2, [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]),
  ],
)
def test_constant_metric_reference_sequences(patience, cooldown, expected):
  rule = reduce_on_plateau(1.0, factor=0.5, patience=patience, cooldown=cooldown)
  metrics = np.ones(len(expected))
  assert _loop(rule, metrics) == expected
  np.testing.assert_array_equal(_jit_scan(rule, metrics), expected)


@pytest.mark.parametrize(
  "kwargs,metrics,expected",
  [
    # An improvement resets the count.
    (dict(patience=2), [5, 4, 4, 3, 3, 3], [1, 1, 1, 1, 1, 0.5]),
    # Relative threshold: 0.95 is not below 1.0 * (1 - 0.1).
    (dict(patience=1, threshold=0.1), [1.0, 0.95, 0.8], [1, 0.5, 0.5]),
    # Absolute threshold: 9.6 is not below 10 - 0.5, 9.4 is.
    (dict(patience=2, threshold=0.5, threshold_mode="abs"), [10, 9.6, 9.4, 9.4], [1, 1, 1, 1]),
    (dict(patience=1, threshold=0.5, threshold_mode="abs"), [10, 9.6, 9.4], [1, 0.5, 0.5]),
    # Max mode: rising metrics never reduce, flat ones do.
    (dict(patience=1, mode="max"), [0.1, 0.2, 0.3, 0.3, 0.3], [1, 1, 1, 0.5, 0.25]),
    (dict(patience=1, mode="max", threshold=0.5), [1.0, 1.4, 1.6], [1, 0.5, 0.5]),
    (
      dict(patience=1, mode="max", threshold=0.5, threshold_mode="abs"),
      [1.0, 1.4, 1.6],
      [1, 0.5, 0.5],
    ),
    # The learning rate stops at min_value.
    (dict(patience=1, factor=0.1, min_value=0.05), [1, 1, 1, 1], [1, 0.1, 0.05, 0.05]),
    # A NaN metric is not an improvement and does not replace the best value.
    (dict(patience=1), [1.0, float("nan"), 0.99, 1.5], [1, 0.5, 0.5, 0.25]),
    # Improvements during cooldown still update the best value.
    (dict(patience=1, cooldown=2), [3, 3, 1, 2, 2], [1, 0.5, 0.5, 0.5, 0.25]),
  ],
)
def test_rule_table(kwargs, metrics, expected):
  rule = reduce_on_plateau(1.0, **{"factor": 0.5, **kwargs})
  np.testing.assert_allclose(_loop(rule, metrics), expected, rtol=1e-6)
  np.testing.assert_allclose(_jit_scan(rule, metrics), expected, rtol=1e-6)


def test_state_fields():
  rule = reduce_on_plateau(0.1, factor=0.5, patience=2, cooldown=3)
  state = rule.init()
  assert isinstance(state, PlateauState)
  assert float(state.best) == np.inf and int(state.count) == 0
  for m in [2.0, 1.0, 1.0, 1.0]:
    state, lr = rule.update(state, m)
  assert float(state.best) == 1.0 and int(state.count) == 4
  assert int(state.cooldown_left) == 3 and int(state.num_bad) == 0
  assert float(lr) == pytest.approx(0.05) and state.lr.dtype == jnp.float32
  assert float(reduce_on_plateau(0.1, mode="max").init().best) == -np.inf
  assert repr(rule).startswith("ReduceOnPlateau(init_value=0.1, factor=0.5, patience=2,")


METRICS = st.lists(
  st.floats(0.0, 2.0, allow_nan=False) | st.just(1.0) | st.just(float("nan")),
  min_size=12,
  max_size=12,
)


@settings(max_examples=15, deadline=None)
@given(metrics=METRICS, patience=st.integers(1, 3), cooldown=st.integers(0, 2))
def test_scan_under_jit_equals_python_loop(metrics, patience, cooldown):
  rule = reduce_on_plateau(0.1, factor=0.5, patience=patience, cooldown=cooldown, min_value=0.01)
  np.testing.assert_array_equal(_jit_scan(rule, metrics), np.float32(_loop(rule, metrics)))


def test_rule_is_a_pytree_and_vmaps_over_hyperparameters():
  metrics = jnp.ones(6)
  factors = jnp.asarray([0.5, 0.1])
  patiences = jnp.asarray([1, 2])
  out = jax.jit(
    jax.vmap(lambda f, p: _scan(reduce_on_plateau(1.0, factor=f, patience=p), metrics))
  )(factors, patiences)
  expected = [
    _jit_scan(reduce_on_plateau(1.0, factor=float(f), patience=int(p)), metrics)
    for f, p in zip(factors, patiences)
  ]
  np.testing.assert_allclose(out, np.stack(expected), rtol=1e-6)
  leaves, treedef = jax.tree.flatten(reduce_on_plateau(1.0, mode="max"))
  assert len(leaves) == 6 and "max" in str(treedef)


@pytest.mark.parametrize(
  "kwargs",
  [
    dict(),
    dict(
      factor=0.3,
      patience=4,
      cooldown=1,
      min_value=0.001,
      threshold=0.01,
      threshold_mode="abs",
      mode="max",
    ),
  ],
)
def test_config_round_trip(kwargs):
  rule = reduce_on_plateau(0.1, **kwargs)
  cfg = rule.to_config()
  assert cfg["name"] == "reduce_on_plateau" and cfg["init_value"] == 0.1
  assert plateau_from_config(cfg) == rule
  assert plateau_from_config(cfg).to_config() == cfg


@pytest.mark.parametrize(
  "cfg,match",
  [
    ({"name": "cosine", "init_value": 0.1}, "name"),
    ({"init_value": 0.1, "factr": 0.5}, "factr"),
    ({"factor": 0.5}, "init_value"),
    ([("init_value", 0.1)], "dict"),
  ],
)
def test_config_errors(cfg, match):
  with pytest.raises(ValueError, match=match):
    plateau_from_config(cfg)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    (dict(factor=1.0), "factor"),
    (dict(factor=0.0), "factor"),
    (dict(factor=float("nan")), "factor"),
    (dict(patience=0), "patience"),
    (dict(patience=1.5), "patience"),
    (dict(cooldown=-1), "cooldown"),
    (dict(threshold=-0.1), "threshold"),
    (dict(threshold=1.0), "threshold"),
    (dict(threshold=-1.0, threshold_mode="abs"), "threshold"),
    (dict(threshold_mode="relative"), "threshold_mode"),
    (dict(mode="auto"), "mode"),
    (dict(min_value=-0.1), "min_value"),
    (dict(min_value=0.5), "min_value"),
    (dict(init_value=-1.0), "init_value"),
    (dict(init_value=float("inf")), "init_value"),
  ],
)
def test_validation(kwargs, match):
  with pytest.raises(ValueError, match=match):
    reduce_on_plateau(**{"init_value": 0.1, **kwargs})


def test_set_learning_rate_drives_an_injected_optimizer():
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.sgd)(0.1))
  params = jnp.ones(3)
  grads = jnp.full(3, 0.1)
  rule = reduce_on_plateau(0.1, factor=0.5, patience=1)

  @jax.jit
  def epoch(opt_state, plateau_state, metric):
    plateau_state, lr = rule.update(plateau_state, metric)
    opt_state = set_learning_rate(opt_state, lr)
    updates, opt_state = tx.update(grads, opt_state, params)
    return opt_state, plateau_state, updates

  opt_state, ps = tx.init(params), rule.init()
  for metric, lr in [(1.0, 0.1), (1.0, 0.05), (1.0, 0.025)]:
    opt_state, ps, updates = epoch(opt_state, ps, metric)
    np.testing.assert_allclose(updates, -lr * grads, rtol=1e-6)
    assert opt_state[1].hyperparams["learning_rate"].dtype == jnp.float32


def test_set_learning_rate_needs_injected_hyperparameters():
  state = optax.sgd(0.1).init(jnp.ones(2))
  with pytest.raises(ValueError, match="learning_rate"):
    set_learning_rate(state, 0.01)


def test_rule_hashes_as_it_compares():
  a, b = (
    reduce_on_plateau(0.1, factor=0.5, patience=3),
    reduce_on_plateau(0.1, factor=0.5, patience=3),
  )
  assert a == b and hash(a) == hash(b) and len({a, b}) == 1
  assert a != reduce_on_plateau(0.1, factor=0.5, patience=4)
  # A static argument of a jitted function: an equal rule reuses the compiled program.
  run = jax.jit(lambda rule, xs: _scan(rule, xs), static_argnums=0)  # a cache of its own
  np.testing.assert_allclose(run(a, [1.0] * 5), run(b, [1.0] * 5))
  assert run._cache_size() == 1


def test_arguments_after_init_value_are_keyword_only():
  # optax.contrib.reduce_on_plateau(factor, patience, ...) would read these as factor and patience.
  with pytest.raises(TypeError):
    reduce_on_plateau(0.5, 5)


def test_an_exact_decimal_tie_with_the_threshold_improves_in_float32():
  # Documented against PyTorch, which compares in float64 and does not count this improvement.
  rule = reduce_on_plateau(1.0, factor=0.5, patience=1, threshold=0.01, threshold_mode="abs")
  state, _ = rule.update(rule.init(), 0.85)
  state, lr = rule.update(state, 0.84)
  assert float(lr) == 1.0 and int(state.num_bad) == 0
  assert not (0.84 < 0.85 - 0.01)  # float64: no improvement, PyTorch reduces here
