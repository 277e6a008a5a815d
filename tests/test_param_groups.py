"""`config.param_groups`: groups of parameters at constant factors of the one injected learning
rate, each with its own weight decay; layer-wise decay on the built-in ResNets; groups as a
study's arms (PyTorch's per-group rates: tests/test_torch_param_groups.py)."""

import json
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from runs import assert_the_program_it_was, build_run
from test_train import smoke_config

from lrjax import optimizers
from lrjax.compare import arms_table, plan
from lrjax.config import experiment as experiment_lib
from lrjax.config import load
from lrjax.config import param_groups as param_groups_lib
from lrjax.config import study as study_lib
from lrjax.config.checks import ConfigError
from lrjax.groups import Group, GroupRules, group_learning_rates
from lrjax.train import build
from lrjax.train import step as step_lib
from lrjax.train.trainer import Member, Observer, Stop, Trainer

LR, WD = 0.1, 0.1
HEAD = {"head": {"match": "^Dense_", "lr_scale": 10.0}}
HEAD_1 = {"match": "^Dense_1/", "lr_scale": 10.0}  # the last of a user's MLP's two
# The tiny ResNet's depths: the stem 0, its two blocks 1 and 2, the head L + 1 = 3.
TINY_DEPTHS = {"conv_init": 0, "bn_init": 0, "BasicBlock_0": 1, "BasicBlock_1": 2, "Dense_0": 3}

# Leaves named as the tiny ResNet's: a kernel, a BatchNorm scale and bias, the head's two.
PARAMS = {
  "conv_init": {"kernel": np.array([[1.0, 2.0], [3.0, -4.0]])},
  "bn_init": {"scale": np.array([1.5, 0.5]), "bias": np.array([0.25, -0.5])},
  "Dense_0": {"kernel": np.array([[0.5, -1.0], [2.0, 1.0]]), "bias": np.array([1.0, -2.0])},
}
GRADS = [
  jax.tree.map(lambda p: np.full_like(p, 0.5), PARAMS),
  jax.tree.map(lambda p: np.linspace(-1.0, 1.0, p.size).reshape(p.shape), PARAMS),
]


