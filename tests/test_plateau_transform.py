"""lrjax.plateau: optax's reduce_on_plateau to the bit, PyTorch, Keras and GreedyLR under the
documented conversions (values recorded by scripts/peers/plateau.py), and what optax lacks."""

import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plateau_cases import CASES
from plateau_cases import cases as _cases
from plateau_cases import scales as _scales

import lrjax
from lrjax.transforms.plateau import PlateauScaleState, plateau, plateau_config
from lrjax.transforms.readout import plateau_learning_rate, plateau_scale

PARAMS = {"w": jnp.asarray([0.5, -1.0, 2.0]), "b": jnp.asarray(0.25)}
GRADS = {"w": jnp.asarray([1.0, -2.0, 3.0]), "b": jnp.asarray(0.7)}


def _updates(tx, metrics):
  """The updates of `tx` (a whole optimizer) for the fixed gradient, one jitted call per step."""
  update = jax.jit(tx.update)
  state, out = tx.init(PARAMS), []
  for metric in metrics:
    updates, state = update(GRADS, state, PARAMS, value=metric)
    out.append(np.concatenate([np.ravel(updates["w"]), np.ravel(updates["b"])]))
  return np.stack(out), state


# (factor, patience, rtol, atol, cooldown, accumulation_size, min_scale): optax's order.
OPTAX_SETTINGS = [
  (0.1, 10, 1e-4, 0.0, 0, 1, 0.0),
  (0.5, 2, 1e-4, 0.0, 0, 1, 0.0),
  (0.5, 1, 0.0, 0.01, 2, 1, 0.2),
  (0.7, 3, 0.05, 0.0, 1, 3, 0.0),
  (0.3, 2, 0.01, 0.005, 0, 2, 0.05),
]
SEQUENCES = {k: CASES[k]["metrics"] for k in ("optax_plateau_0", "optax_noisy_1", "optax_tie_5")}
SEQUENCES["random"] = list(np.random.default_rng(3).choice([0.5, 0.6, 0.7, 0.55], 40))
SEQUENCES["with_nan_inf"] = [1.0, 0.9, float("nan"), 0.9, float("inf"), 0.8, 0.8, 0.8, 0.8, 0.7]


@pytest.mark.parametrize("args", OPTAX_SETTINGS)
@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_same_updates_as_optax_to_the_bit(args, sequence):
  ours, _ = _updates(optax.chain(optax.sgd(0.3), plateau(*args)), SEQUENCES[sequence])
  theirs, _ = _updates(
    optax.chain(optax.sgd(0.3), optax.contrib.reduce_on_plateau(*args)), SEQUENCES[sequence]
  )
  np.testing.assert_array_equal(ours, theirs)


VALUES = st.sampled_from([0.5, 0.6, 0.7, 0.5001, 1.0, 0.3]) | st.floats(0.0, 2.0)


@settings(max_examples=20, deadline=None)
@given(
  metrics=st.lists(VALUES, min_size=1, max_size=30),
  factor=st.sampled_from([0.1, 0.5, 0.9]),
  patience=st.integers(1, 4),
  tols=st.sampled_from([(1e-4, 0.0), (0.0, 0.01), (0.1, 0.001)]),
  cooldown=st.integers(0, 3),
  accumulation_size=st.integers(1, 3),
  min_scale=st.sampled_from([0.0, 0.05]),
)
def test_same_scales_as_optax_on_generated_metrics(
  metrics, factor, patience, tols, cooldown, accumulation_size, min_scale
):
  args = (factor, patience, *tols, cooldown, accumulation_size, min_scale)
  ours = _scales(plateau(*args), metrics)
  np.testing.assert_array_equal(ours, _scales(optax.contrib.reduce_on_plateau(*args), metrics))


@pytest.mark.parametrize(
  "case", _cases("optax", tie=False) + _cases("optax", tie=True), ids=lambda c: c["id"]
)
def test_recorded_optax_values(case):
  np.testing.assert_array_equal(
    _scales(plateau(**case["settings"]), case["metrics"]), np.float32(case["values"])
  )


