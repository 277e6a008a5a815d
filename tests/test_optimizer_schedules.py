"""`config.optimizer_schedules`: momentum, weight decay and Adam's b1, b2 follow schedules, written
before every update as the learning rate is; without them a run is the program it always was."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runs import EveryStep, assert_the_program_it_was, build_run
from test_train import smoke_config

from lrjax import optimizers
from lrjax.config import experiment as experiment_lib
from lrjax.config import load
from lrjax.config.checks import ConfigError
from lrjax.train import build
from lrjax.train import step as step_lib
from lrjax.train.trainer import Member, Trainer

LR = 0.1
# Known values at steps 0, 1, 2 (the hand computations below use these numbers, not the schedules).
MOMENTUM = {"name": "linear_decay", "init_value": 0.0, "end_value": 0.9, "total_steps": 3}
MOMENTUM_AT = (0.0, 0.3, 0.6)
WEIGHT_DECAY = {"name": "piecewise_constant", "boundaries": [2], "values": [0.1, 0.05]}
WEIGHT_DECAY_AT = (0.1, 0.1, 0.05)
B1 = {"name": "linear_decay", "init_value": 0.9, "end_value": 0.3, "total_steps": 3}
B1_AT = (0.9, 0.7, 0.5)
B2 = 0.999  # optax's default, not scheduled
EPS = 1e-8

KERNEL = np.array([[1.0, 2.0], [3.0, -4.0]])
BIAS = np.array([0.5, -0.5])
GRADS = [  # one gradient per step: constant ones would hide what momentum and b1 do
  (np.array([[0.5, -0.5], [1.0, 0.0]]), np.array([1.0, -1.0])),
  (np.array([[-1.0, 0.25], [0.5, 2.0]]), np.array([0.5, 0.0])),
  (np.array([[0.0, 1.0], [-0.5, 0.5]]), np.array([-1.0, 2.0])),
]


def _scheduled_run(**changes):
  config = smoke_config(schedule={"name": "constant", "value": LR}, **changes)
  return build_run(config)


def _three_updates(run):
  """Three updates of a kernel and a bias by the run's optimizer, each with the hyperparameters
  the train step writes at its step."""
  params = {"kernel": jnp.asarray(KERNEL, jnp.float32), "bias": jnp.asarray(BIAS, jnp.float32)}
  opt_state = run.tx.init(params)
  for t, (gk, gb) in enumerate(GRADS):
    values = step_lib.hyperparameters_at(run.step_schedules, jnp.int32(t))
    opt_state = step_lib.with_hyperparameters(opt_state, values)
    grads = {"kernel": jnp.asarray(gk, jnp.float32), "bias": jnp.asarray(gb, jnp.float32)}
    updates, opt_state = run.tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
  return params, opt_state


def test_momentum_and_weight_decay_schedules_change_the_updates_as_stated():
  run = _scheduled_run(
    optimizer="sgd",
    momentum=0.5,  # replaced by the schedule: not read
    weight_decay=1.0,  # likewise
    optimizer_schedules={"momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY},
  )
  params, opt_state = _three_updates(run)
  kernel, bias = KERNEL.copy(), BIAS.copy()
  trace_k, trace_b = np.zeros_like(kernel), np.zeros_like(bias)
  for (gk, gb), m, wd in zip(GRADS, MOMENTUM_AT, WEIGHT_DECAY_AT):
    trace_k = m * trace_k + gk + wd * kernel  # coupled L2 on the kernel alone
    trace_b = m * trace_b + gb
    kernel, bias = kernel - LR * trace_k, bias - LR * trace_b
  np.testing.assert_allclose(params["kernel"], kernel, rtol=1e-6)
  np.testing.assert_allclose(params["bias"], bias, rtol=1e-6)
  # The state shows the last update's values, as it shows its learning rate.
  assert float(opt_state.hyperparams["momentum"]) == pytest.approx(MOMENTUM_AT[-1])
  assert float(opt_state.hyperparams["weight_decay"]) == pytest.approx(WEIGHT_DECAY_AT[-1])


def test_an_adam_b1_schedule_changes_the_updates_as_stated():
  run = _scheduled_run(optimizer="adam", weight_decay=0.0, optimizer_schedules={"b1": B1})
  params, _ = _three_updates(run)
  expected = []
  for start, grads in ((KERNEL, [g for g, _ in GRADS]), (BIAS, [g for _, g in GRADS])):
    p, mu, nu = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t, (g, b1) in enumerate(zip(grads, B1_AT)):
      mu, nu = b1 * mu + (1 - b1) * g, B2 * nu + (1 - B2) * g**2
      mu_hat, nu_hat = mu / (1 - b1 ** (t + 1)), nu / (1 - B2 ** (t + 1))
      p = p - LR * mu_hat / (np.sqrt(nu_hat) + EPS)
    expected.append(p)
  np.testing.assert_allclose(params["kernel"], expected[0], rtol=1e-5)
  np.testing.assert_allclose(params["bias"], expected[1], rtol=1e-5)


@pytest.mark.parametrize(
  "changes",
  [
    dict(optimizer="sgd", momentum=0.9, weight_decay=5e-4),
    dict(optimizer="sgd", momentum=0.0, weight_decay=0.0),
    dict(optimizer="adamw", weight_decay=1e-4),
  ],
)
def test_without_optimizer_schedules_a_run_is_the_program_it_always_was(changes):
  """The optimizer and step of a run with `optimizer_schedules={}` against those written as they
  were before the field: the same compiled program, bitwise the same parameters."""
  config = smoke_config(**changes)
  config.optimizer_schedules = {}
  run = build_run(config)
  assert experiment_lib.parse(smoke_config(**changes)) == run.experiment
  assert run.step_schedules is run.schedule and "optimizer_schedules" not in run.resolved_config()
  assert set(run.tx.init({"w": jnp.zeros(2)}).hyperparams) == {"learning_rate"}
  assert_the_program_it_was(run)


def test_runs_that_differ_in_schedule_values_or_replaced_fields_share_their_optimizer():
  def tx(momentum, init):
    e = experiment_lib.parse(
      smoke_config(
        momentum=momentum,
        optimizer_schedules={"momentum": {**MOMENTUM, "init_value": init}},
      )
    )
    return build.build_optimizer(e)

  assert tx(0.9, 0.0) is tx(0.5, 0.2)
  assert tx(0.9, 0.0) is not build.build_optimizer(experiment_lib.parse(smoke_config()))


def test_a_scheduled_momentum_starts_from_zero():
  """From 0 upwards: the trace exists from the first update (a fixed 0 would have none)."""
  for name in ("sgd", "mechanize"):
    tx = optimizers.make_optimizer(name, momentum=0.0, scheduled=("momentum",))
    params = {"w": jnp.ones(3)}
    state, seen = tx.init(params), []
    for m in (0.0, 0.5):
      values = {"learning_rate": jnp.asarray(LR), "momentum": jnp.asarray(m)}
      state = step_lib.with_hyperparameters(state, values)
      updates, state = tx.update({"w": jnp.ones(3)}, state, params)
      seen.append(updates["w"])
      assert bool(jnp.isfinite(updates["w"]).all()), name
    if name == "sgd":  # -lr * g, then -lr * (0.5 * g + g)
      np.testing.assert_allclose(seen, [[-0.1] * 3, [-0.15] * 3], rtol=1e-6)


def test_the_step_refuses_schedules_the_optimizer_does_not_inject():
  run = _scheduled_run(optimizer_schedules={"momentum": MOMENTUM})
  state = run.init_state()
  with pytest.raises(ValueError, match=r"injects \['learning_rate', 'momentum'\].*step_schedules"):
    run.train_step(state, run.train_batch(np.arange(256), 0), run.schedule)


def test_make_optimizer_refuses_a_name_the_optimizer_does_not_have():
  with pytest.raises(ValueError, match=r"scheduled must name hyperparameters of 'sgd'.*\['b1'\]"):
    optimizers.make_optimizer("sgd", scheduled=("b1",))
  with pytest.raises(ValueError, match="schedule_free_sgd"):
    optimizers.make_optimizer("schedule_free_sgd", scheduled=("momentum",))


def test_a_schedule_that_leaves_its_range_is_refused_naming_the_field():
  """Negative values are refused by the schedules themselves when the config is parsed; a b1 or
  b2 that reaches 1 (Adam's bias correction would divide by 0) when the run is built."""
  bad = {"name": "linear_decay", "init_value": 0.1, "end_value": -0.1, "total_steps": 8}
  with pytest.raises(ConfigError, match=r"config.optimizer_schedules.weight_decay: end_value"):
    _scheduled_run(optimizer_schedules={"weight_decay": bad})
  bad = {"name": "linear_decay", "init_value": 0.9, "end_value": 1.0, "total_steps": 4}
  with pytest.raises(ConfigError, match=r"schedules.b2 must stay in \[0, 1\), got 1.0 at"):
    _scheduled_run(optimizer="adam", optimizer_schedules={"b2": bad})


def test_a_run_records_its_scheduled_hyperparameters(tmp_path):
  momentum = {
    "name": "cosine_decay",
    "init_value": 0.0,
    "end_value": 0.9,
    "decay_steps": {"fraction": 1.0},
  }
  weight_decay = {"name": "piecewise_constant", "boundaries": [{"epochs": 1}], "values": [0, 1e-3]}
  config = smoke_config(num_epochs=2)
  config.optimizer_schedules = {"momentum": momentum, "weight_decay": weight_decay}
  run = build_run(config)
  seen = EveryStep()
  result = Trainer([Member(run, str(tmp_path))], str(tmp_path), observers=[seen]).fit()
  spe, total = run.steps_per_epoch, run.total_steps
  assert sorted(seen.metrics) == list(range(total))
  schedule = run.optimizer_schedules["momentum"]
  for step, m in seen.metrics.items():
    assert float(m["momentum"]) == pytest.approx(float(schedule(step)), rel=1e-6, abs=1e-7)
    assert float(m["weight_decay"]) == (0.0 if step < spe else pytest.approx(1e-3))
  hyper = result.train_state.opt_state.hyperparams
  assert float(hyper["momentum"]) == pytest.approx(float(schedule(total - 1)))
  # The history: each epoch's record has the values at its first step, as it has the lr.
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["momentum"] for r in records] == [float(schedule(0)), float(schedule(spe))]
  assert [r["weight_decay"] for r in records] == pytest.approx([0.0, 1e-3])
  # config.json: the config as given, and the schedules in steps, as the learning rate's.
  resolved = json.load(open(tmp_path / "config.json"))
  assert resolved["optimizer_schedules"]["momentum"]["decay_steps"] == total
  assert resolved["optimizer_schedules"]["weight_decay"]["boundaries"] == [spe]
  assert resolved["config"]["optimizer_schedules"]["momentum"] == momentum
  assert experiment_lib.parse(resolved["config"]) == run.experiment


