"""`Experiment`: one training run's config, typed and checked once, where it enters lrjax.

A config file or the command line gives an `ml_collections.ConfigDict` (`lrjax.config.load`);
`parse` turns it into an `Experiment`, checking every field (one `ConfigError` naming the first
bad one, before anything loads or compiles), and everything below (the engine, the range test,
a study's runs) takes the `Experiment`. Its defaults are those of `lrjax.configs.default`, the
one place they are written: a config starts from it, and `Experiment.default()` is it, parsed.

An `Experiment` is frozen: a study's run is `experiment.replace({...}, where=...)`, which checks
the fields it changes under the name the user wrote them (`config.study.arms.cosine.batch_size`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from lrjax.config import batch_ramp as batch_ramp_lib
from lrjax.config import checks
from lrjax.config import param_groups as param_groups_lib
from lrjax.config import plateau as plateau_lib
from lrjax.config.checks import ConfigError
from lrjax.config.durations import resolve_schedule
from lrjax.config.values import Fields, frozen, plain
from lrjax.import_path import is_import_path
from lrjax.runtime.spec import Spec

# Fields of a config beside the experiment's own: a study's, and the user's (under `user`).
STUDY = "study"
# Fields a config may leave out: empty (None for `tokens_per_sample`) then. All but `user` are
# also left out of a run's record where empty, so that a record without them (an older run's)
# matches a config without them.
OPTIONAL = (
  "optimizer_schedules",
  "plateau",
  "param_groups",
  "batch_ramp",
  "tokens_per_sample",
  "user",
)


def _model(value: Any, where: str) -> str:
  from lrjax.models import registry  # flax: only once a config is checked

  if value not in registry.model_names() and not is_import_path(value):
    names = list(registry.model_names())
    raise checks.fail(where, value, f"one of {names} or 'package.module:Class'")
  return value


def _stems() -> tuple[str, ...]:
  from lrjax.models import resnet

  return resnet.STEMS


def _optimizers() -> tuple[str, ...]:
  from lrjax import optimizers

  return optimizers.OPTIMIZERS


def _dataset(value: Any, where: str) -> str:
  if not isinstance(value, str) or not value:
    raise checks.fail(
      where, value, "a built-in dataset name, a tfds name or 'package.module:function'"
    )
  return value


def _resolves(value: Fields, where: str, tokens_per_sample: int | None = 1) -> None:
  try:  # every duration resolves and the schedule builds: checked now, not after minutes
    # The real batch size comes later; tokens are checked against their size with the others.
    resolve_schedule(value, 1000, 1000, samples_per_step=1, tokens_per_sample=tokens_per_sample)
  except ValueError as e:
    raise ConfigError(f"{where}: {e}") from None


def _schedule(value: Any, where: str) -> Fields:
  if not isinstance(value, Mapping) and not hasattr(value, "to_dict"):
    raise checks.fail(where, value, "a schedule config with a 'name' (see lrjax.registry())")
  value = frozen(value)
  if "name" not in value:
    raise checks.fail(where, plain(value), "a schedule config with a 'name' (see lrjax.registry())")
  _resolves(value, where)
  return value


def _optimizer_schedules(value: Any, where: str) -> Fields:
  from lrjax import optimizers

  value = checks.mapping(value, where)
  for name, config in value.items():
    if name not in optimizers.HYPERPARAMETERS:
      raise ConfigError(
        f"{where}.{name}: lrjax schedules {list(optimizers.HYPERPARAMETERS)} of an optimizer, "
        f"not {name!r} (the learning rate's schedule is config.schedule)"
      )
    _schedule(config, f"{where}.{name}")
  return frozen(value)


def _runtime(value: Any, where: str) -> Spec:
  try:
    return Spec.of(value)  # its errors name config.runtime.FIELD
  except ValueError as e:
    raise ConfigError(str(e)) from None


def _tokens_per_sample(value: Any, where: str) -> int | None:
  return None if value is None else checks.count(1)(value, where)


def _user(value: Any, where: str) -> Fields:
  return frozen(checks.optional_mapping(value, where))


CHECKS: dict[str, Callable[[Any, str], Any]] = {
  "model": _model,
  "stem": checks.one_of(_stems),
  "half_precision": checks.flag,
  "dataset": _dataset,
  "data_dir": checks.text,
  "train_split": checks.nonempty_text,
  "test_split": checks.nonempty_text,
  "validation_fraction": checks.number(0.0, 1.0),
  "validation_split": checks.text,
  "train_limit": checks.count(0),
  "augment": checks.flag,
  "pad": checks.count(0),
  "flip": checks.flag,
  "optimizer": checks.one_of(_optimizers),
  "momentum": checks.number(),
  "nesterov": checks.flag,
  "weight_decay": checks.number(),
  "batch_size": checks.count(1),
  "num_epochs": checks.count(1),
  "schedule": _schedule,
  "optimizer_schedules": _optimizer_schedules,
  "plateau": plateau_lib.check,
  "param_groups": param_groups_lib.check,
  "batch_ramp": batch_ramp_lib.check,
  "tokens_per_sample": _tokens_per_sample,
  "seed": checks.count(0),
  "eval_batch_size": checks.count(1),
  "checkpoint_every_epochs": checks.count(1),
  "checkpoint_every_steps": checks.count(0),
  "keep_checkpoints": checks.count(1),
  "log_every_steps": checks.count(1),
  "progress": checks.flag,
  "tensorboard": checks.flag,
  "snapshot_ensemble": checks.flag,
  "bn_recompute_batches": checks.count(1),
  "runtime": _runtime,
  "user": _user,
}


@dataclasses.dataclass(frozen=True)
class Experiment:
  """One training run's config, checked (see the module docstring; `lrjax.configs.default`
  holds every default and says why each is what it is).

  Attributes:
    model: a built-in model's name, or your own "package.module:Class".
    stem: "cifar" (3x3 stride 1) or "imagenet" (7x7/2 and max-pool).
    half_precision: compute in bfloat16 (parameters stay float32).
    dataset: a built-in dataset, a tensorflow-datasets name, or "package.module:function".
    data_dir: where the dataset's files are ("": its default place).
    train_split: a tensorflow-datasets dataset's training split.
    test_split: its test split.
    validation_fraction: the share of the training split held out as validation data.
    validation_split: a tensorflow-datasets validation split ("": none).
    train_limit: train on the first N examples of each epoch's order (0: all).
    augment: pad-and-crop and flip on the device.
    pad: the padding of the random crop.
    flip: random horizontal flips.
    optimizer: "sgd", "adam", "adamw" or one of optax.contrib's (`lrjax.optimizers`).
    momentum: SGD's momentum.
    nesterov: Nesterov momentum.
    weight_decay: coupled L2 on kernels (decoupled for adamw).
    batch_size: examples per update, over all devices.
    num_epochs: epochs to train.
    schedule: the learning-rate schedule's config (`lrjax.from_config`, durations in
      `{"epochs"|"steps"|"fraction"|"samples"|"tokens": x}`).
    optimizer_schedules: other hyperparameters' schedules, by name: "momentum" ("sgd",
      "mechanize"), "b1" and "b2" ("adam", "adamw"), "weight_decay" (every optimizer; see
      `lrjax.optimizers.schedulable`) -> a schedule config as `schedule` is, e.g.
      `{"momentum": {"name": "linear_decay", "init_value": 0.95, "end_value": 0.85,
      "total_steps": {"fraction": 1.0}}}`. Update t uses `schedule(t)`, written before it as the
      learning rate is. A scheduled value replaces the fixed field (`momentum`, `weight_decay`),
      which is then not read: the fixed fields always hold a value (the defaults'), so a
      schedule overrides rather than conflicts. A name the optimizer does not have is refused.
      Default `{}`: none, and the run is the same program as without the field.
    plateau: reduce-on-plateau after the optimizer, driven by a validation metric
      (`lrjax.config.plateau`): `lrjax.plateau`'s settings, `metric` ("validation_loss" or
      "validation_accuracy") and `every_steps` (0: at each epoch's end). Default `{}`: none,
      and the run is the same program as without the field.
    param_groups: groups of parameters, each at a constant factor of the learning rate with its
      own weight decay (`lrjax.config.param_groups`): `{"head": {"match": "^Dense_",
      "lr_scale": 10.0}}`, `{"layer_decay": 0.75}`, `{"weight_decay_on": "all"}`. Default `{}`:
      none, and the run is the same program as without the field.
    batch_ramp: stages of the batch size (`lrjax.config.batch_ramp`): `{"stages": [[0, 64],
      [{"epochs": 2}, 128]], "lr_rule": "sqrt"}`; `batch_size` is then the base batch size the
      schedule's rates and steps refer to, and the schedule runs on the samples seen. Default
      `{}`: none, and the run is the same program as without the field.
    tokens_per_sample: the tokens of one example (a sequence's length), for durations in
      `{"tokens": n}`. Default None: durations in tokens are refused.
    seed: the seed of the initialisation, the data order and the augmentation noise.
    eval_batch_size: examples per evaluation batch.
    checkpoint_every_epochs: checkpoint every that many epochs.
    checkpoint_every_steps: also checkpoint every that many steps (0: only at epochs).
    keep_checkpoints: the newest checkpoints kept.
    log_every_steps: fetch the metrics every that many steps.
    progress: a progress line on stderr.
    tensorboard: TensorBoard events in the run's `tb/`.
    snapshot_ensemble: keep test predictions at each cycle's end and report their ensemble.
    bn_recompute_batches: training batches that recompute BatchNorm statistics at a
      schedule-free optimizer's averaged weights.
    runtime: what the process computes with (`lrjax.runtime.Spec`).
    user: fields of your own, which lrjax never reads.
  """

  model: str
  stem: str
  half_precision: bool
  dataset: str
  data_dir: str
  train_split: str
  test_split: str
  validation_fraction: float
  validation_split: str
  train_limit: int
  augment: bool
  pad: int
  flip: bool
  optimizer: str
  momentum: float
  nesterov: bool
  weight_decay: float
  batch_size: int
  num_epochs: int
  schedule: Fields
  optimizer_schedules: Fields
  plateau: Fields
  param_groups: Fields
  batch_ramp: Fields
  tokens_per_sample: int | None
  seed: int
  eval_batch_size: int
  checkpoint_every_epochs: int
  checkpoint_every_steps: int
  keep_checkpoints: int
  log_every_steps: int
  progress: bool
  tensorboard: bool
  snapshot_ensemble: bool
  bn_recompute_batches: int
  runtime: Spec
  user: Fields

  @classmethod
  def default(cls) -> Experiment:
    """`lrjax.configs.default`, parsed: the chapter's experiment."""
    from lrjax.configs import default

    return parse(default.get_config())

  @classmethod
  def of(cls, config: Any) -> Experiment:
    """`config` itself if it is an `Experiment`, else `parse(config)`.

    Args:
      config: an `Experiment`, or a config to check.
    """
    return config if isinstance(config, Experiment) else parse(config)

  def replace(self, changes: Mapping[str, Any], where: str = "config") -> Experiment:
    """A copy with `changes`, each checked and named `{where}.{field}`.

    Args:
      changes: field -> its new value.
      where: how the changes were written (`config`, `config.study.arms.cosine`).

    Raises:
      ConfigError: a field an experiment does not have, or a value it cannot take.
    """
    out = {}
    for field, value in changes.items():
      if field not in CHECKS:
        raise ConfigError(f"{where}: the config has no field {field!r}")
      out[field] = CHECKS[field](value, f"{where}.{field}")
    replaced = dataclasses.replace(self, **out)
    _check_together(replaced, where)
    return replaced

  def to_dict(self) -> dict[str, Any]:
    """Plain values, as a run's `config.json` records them."""
    out = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
    out["runtime"] = self.runtime.to_dict()
    if not self.optimizer_schedules:
      del out["optimizer_schedules"]
    if not self.plateau:
      del out["plateau"]
    for name in ("param_groups", "batch_ramp", "tokens_per_sample"):
      if out[name] in ({}, None):  # as above: a record without it matches a config without it
        del out[name]
    return out


def parse(config: Any, where: str = "config") -> Experiment:
  """The `Experiment` of `config`.

  Args:
    config: an `ml_collections.ConfigDict` or a mapping with the fields of
      `lrjax.configs.default` (a `study` field is left to `lrjax.config.study.parse`).
    where: how the config is named in a message.

  Raises:
    ConfigError: a field missing, unknown or holding a value lrjax cannot take, naming it.

  Example:
    >>> from lrjax.config import experiment
    >>> from lrjax.configs import smoke
    >>> exp = experiment.parse(smoke.get_config())
    >>> exp.model, exp.batch_size, exp.schedule.name
    ('tiny', 32, 'linear_decay')
    >>> exp.replace({"batch_size": 0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lrjax.config.checks.ConfigError: config.batch_size must be a positive integer, got 0 ...
  """
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise ConfigError(f"{where} must be a config dict, got {type(config).__name__}")
  unknown = sorted(set(config) - set(CHECKS) - {STUDY})
  if unknown:
    raise ConfigError(
      f"{where} sets {where}.{unknown[0]}, which lrjax does not know; put fields of your own "
      f"under {where}.user"
    )
  fields = {}
  for name, check in CHECKS.items():
    if name not in config:
      if name in OPTIONAL:
        fields[name] = None if name == "tokens_per_sample" else Fields()
        continue
      raise ConfigError(
        f"{where} has no field {name!r}; start from lrjax.configs.default (configs/default.py)"
      )
    fields[name] = check(config[name], f"{where}.{name}")
  experiment = Experiment(**fields)
  _check_together(experiment, where)
  return experiment


def _check_together(e: Experiment, where: str) -> None:
  """The checks that read two fields at once."""
  from lrjax import optimizers

  allowed = optimizers.schedulable(e.optimizer)
  for name in e.optimizer_schedules:
    if name not in allowed:
      raise ConfigError(
        f"{where}.optimizer_schedules.{name}: {where}.optimizer={e.optimizer!r} has no {name} a "
        f"schedule may drive (it has {list(allowed)}; see lrjax.optimizers)"
      )
  if e.validation_split and e.validation_split in (e.train_split, e.test_split):
    raise ConfigError(
      f"{where}.validation_split={e.validation_split!r} is the training or test split: "
      "validation data must be neither"
    )
  if e.tokens_per_sample is None:  # durations in tokens need their size
    _resolves(e.schedule, f"{where}.schedule", None)
    for name, config in e.optimizer_schedules.items():
      _resolves(config, f"{where}.optimizer_schedules.{name}", None)
  plateau_lib.check_together(e, where)
  param_groups_lib.check_together(e, where)
  batch_ramp_lib.check_together(e, where)
