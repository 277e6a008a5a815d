"""A config is checked once, where it enters: every field of an experiment, of a study, of its
tuning and of an arm's overrides refuses a bad value in one line naming it, before anything
trains; nothing a config defines is dropped or overridden without a word."""

import json
import os

import pytest

from lrjax.compare import runner
from lrjax.config import experiment, study, tune
from lrjax.config.checks import ConfigError
from lrjax.config.values import Fields
from lrjax.configs import smoke, study_smoke

# One bad value for every field of an experiment, and what its message says.
BAD = {
  "model": ("resnet9000", "config.model must be one of"),
  "stem": ("tiny", "config.stem must be one of ['cifar', 'imagenet'], got 'tiny'"),
  "half_precision": (1, "config.half_precision must be true or false, got 1"),
  "dataset": ("", "config.dataset must be a built-in dataset name"),
  "data_dir": (None, "config.data_dir must be text, got None"),
  "train_split": ("", "config.train_split must be non-empty text"),
  "test_split": (3, "config.test_split must be non-empty text, got 3"),
  "validation_fraction": (1.0, "config.validation_fraction must be a number in [0, 1), got 1.0"),
  "validation_split": (0, "config.validation_split must be text, got 0"),
  "train_limit": (-1, "config.train_limit must be an integer >= 0, got -1"),
  "augment": ("yes", "config.augment must be true or false, got 'yes'"),
  "pad": (1.5, "config.pad must be an integer >= 0, got 1.5"),
  "flip": (None, "config.flip must be true or false, got None"),
  "optimizer": ("lion", "config.optimizer must be one of ['sgd', 'adam', 'adamw'"),
  "momentum": (-0.9, "config.momentum must be a finite number >= 0, got -0.9"),
  "nesterov": ("false", "config.nesterov must be true or false, got 'false'"),
  "weight_decay": (float("inf"), "config.weight_decay must be a finite number >= 0, got inf"),
  "batch_size": (0, "config.batch_size must be a positive integer, got 0"),
  "num_epochs": (True, "config.num_epochs must be a positive integer, got True"),
  "schedule": ({"value": 0.1}, "config.schedule must be a schedule config with a 'name'"),
  "optimizer_schedules": (
    {"lr": {"name": "constant", "value": 0.1}},
    "config.optimizer_schedules.lr: lrjax schedules ['momentum', 'weight_decay', 'b1', 'b2']",
  ),
  "plateau": ({"patience": 0}, "config.plateau.patience must be a positive integer, got 0"),
  "param_groups": (
    {"head": {"match": "^Dense_", "lr_scale": 0}},
    "config.param_groups.head.lr_scale must be a finite number > 0, got 0",
  ),
  "batch_ramp": (
    {"stages": [[0, 16]], "lr_rule": "cubic"},
    "config.batch_ramp.lr_rule must be one of ['none', 'linear', 'sqrt'], got 'cubic'",
  ),
  "tokens_per_sample": (0, "config.tokens_per_sample must be a positive integer, got 0"),
  "seed": (-1, "config.seed must be an integer >= 0, got -1"),
  "eval_batch_size": (0, "config.eval_batch_size must be a positive integer, got 0"),
  "checkpoint_every_epochs": (0, "config.checkpoint_every_epochs must be a positive integer"),
  "checkpoint_every_steps": (-5, "config.checkpoint_every_steps must be an integer >= 0"),
  "keep_checkpoints": (0, "config.keep_checkpoints must be a positive integer, got 0"),
  "log_every_steps": (0, "config.log_every_steps must be a positive integer, got 0"),
  "progress": (0, "config.progress must be true or false, got 0"),
  "tensorboard": ("no", "config.tensorboard must be true or false, got 'no'"),
  "snapshot_ensemble": (1, "config.snapshot_ensemble must be true or false, got 1"),
  "bn_recompute_batches": (0, "config.bn_recompute_batches must be a positive integer, got 0"),
  "runtime": ({"threads": -1}, "config.runtime.threads must be an integer >= 0"),
  "user": ([1], "config.user must be a dict, got [1]"),
}