def test_a_population_follows_each_member_s_schedules():
  runs = [
    _scheduled_run(optimizer_schedules={"momentum": {"name": "constant", "value": m}})
    for m in (0.0, 0.9)
  ]
  batch = runs[0].train_batch(np.arange(256), 0)
  state = runs[0].init_state()
  alone = []
  for r in runs:
    s = jax.tree.map(jnp.copy, state)
    for _ in range(2):
      s, m = r.train_step(s, batch, r.step_schedules)
    alone.append((s, m))
  members = jax.tree.map(lambda x: jnp.stack([x, x]), state)
  schedules = tuple(r.step_schedules for r in runs)
  for _ in range(2):
    members, metrics = runs[0].steps.train_members(
      members, batch, schedules, jnp.arange(2, dtype=jnp.int32)
    )
  np.testing.assert_allclose(metrics["momentum"], [0.0, 0.9], rtol=1e-6)
  for i, (s, _) in enumerate(alone):
    for a, b in zip(jax.tree.leaves(members.params), jax.tree.leaves(s.params)):
      np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


def test_a_config_file_sets_them_and_the_command_line_changes_them(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text(
    "from lrjax.configs import smoke\n\n\n"
    "def get_config():\n"
    "  config = smoke.get_config()\n"
    f"  config.optimizer_schedules = {{'momentum': {MOMENTUM!r}}}\n"
    "  return config\n"
  )
  config = load(str(path), [("optimizer_schedules.momentum.end_value", "0.95")])
  e = experiment_lib.parse(config)
  assert e.optimizer_schedules.momentum.end_value == 0.95
  assert experiment_lib.parse(e.to_dict()) == e