def test_same_arguments_as_optax():
  ours = list(inspect.signature(plateau).parameters.values())[:7]
  theirs = list(inspect.signature(optax.contrib.reduce_on_plateau).parameters.values())
  assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]
  assert isinstance(plateau(), optax.GradientTransformationExtraArgs)


def test_mode_max_is_mode_min_on_the_negated_metric():
  metrics = CASES["keras_accuracy_4"]["metrics"]
  ours = _scales(plateau(0.5, 2, rtol=0.0, atol=0.004, mode="max"), metrics)
  theirs = _scales(optax.contrib.reduce_on_plateau(0.5, 2, 0.0, 0.004), -np.float32(metrics))
  np.testing.assert_array_equal(ours, theirs)
  assert ours[-1] < 1.0


def test_state_dtypes_follow_optax():
  params = {"a": jnp.zeros(2, jnp.bfloat16), "b": jnp.zeros(2, jnp.float32)}
  ours, theirs = plateau().init(params), optax.contrib.reduce_on_plateau().init(params)
  for field in optax.contrib.ReduceLROnPlateauState._fields:
    assert getattr(ours, field).dtype == getattr(theirs, field).dtype, field
  assert ours.scale.dtype == jnp.bfloat16 and ours.recent.dtype == jnp.float32


# --- the conventions of the peers ------------------------------------------------------------


def test_constant_metric_sequence_of_the_docstring():
  np.testing.assert_array_equal(_scales(plateau(0.5, 2), [1.0] * 6), [1, 1, 0.5, 0.5, 0.25, 0.25])


# --- what optax lacks: warmup, smoothing, increase, value_is_new ----------------------------


def test_warmup_holds_the_scale_and_ignores_its_values():
  metrics = [0.0] * 4 + [1.0] * 8  # a warmup value would be the best of all
  ours = _scales(plateau(0.5, 2, warmup_steps=4), metrics)
  np.testing.assert_array_equal(ours[:4], 1.0)
  np.testing.assert_array_equal(ours[4:], _scales(plateau(0.5, 2), metrics[4:]))