def _one_line(error: pytest.ExceptionInfo, message: str) -> None:
  assert message in str(error.value), str(error.value)
  assert "\n" not in str(error.value)


def test_every_field_of_an_experiment_has_a_bad_value_here():
  assert set(BAD) == set(experiment.CHECKS)


@pytest.mark.parametrize("field", sorted(BAD))
def test_a_bad_value_of_any_field_is_one_line_naming_it(field):
  config = smoke.get_config().to_dict()
  config[field] = BAD[field][0]
  with pytest.raises(ConfigError) as error:
    experiment.parse(config)
  _one_line(error, BAD[field][1])


@pytest.mark.parametrize("field", sorted(set(BAD) - {"runtime"}))
def test_a_bad_value_in_an_arm_s_overrides_names_the_arm_and_the_field(field):
  config = study_smoke.get_config().to_dict()
  config["study"]["arms"] = {"linear": {field: BAD[field][0]}}
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(error, BAD[field][1].replace("config.", "config.study.arms.linear.", 1))


def test_an_arm_may_not_change_the_study_s_runtime():
  config = study_smoke.get_config().to_dict()
  config["study"]["arms"] = {"linear": {"runtime": {"threads": 2}}}
  with pytest.raises(ConfigError, match=r"config.study.arms.linear.runtime: every arm of a study"):
    study.parse(config)


def test_a_field_an_experiment_does_not_have_is_named_in_an_arm_too():
  config = study_smoke.get_config().to_dict()
  config["study"]["arms"] = {"linear": {"learning_rate": 0.1}}
  with pytest.raises(ConfigError, match=r"config.study.arms.linear: the config has no field"):
    study.parse(config)


# One bad value for every field of a study, and what its message says.
STUDY_BAD = {
  "schedules": ([1], "config.study.schedules must map arm names to schedules"),
  "arms": ({"a": 3}, "config.study.arms.a must be a dict of overrides, got 3"),
  "order": (["constant", "nope"], "config.study.order must list distinct names"),
  "labels": ({"constant": 1}, "config.study.labels must map arm names to text"),
  "seeds": ([0, 0], "config.study.seeds must not repeat a value, got [0, 0]"),
  "population": ("sometimes", "config.study.population must be one of"),
  "budgets": ([0], "config.study.budgets must be epochs >= 1, got [0]"),
  "tune": ({"lr_scale": [0]}, "config.study.tune.lr_scale must be positive numbers"),
  "train_fn": ("no_colon", "config.study.train_fn must be 'package.module:function'"),
  "steps_per_epoch": (0, "config.study.steps_per_epoch must be an integer >= 1"),
  "test": ("wilcoxon", "config.study.test must be one of ['t', 'permutation'], got 'wilcoxon'"),
  "margin": (-0.1, "config.study.margin must be a number in [0, 1), got -0.1"),
}


def test_every_field_of_a_study_has_a_bad_value_here():
  assert set(STUDY_BAD) == set(study.FIELDS)


@pytest.mark.parametrize("field", sorted(STUDY_BAD))
def test_a_bad_study_field_is_one_line_naming_it(field):
  config = study_smoke.get_config().to_dict()
  config["study"][field] = STUDY_BAD[field][0]
  if field == "steps_per_epoch":
    config["study"]["train_fn"] = "function_fns:train"
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(error, STUDY_BAD[field][1])


def test_a_bad_tuning_grid_value_names_the_grid_and_the_point():
  config = study_smoke.get_config().to_dict()
  config["validation_fraction"] = 0.125
  config["study"]["tune"] = {"lr_scale": [1.0], "grid": {"batch_size": [32, 0]}}
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(error, "config.study.tune.grid (batch_size) at lr_1-batch_size_0:")
  assert "batch_size must be a positive integer, got 0" in str(error.value)