def _updates(e, params=PARAMS, grads=GRADS, tx=None):
  """`e`'s optimizer (its groups resolved for `params`) over `grads`, with the learning rate
  written before each update as the train step writes it."""
  if tx is None:
    groups = param_groups_lib.resolve(e.param_groups, params, e.model) if e.param_groups else None
    tx = build.build_optimizer(e, param_groups=groups)
  params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
  state = tx.init(params)
  for g in grads:
    state = step_lib.with_hyperparameters(state, {"learning_rate": jnp.float32(LR)})
    updates, state = tx.update(jax.tree.map(jnp.float32, g), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def _sgd(factor, decay):
  """Plain SGD by hand, in float64: each leaf at `factor[leaf] * LR` with `decay[leaf]`."""
  out = jax.tree.map(lambda p: p.copy(), PARAMS)
  for g in GRADS:
    out = {
      m: {n: p - factor[m] * LR * (g[m][n] + decay[m][n] * p) for n, p in leaves.items()}
      for m, leaves in out.items()
    }
  return out


NO_DECAY = {"scale": 0.0, "bias": 0.0}


@pytest.mark.parametrize(
  "groups, factor, decay, rates",
  [
    # Kernels decayed, BatchNorm scales and biases not (the default, as without the field).
    (
      {"weight_decay_on": "kernels", **HEAD},
      {"conv_init": 1.0, "bn_init": 1.0, "Dense_0": 10.0},
      {"conv_init": {"kernel": WD}, "bn_init": NO_DECAY, "Dense_0": {"kernel": WD, "bias": 0.0}},
      {"rest": LR, "head": 10 * LR},
    ),
    # Every leaf decayed, but the BatchNorm group's own weight decay is 0.
    (
      {"weight_decay_on": "all", "norm": {"match": "^bn_", "weight_decay": 0.0}},
      {"conv_init": 1.0, "bn_init": 1.0, "Dense_0": 1.0},
      {"conv_init": {"kernel": WD}, "bn_init": NO_DECAY, "Dense_0": {"kernel": WD, "bias": WD}},
      {"rest": LR, "norm": LR},
    ),
    # Every leaf decayed, the head at its own rate and weight decay.
    (
      {
        "weight_decay_on": "all",
        "head": {"match": "^Dense_", "lr_scale": 3.0, "weight_decay": 0.5},
      },
      {"conv_init": 1.0, "bn_init": 1.0, "Dense_0": 3.0},
      {
        "conv_init": {"kernel": WD},
        "bn_init": {"scale": WD, "bias": WD},
        "Dense_0": {"kernel": 0.5, "bias": 0.5},
      },
      {"rest": LR, "head": 3 * LR},
    ),
  ],
)
def test_sgd_updates_of_each_group_by_hand(groups, factor, decay, rates):
  """With the kernels alone decayed, a BatchNorm scale's and a bias's updates carry no decay
  term: -rate * g as computed by hand, where a decay of 0.1 would move them by 0.1 * rate * p."""
  e = experiment_lib.parse(smoke_config(momentum=0.0, weight_decay=WD, param_groups=groups))
  params, state = _updates(e)
  for m, leaves in _sgd(factor, decay).items():
    for n, value in leaves.items():
      np.testing.assert_allclose(params[m][n], value, rtol=1e-6, err_msg=f"{m}/{n}")
  got = {g: float(r) for g, r in group_learning_rates(state).items()}
  assert got == pytest.approx(rates)


@pytest.mark.parametrize(
  "changes",
  [
    dict(optimizer="sgd", momentum=0.0),
    dict(optimizer="sgd", momentum=0.9),
    dict(optimizer="sgd", momentum=0.9, nesterov=True),
    dict(optimizer="adam"),
    dict(optimizer="adamw"),
  ],
)
def test_a_group_is_the_optimizer_at_its_factor_times_the_rate(changes):
  """The head at 10x trains as the optimizer alone at 10 * lr, and (the update being linear in
  the rate for SGD, momentum SGD, Adam and AdamW) as the optimizer at lr scaled by 10 after."""
  e = experiment_lib.parse(smoke_config(weight_decay=1e-2, param_groups=HEAD, **changes))
  grouped, _ = _updates(e)
  plain = experiment_lib.parse(smoke_config(weight_decay=1e-2, **changes))
  head = {"Dense_0": PARAMS["Dense_0"]}
  head_grads = [{"Dense_0": g["Dense_0"]} for g in GRADS]
  tx = build.build_optimizer(plain)
  alone, _ = _updates(plain, head, head_grads, _at_rate(tx, 10.0))
  scaled, _ = _updates(plain, head, head_grads, _scaled(tx, 10.0))
  for got in (alone, scaled):
    for n in ("kernel", "bias"):
      np.testing.assert_allclose(grouped["Dense_0"][n], got["Dense_0"][n], rtol=2e-6)
  rest = {m: PARAMS[m] for m in ("conv_init", "bn_init")}
  rest_grads = [{m: g[m] for m in rest} for g in GRADS]
  body, _ = _updates(plain, rest, rest_grads, tx)
  for m in rest:
    for n in rest[m]:
      np.testing.assert_allclose(grouped[m][n], body[m][n], rtol=2e-6)


def _at_rate(tx, factor):
  """`tx` with its injected learning rate multiplied by `factor` as the step writes it."""

  def update(updates, state, params=None):
    hyper = dict(state.hyperparams, learning_rate=factor * state.hyperparams["learning_rate"])
    out, new = tx.update(updates, state._replace(hyperparams=hyper), params)
    return out, new._replace(hyperparams=state.hyperparams)

  return optax.GradientTransformation(tx.init, update)


def _scaled(tx, factor):
  """`tx`'s updates times `factor` (`optax.scale` after it), its state left as `tx`'s."""

  def update(updates, state, params=None):
    out, new = tx.update(updates, state, params)
    return optax.scale(factor).update(out, optax.ScaleState())[0], new

  return optax.GradientTransformation(tx.init, update)


@pytest.mark.parametrize("groups", [{"layer_decay": 0.75}, {"layer_decay": 0.5, **HEAD}])
def test_a_resnet_with_layer_decay_has_the_rate_of_its_depth_in_every_group(groups):
  """Trained with the engine's step, each group's rate read from the optimizer state after
  update t is factor(depth) * schedule(t), factor = d ** (L + 1 - depth) (timm's), times the
  named group's lr_scale."""
  run = build_run(smoke_config(param_groups=groups))
  d, head = groups["layer_decay"], 3
  lr_scale = {"rest": 1.0, "head": groups.get("head", {}).get("lr_scale", 1.0)}
  state, perm = run.init_state(), run.epoch_order(0)
  labels = run.param_groups.rules.labels(state.params)
  for path, label in jax.tree_util.tree_leaves_with_path(labels):
    top = path[0].key
    name = "head" if "head" in groups and top == "Dense_0" else "rest"
    assert label == f"{name}_layer_{TINY_DEPTHS[top]}", path
  for t in range(4):
    state, metrics = run.train_step(state, run.train_batch(perm, t), run.step_schedules)
    rates = group_learning_rates(state.opt_state)
    assert len(rates) == len(run.param_groups.table)
    lr = float(run.schedule(t))
    assert float(metrics["lr"]) == pytest.approx(lr)
    for label, rate in rates.items():
      name, depth = label.split("_layer_")
      expected = lr_scale[name] * d ** (head - int(depth)) * lr
      assert float(rate) == pytest.approx(expected, rel=1e-6), (t, label)


def test_without_the_field_a_run_is_the_program_it_was():
  """`param_groups={}` is the run without the field: the same experiment, optimizer, record and
  compiled step as an optimizer written as before the field, with bitwise the same parameters."""
  config = smoke_config(weight_decay=5e-4)
  config.param_groups = {}
  run = build_run(config)
  assert run.experiment == experiment_lib.parse(smoke_config(weight_decay=5e-4))
  assert run.param_groups is None and "param_groups" not in run.resolved_config()
  assert "param_groups" not in run.experiment.to_dict()

  assert_the_program_it_was(run)


def test_runs_that_differ_in_schedule_values_share_their_grouped_optimizer():
  def tx(value):
    return build_run(
      smoke_config(schedule={"name": "constant", "value": value}, param_groups=HEAD)
    ).tx

  assert tx(0.1) is tx(0.05)
  assert tx(0.1) is not build_run(smoke_config(param_groups={"layer_decay": 0.8})).tx


def test_a_run_records_each_group_s_rate_and_factors(tmp_path):
  config = smoke_config(num_epochs=2, param_groups=HEAD)
  run = build_run(config)
  Trainer([Member(run, str(tmp_path))], str(tmp_path)).fit()
  spe = run.steps_per_epoch
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  for epoch, r in enumerate(records):
    lr = float(run.schedule(epoch * spe))
    assert r["lr"] == pytest.approx(lr)
    assert r["lr/head"] == pytest.approx(10 * lr) and r["lr/rest"] == pytest.approx(lr)
  resolved = json.load(open(tmp_path / "config.json"))
  assert resolved["param_groups"] == {
    "weight_decay_on": "kernels",
    "groups": {
      "head": {"lr_scale": 10.0, "weight_decay": 5e-4},
      "rest": {"lr_scale": 1.0, "weight_decay": 5e-4},
    },
  }
  assert resolved["config"]["param_groups"] == HEAD
  assert experiment_lib.parse(resolved["config"]) == run.experiment


class _StopAfterFirstEpoch(Observer):
  def see(self, trainer, moment):
    if moment.epoch_end and moment.step == trainer.run.steps_per_epoch:
      return Stop("stopped", save=True)
    return None


# "auto" is oneDNN's convolutions where the [train] extra brings them (CI asserts it), else XLA's.
@pytest.mark.parametrize("convolutions", ["auto", "xla"])
def test_a_grouped_run_resumes_bit_for_bit_and_trains_in_a_population(tmp_path, convolutions):
  groups = {"layer_decay": 0.8, **HEAD}

  def fit(workdir, observers=()):
    config = smoke_config(num_epochs=2, param_groups=groups)
    config.runtime.convolutions = convolutions
    run = build_run(config)
    return Trainer([Member(run, str(workdir))], str(workdir), observers=list(observers)).fit()

  whole = fit(tmp_path / "whole")
  fit(tmp_path / "resumed", [_StopAfterFirstEpoch()])
  resumed = fit(tmp_path / "resumed")
  for a, b in zip(*(jax.tree.leaves(r.train_state.params) for r in (whole, resumed))):
    np.testing.assert_array_equal(a, b)
  runs = [
    build_run(smoke_config(param_groups=groups, schedule={"name": "constant", "value": v}))
    for v in (0.1, 0.05)
  ]
  state, batch = runs[0].init_state(), runs[0].train_batch(np.arange(256), 0)
  members = jax.tree.map(lambda x: jnp.stack([x, x]), state)
  members, _ = runs[0].steps.train_members(
    members, batch, tuple(r.step_schedules for r in runs), jnp.arange(2, dtype=jnp.int32)
  )
  rates = group_learning_rates(members.opt_state)
  np.testing.assert_allclose(rates["head_layer_3"], [1.0, 0.5], rtol=1e-6)
  for i, r in enumerate(runs):
    alone, _ = r.train_step(jax.tree.map(jnp.copy, state), batch, r.step_schedules)
    for a, b in zip(jax.tree.leaves(members.params), jax.tree.leaves(alone.params)):
      np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


def test_a_study_compares_group_settings_as_arms(tmp_path):
  """Two arms that differ only in their groups: no reason asked, their runs differ in
  `param_groups` and nothing else, and each trains as a cell of its own."""
  config = smoke_config(num_epochs=1)
  config.study = ml_collections.ConfigDict()
  config.study.arms = {"all_1x": {}, "head_10x": {"param_groups": HEAD}}
  config.study.order = ["all_1x", "head_10x"]
  config.study.seeds = [0, 1]
  study = study_lib.parse(config)
  a, b = (study.run(n, 0).to_dict() for n in study.names)
  assert b.pop("param_groups") == HEAD and "param_groups" not in a and a == b
  cells = plan.plan(study, str(tmp_path), say=lambda _: None)
  assert sorted((c.seed, c.names) for c in cells) == [
    (s, (n,)) for s in (0, 1) for n in ("all_1x", "head_10x")
  ]
  setup = arms_table.setup(study, [])
  assert "groups" not in setup["all_1x"] and setup["head_10x"]["groups"] == "head `^Dense_` x10"
  table = arms_table.lines({"arms_setup": setup})
  assert "| Groups | Why |" in table[4] and "| all 1x |" in table[6], table
  runs = [build_run(study.run(n, 0)) for n in study.names]
  assert runs[0].param_groups is None and runs[1].param_groups.factors()["head"] == 10.0
  for x, y in zip(*(jax.tree.leaves(r.init_state().params) for r in runs)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
  "groups, message",
  [
    ({"layer_decay": 0.75}, "config.param_groups.layer_decay: config.model='test_user_inputs:"),
    ({"head": {"match": "^head"}}, "config.param_groups.head.match='^head' finds no parameter"),
  ],
)
def test_a_model_of_your_own_is_checked_on_its_parameters_when_built(groups, message):
  config = smoke_config(model="test_user_inputs:TinyMLP", param_groups=groups)
  experiment_lib.parse(config)  # its parameters are known once it is built
  with pytest.raises(ConfigError, match=re.escape(message)):
    build_run(config)
  run = build_run(smoke_config(model="test_user_inputs:TinyMLP", param_groups={"top": HEAD_1}))
  assert run.param_groups.factors() == {"rest": 1.0, "top": 10.0}


def test_a_config_file_sets_them_and_the_command_line_changes_them(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text(
    "from lrjax.configs import smoke\n\n\n"
    "def get_config():\n"
    "  config = smoke.get_config()\n"
    f"  config.param_groups = {HEAD!r}\n"
    "  return config\n"
  )
  e = experiment_lib.parse(load(str(path), [("param_groups.head.lr_scale", "5")]))
  assert e.param_groups.head.lr_scale == 5.0 and experiment_lib.parse(e.to_dict()) == e


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda: Group("rest", "x"), "name must be an identifier other than 'rest'"),
    (lambda: Group("a", "("), r"groups\['a'\].match='\(' is not a regular expression"),
    (lambda: Group("a", "x", lr_scale=0), r"groups\['a'\].lr_scale must be a finite number > 0"),
    (lambda: Group("a", "x", weight_decay=-1), r"groups\['a'\].weight_decay must be a finite"),
    (lambda: GroupRules((Group("a", "x"), Group("a", "y"))), "distinct names, got \\['a', 'a'\\]"),
    (lambda: GroupRules(layer_decay=1.5), r"layer_decay must be in \(0, 1\], got 1.5"),
    (lambda: GroupRules(weight_decay_on="none"), "weight_decay_on must be one of"),
    (lambda: GroupRules((Group("a", "x"),)).resolve(PARAMS), r"groups \['a'\] find no parameter"),
    (
      lambda: GroupRules((Group("a", "Dense"), Group("b", "kernel"))).labels(PARAMS),
      r"Dense_0/kernel is found by groups \['a', 'b'\]",
    ),
  ],
)
def test_bad_group_rules_name_the_argument(make, message):
  with pytest.raises(ValueError, match=message):
    make()


def test_optimizers_that_cannot_be_grouped_are_refused():
  groups = param_groups_lib.rules(HEAD).resolve({"Dense_0": {"kernel": jnp.zeros((2, 2))}})
  with pytest.raises(ValueError, match=r"param_groups take an optimizer of \['sgd'"):
    optimizers.make_optimizer("prodigy", param_groups=groups)
  e = experiment_lib.parse(smoke_config(param_groups=HEAD))
  with pytest.raises(ValueError, match="config.param_groups needs param_groups"):
    build.build_optimizer(e)