def _moving_average(values, window):
  return [np.mean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


@pytest.mark.parametrize("window, accumulation_size", [(3, 1), (4, 1), (2, 2), (5, 3)])
def test_window_tests_the_moving_average_of_block_means(window, accumulation_size):
  metrics = CASES["optax_noisy_1"]["metrics"]
  n = accumulation_size
  blocks = np.mean(np.reshape(metrics[: len(metrics) // n * n], (-1, n)), axis=1)
  evaluated = _scales(
    optax.contrib.reduce_on_plateau(0.5, 2, 0.0, 0.001, 1), _moving_average(blocks, window)
  )
  # One evaluation per block, at its end; the scale holds until the next block ends.
  reference = [1.0 if t < n - 1 else evaluated[(t - n + 1) // n] for t in range(len(blocks) * n)]
  ours = _scales(plateau(0.5, 2, 0.0, 0.001, 1, accumulation_size, window=window), metrics)
  np.testing.assert_array_equal(ours[: len(reference)], reference)
  assert ours[-1] < 1.0 and not np.array_equal(
    ours, _scales(plateau(0.5, 2, 0.0, 0.001, 1), metrics)
  )


def test_increase_after_consecutive_improvements_up_to_max_scale():
  metrics = [1.0 - 0.05 * t for t in range(10)] + [0.5] * 6
  ours = _scales(plateau(0.5, 2, increase_factor=2.0, increase_patience=2, max_scale=4.0), metrics)
  expected = [1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 1, 1]
  np.testing.assert_array_equal(ours, expected)
  np.testing.assert_array_equal(_scales(plateau(0.5, 2), metrics)[:11], 1.0)  # off by default
  # increase_patience defaults to patience.
  np.testing.assert_array_equal(
    _scales(plateau(0.5, 2, increase_factor=2.0, max_scale=4.0), metrics), expected
  )


def test_value_is_new_false_only_scales():
  evaluations = [1.0, 0.9, 0.9, 0.9, 0.8, 0.9, 0.9, 0.9]
  every = 3
  metrics = np.full(len(evaluations) * every, np.nan)
  metrics[::every] = evaluations
  news = np.zeros(metrics.shape, bool)
  news[::every] = True
  tx = plateau(0.5, 2)
  ours = _scales(tx, metrics, news=news)
  np.testing.assert_array_equal(ours, np.repeat(_scales(tx, evaluations), every))
  # ...and counts towards the warmup, which counts updates.
  warm = _scales(plateau(0.5, 2, warmup_steps=4), metrics, news=news)
  after = np.repeat(_scales(tx, evaluations[2:]), every)
  np.testing.assert_array_equal(warm, np.concatenate([np.ones(6), after]))


def test_value_is_new_as_a_python_bool():
  tx = optax.chain(optax.sgd(1.0), plateau(0.5, 1))
  state = tx.init(PARAMS)
  for new in [True, True, False, False, True]:
    _, state = tx.update(GRADS, state, PARAMS, value=1.0, value_is_new=new)
  assert float(plateau_scale(state)) == 0.25
  assert int(state[1].step) == 5 and int(state[1].plateau_count) == 0


# --- state, readout, jit and scan -------------------------------------------------------------


def test_scan_equals_python_loop_and_state_is_a_fixed_pytree():
  tx = optax.chain(optax.sgd(0.1), plateau(0.5, 2, window=3, warmup_steps=2, increase_factor=1.5))
  metrics = CASES["optax_noisy_1"]["metrics"]
  state, loop = tx.init(PARAMS), []
  structure = jax.tree.structure(state)
  for metric in metrics:
    updates, state = tx.update(GRADS, state, PARAMS, value=metric)
    loop.append(updates["b"])
    assert jax.tree.structure(state) == structure
  leaves, treedef = jax.tree.flatten(state)
  restored = jax.tree.unflatten(treedef, [np.asarray(x) for x in leaves])  # a checkpoint
  assert isinstance(restored[1], PlateauScaleState) and restored[1].recent.shape == (3,)

  def body(state, metric):
    updates, state = tx.update(GRADS, state, PARAMS, value=metric)
    return state, updates["b"]

  run = jax.jit(lambda s, m: jax.lax.scan(body, s, m))
  final, scanned = run(tx.init(PARAMS), jnp.asarray(metrics, jnp.float32))
  np.testing.assert_array_equal(scanned, np.stack(loop))
  assert float(plateau_scale(final)) == float(plateau_scale(state)) < 1.0


def test_plateau_scale_finds_the_state_anywhere():
  metrics = [1.0, 1.0, 1.0]
  for tx in [
    optax.chain(optax.adam(0.1), plateau(0.5, 1)),
    optax.inject_hyperparams(
      lambda learning_rate: optax.chain(optax.sgd(learning_rate), plateau(0.5, 1))
    )(learning_rate=0.1),
    optax.MultiSteps(optax.chain(optax.sgd(0.1), plateau(0.5, 1)), every_k_schedule=1),
    optax.chain(optax.sgd(0.1), optax.contrib.reduce_on_plateau(0.5, 1)),
  ]:
    state = tx.init(PARAMS)
    for metric in metrics:
      _, state = tx.update(GRADS, state, PARAMS, value=metric)
    assert float(jax.jit(plateau_scale)(state)) == 0.25
  assert lrjax.plateau_scale is plateau_scale and lrjax.PlateauScaleState is PlateauScaleState


def test_plateau_scale_needs_exactly_one_state():
  with pytest.raises(ValueError, match="exactly one plateau state, found 0"):
    plateau_scale(optax.sgd(0.1).init(PARAMS))
  twice = optax.chain(plateau(), plateau()).init(PARAMS)
  with pytest.raises(ValueError, match="exactly one plateau state, found 2"):
    plateau_scale(twice)


def test_plateau_learning_rate_is_the_injected_rate_times_the_scale():
  schedule = optax.linear_schedule(0.02, 0.1, 4)
  tx = optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=schedule), plateau(0.5, 2))
  params, state = jnp.zeros(()), None
  state = tx.init(params)
  for t, metric in enumerate([1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]):
    updates, state = tx.update(jnp.ones(()), state, params, value=metric)
    lr = plateau_learning_rate(state)
    assert float(lr) == pytest.approx(float(-updates), rel=1e-6)
    assert float(lr) == pytest.approx(float(schedule(t) * plateau_scale(state)), rel=1e-6)
  assert float(plateau_scale(state)) == 0.25
  with pytest.raises(ValueError, match="inject exactly one hyperparameter 'learning_rate'"):
    plateau_learning_rate(optax.chain(optax.sgd(0.1), plateau()).init(params))


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(factor=1.0), "factor must be in (0.0, 1.0), got 1.0"),
    (dict(factor=0.0), "factor must be in (0.0, 1.0), got 0.0"),
    (dict(factor=True), "factor must be a number, got True"),
    (dict(factor=[0.1, 0.5]), "factor must be a single number known before tracing"),
    (dict(patience=-1), "patience must be a positive integer, got -1"),
    (dict(patience=0), "patience must be a positive integer, got 0"),
    (dict(patience=2.5), "patience must be an integer number of steps, got 2.5"),
    (dict(rtol=1.5), "rtol must be in [0.0, 1.0], got 1.5"),
    (dict(atol=-0.1), "atol must be >= 0.0, got -0.1"),
    (dict(atol=float("nan")), "atol must be finite, got nan"),
    (dict(cooldown=-1), "cooldown must be an integer >= 0, got -1"),
    (dict(accumulation_size=0), "accumulation_size must be a positive integer, got 0"),
    (dict(min_scale=1.5), "min_scale must be in [0.0, 1.0], got 1.5"),
    (dict(mode="mean"), "mode must be one of ['min', 'max'], got 'mean'"),
    (dict(warmup_steps=-3), "warmup_steps must be an integer >= 0, got -3"),
    (dict(window=0), "window must be a positive integer, got 0"),
    (dict(increase_factor=0.5), "increase_factor must be > 1.0, got 0.5"),
    (dict(increase_patience=0), "increase_patience must be a positive integer, got 0"),
    (dict(max_scale=0.5), "max_scale must be >= 1.0, got 0.5"),
  ],
)
def test_bad_input_names_the_argument_and_value(kwargs, message):
  with pytest.raises(ValueError) as info:
    plateau(**kwargs)
  assert message in str(info.value)


def test_traced_settings_are_refused():
  with pytest.raises(ValueError, match="factor must be a single number known before tracing"):
    jax.jit(lambda f: plateau(factor=f).init(PARAMS))(0.5)


def test_config_round_trip():
  kwargs = dict(factor=0.5, patience=3, cooldown=1, mode="max", window=4, increase_factor=1.25)
  cfg = plateau_config(kwargs)
  assert list(cfg) == list(inspect.signature(plateau).parameters)
  assert json.loads(json.dumps(cfg)) == cfg == plateau_config(cfg)
  assert plateau_config({}) == {
    k: p.default for k, p in inspect.signature(plateau).parameters.items()
  }
  assert cfg["rtol"] == 1e-4 and cfg["increase_patience"] is None and cfg["window"] == 4
  metrics = CASES["keras_accuracy_4"]["metrics"]
  np.testing.assert_array_equal(
    _scales(plateau(**json.loads(json.dumps(cfg))), metrics), _scales(plateau(**kwargs), metrics)
  )
  assert type(plateau_config({"patience": np.int64(3)})["patience"]) is int
  with pytest.raises(ValueError, match="unknown key 'patiense' in a plateau config"):
    plateau_config({"patiense": 3})
  with pytest.raises(ValueError, match="a plateau config must be a dict"):
    plateau_config([("factor", 0.5)])
  assert lrjax.plateau is plateau and lrjax.plateau_config is plateau_config