def test_an_arm_left_out_of_the_order_is_refused_not_dropped():
  config = study_smoke.get_config().to_dict()
  config["study"]["order"] = ["constant", "linear"]
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(error, "config.study.order leaves out ['cosine'], which config.study.arms")


def test_a_bad_config_is_refused_before_anything_trains(tmp_path):
  config = study_smoke.get_config()
  config.study.arms = {"cosine": {"weight_decay": -1.0}}
  with pytest.raises(ConfigError, match=r"config.study.arms.cosine.weight_decay must be"):
    runner.compare(config, str(tmp_path), quiet=True)
  assert not os.path.exists(tmp_path / "runs") and not os.path.exists(tmp_path / "study.json")


def test_a_study_never_overrides_a_field_the_user_set():
  config = study_smoke.get_config()
  config.snapshot_ensemble = False
  parsed = study.parse(config)
  assert all(not parsed.run(n, 0).snapshot_ensemble for n in parsed.names)


def test_an_experiment_is_frozen_and_replaced_with_checks():
  parsed = experiment.Experiment.of(smoke.get_config())
  with pytest.raises(AttributeError):
    parsed.batch_size = 64
  with pytest.raises(AttributeError, match="read-only"):
    parsed.schedule.name = "constant"
  assert parsed.replace({"batch_size": 64}).batch_size == 64 and parsed.batch_size == 32
  assert isinstance(parsed.user, Fields) and experiment.Experiment.of(parsed) is parsed
  assert experiment.parse(parsed.to_dict()) == parsed  # what config.json records reads back


def test_every_default_is_in_one_place():
  """`Experiment.default()` is `lrjax.configs.default` parsed; no field has another default."""
  from lrjax.configs import default

  assert experiment.Experiment.default().to_dict() == {
    **default.get_config().to_dict(),
    "user": {},
  }
  missing = default.get_config().to_dict()
  del missing["validation_fraction"]
  with pytest.raises(ConfigError, match="config has no field 'validation_fraction'; start from"):
    experiment.parse(missing)


def test_a_tune_grid_point_names_its_overrides():
  t = tune.parse({"lr_scale": [1.0], "grid": {"weight_decay": [0.0, 1e-4]}}, (0,))
  assert [p.id for p in t.points()] == ["lr_1-weight_decay_0.0", "lr_1-weight_decay_0.0001"]


def test_an_arm_that_changes_a_shared_setting_says_why_or_is_refused():
  config = study_smoke.get_config().to_dict()
  config["study"]["arms"] = {"linear": {"weight_decay": 0.0}}
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(error, "config.study.arms.linear sets weight_decay=0.0 where every arm shares 0.0005")
  assert "config.study.arms.linear.why.weight_decay" in str(error.value)
  config["study"]["arms"] = {"linear": {"weight_decay": 0.0, "why": {"weight_decay": "a test"}}}
  parsed = study.parse(config)
  assert parsed.reasons("linear") == {"weight_decay": "a test"}
  assert parsed.run("linear", 0).weight_decay == 0.0 and parsed.schedule_only() is False
  # What an arm is, its schedule and optimizer, needs no reason; the study's own value none.
  config["study"]["arms"] = {"linear": {"optimizer": "adam", "weight_decay": 5e-4}}
  assert study.parse(config).run("linear", 0).optimizer == "adam"
  config["study"]["arms"] = {"linear": {"why": {"weight_decay": ""}}}
  with pytest.raises(ConfigError, match=r"config.study.arms.linear.why must map a field"):
    study.parse(config)


A_SCHEDULE = {"name": "cosine_decay", "init_value": 5e-4, "decay_steps": {"fraction": 1.0}}


@pytest.mark.parametrize(
  "optimizer, names",
  [
    ("sgd", ["momentum", "weight_decay"]),
    ("mechanize", ["momentum", "weight_decay"]),
    ("adam", ["b1", "b2", "weight_decay"]),
    ("adamw", ["b1", "b2", "weight_decay"]),
    ("schedule_free_sgd", ["weight_decay"]),
    ("prodigy", ["weight_decay"]),
  ],
)
def test_an_optimizer_schedule_is_refused_where_the_optimizer_lacks_it(optimizer, names):
  config = smoke.get_config().to_dict()
  config["optimizer"] = optimizer
  config["optimizer_schedules"] = {n: A_SCHEDULE for n in names}
  assert sorted(experiment.parse(config).optimizer_schedules) == sorted(names)
  for name in sorted({"momentum", "weight_decay", "b1", "b2"} - set(names)):
    config["optimizer_schedules"] = {name: A_SCHEDULE}
    with pytest.raises(ConfigError) as error:
      experiment.parse(config)
    _one_line(
      error, f"config.optimizer_schedules.{name}: config.optimizer={optimizer!r} has no {name}"
    )


@pytest.mark.parametrize(
  "value, message, detail",
  [
    ([1], "config.optimizer_schedules must be a dict, got [1]", ""),
    ({"momentum": 0.9}, "config.optimizer_schedules.momentum must be a schedule config", ""),
    ({"momentum": {"value": 0.9}}, "config.optimizer_schedules.momentum must be a schedule", ""),
    ({"momentum": {"name": "nope"}}, "config.optimizer_schedules.momentum: ", "nope"),
    (
      {"weight_decay": {**A_SCHEDULE, "decay_steps": {"epochs": -1}}},
      "config.optimizer_schedules.weight_decay: ",
      "decay_steps must be a non-negative number of epochs, got -1",
    ),
  ],
)
def test_a_bad_optimizer_schedule_is_one_line_naming_it(value, message, detail):
  config = smoke.get_config().to_dict()
  config["optimizer_schedules"] = value
  with pytest.raises(ConfigError) as error:
    experiment.parse(config)
  _one_line(error, message)
  assert detail in str(error.value)


def test_optimizer_schedules_are_optional_recorded_and_read_back():
  config = smoke.get_config().to_dict()
  assert "optimizer_schedules" not in config
  parsed = experiment.parse(config)
  assert parsed.optimizer_schedules == {} and "optimizer_schedules" not in parsed.to_dict()
  assert experiment.parse({**config, "optimizer_schedules": {}}) == parsed
  config["optimizer_schedules"] = {"weight_decay": A_SCHEDULE}
  parsed = experiment.parse(config)
  assert parsed.to_dict()["optimizer_schedules"] == {"weight_decay": A_SCHEDULE}
  assert experiment.parse(json.loads(json.dumps(parsed.to_dict()))) == parsed
  with pytest.raises(AttributeError, match="read-only"):
    parsed.optimizer_schedules.weight_decay.init_value = 0.1


def test_an_arm_s_optimizer_schedules_are_its_own_and_checked_with_its_optimizer():
  config = study_smoke.get_config().to_dict()
  config["study"]["arms"] = {"linear": {"optimizer_schedules": {"weight_decay": A_SCHEDULE}}}
  parsed = study.parse(config)  # what an arm is: no reason needed
  assert parsed.run("linear", 0).optimizer_schedules.weight_decay.name == "cosine_decay"
  assert not parsed.run("cosine", 0).optimizer_schedules and parsed.schedule_only() is False
  config["optimizer_schedules"] = {"momentum": A_SCHEDULE}
  config["study"]["arms"] = {"linear": {"optimizer": "adam"}}
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(
    error,
    "config.study.arms.linear.optimizer_schedules.momentum: "
    "config.study.arms.linear.optimizer='adam' has no momentum",
  )


HEAD = {"match": "^Dense_", "lr_scale": 10.0}


@pytest.mark.parametrize(
  "value, changes, message",
  [
    ([1], {}, "config.param_groups must be a dict, got [1]"),
    ({"head": 3}, {}, "config.param_groups.head must be a dict, got 3"),
    ({"head": {"lr_scale": 10.0}}, {}, "config.param_groups.head must have a 'match'"),
    ({"head": {**HEAD, "lr": 1}}, {}, "config.param_groups.head takes ['match', 'lr_scale', "),
    ({"head": {**HEAD, "match": ""}}, {}, "config.param_groups.head.match must be a regular"),
    ({"head": {**HEAD, "match": "("}}, {}, "config.param_groups.head.match='(' is not a regular"),
    ({"head": {**HEAD, "match": "^Nothing"}}, {}, "config.param_groups.head.match='^Nothing' "),
    ({"head": {**HEAD, "lr_scale": -1}}, {}, "config.param_groups.head.lr_scale must be a finite"),
    ({"head": {**HEAD, "lr_scale": "10"}}, {}, "config.param_groups.head.lr_scale must be a"),
    ({"head": {**HEAD, "weight_decay": -1e-4}}, {}, "config.param_groups.head.weight_decay must"),
    ({"rest": HEAD}, {}, "config.param_groups.rest: a group's name is an identifier other than"),
    ({"a-b": HEAD}, {}, "config.param_groups.a-b: a group's name is an identifier"),
    (
      {"head": HEAD, "kernels": {"match": "kernel$"}},
      {},
      "config.param_groups.head.match and config.param_groups.kernels.match both find "
      "Dense_0/kernel: a parameter belongs to one group",
    ),
    ({"layer_decay": 0.0}, {}, "config.param_groups.layer_decay must be a number in (0, 1], got 0"),
    ({"layer_decay": 1.5}, {}, "config.param_groups.layer_decay must be a number in (0, 1]"),
    ({"layer_decay": True}, {}, "config.param_groups.layer_decay must be a number in (0, 1]"),
    (
      {"layer_decay": 0.75},
      {"model": "convnet"},
      "config.param_groups.layer_decay: config.model='convnet' has no layer depths",
    ),
    ({"weight_decay_on": "biases"}, {}, "config.param_groups.weight_decay_on must be one of"),
    (
      {"head": HEAD},
      {"optimizer": "prodigy"},
      "config.param_groups: config.optimizer='prodigy' cannot group its parameters",
    ),
  ],
)
def test_bad_param_groups_are_one_line_naming_the_field(value, changes, message):
  config = {**smoke.get_config().to_dict(), **changes, "param_groups": value}
  with pytest.raises(ConfigError) as error:
    experiment.parse(config)
  _one_line(error, message)


def test_a_pattern_that_finds_nothing_lists_the_model_s_parameters():
  config = {**smoke.get_config().to_dict(), "param_groups": {"head": {"match": "^fc"}}}
  with pytest.raises(ConfigError, match=r"whose parameters are BasicBlock_0/.*conv_init/kernel"):
    experiment.parse(config)


def test_param_groups_are_optional_recorded_and_read_back():
  config = smoke.get_config().to_dict()
  parsed = experiment.parse(config)
  assert parsed.param_groups == {} and "param_groups" not in parsed.to_dict()
  assert experiment.parse({**config, "param_groups": {}}) == parsed
  groups = {"head": HEAD, "layer_decay": 0.75, "weight_decay_on": "all"}
  parsed = experiment.parse({**config, "param_groups": groups})
  assert parsed.to_dict()["param_groups"] == groups
  assert experiment.parse(json.loads(json.dumps(parsed.to_dict()))) == parsed


def test_an_arm_s_param_groups_are_its_own_and_checked_with_its_model():
  config = study_smoke.get_config().to_dict()
  config["study"]["arms"] = {"linear": {"param_groups": {"head": HEAD}}}
  parsed = study.parse(config)  # what an arm is: no reason needed
  assert parsed.run("linear", 0).param_groups.head.lr_scale == 10.0
  assert not parsed.run("cosine", 0).param_groups and parsed.schedule_only() is False
  config["study"]["arms"] = {
    "linear": {"param_groups": {"layer_decay": 0.5}, "model": "convnet", "why": {"model": "x"}}
  }
  with pytest.raises(ConfigError) as error:
    study.parse(config)
  _one_line(error, "config.study.arms.linear.param_groups.layer_decay: ")
