"""`Study`: a study config (`config.study`), typed and checked once, with every run it implies.

* Arms. `config.study.arms` maps an arm's name to config overrides (any field but `runtime`:
  `schedule`, `optimizer`, `batch_size`, ...); `config.study.schedules` maps a name to a schedule
  config and is shorthand for an arm that overrides the schedule only (the chapter's study). Both
  may be given. Arms are set up alike: what an arm is (its `schedule`, `optimizer_schedules`,
  `plateau`, `param_groups`, `optimizer`, `wsd_fork`, and `user` fields of your own) is its own,
  but every other field is the study's, shared by every arm (weight decay, momentum, batch size,
  augmentation, ...); an arm that sets one to another value must say why beside it, `"why":
  {"weight_decay": "the authors' setting"}`, or the study is refused in one line naming the arm
  and the setting.
  `config.study.order` lists every arm in column order, the first being the baseline of the
  paired comparison (default: sorted names); an arm it leaves out is refused, not dropped.
  `config.study.labels` maps an arm's name to the name its tables and figures show (default:
  the name, underscores as spaces). Every arm of a seed starts from the same weights and sees
  the same data order, whatever it overrides: both derive from the seed alone.
* Budgets. `config.study.budgets` lists training lengths in epochs; every arm is trained at
  every budget (its `num_epochs`), and durations written as `{"fraction": f}` scale with it.
* Tuning. `config.study.tune` (`lrjax.config.tune`) trains each arm at each point of a grid first
  and the study at each arm's point chosen on validation data (`lrjax.compare.tuning`).
* A training function. `config.study.train_fn = "package.module:function"` trains every run with
  the user's own function instead of lrjax's engine (`lrjax.function`), with schedules in epochs
  resolved by `config.study.steps_per_epoch`.
* Forks. An arm `{"wsd_fork": {"peak_value": p, "warmup_epochs": w, "cooldown": f,
  "decay_shape": "1-sqrt"}}` is warmup-stable-decay with a cooldown of the last fraction f of each
  budget. With budgets, its warmup and stable phase train once per seed (the *trunk*, as long as
  the latest cooldown start) and each budget's run forks off the trunk's checkpoint where its
  cooldown starts: the same run as an independent one, for a fraction of the compute.
* Population. `config.study.population`: "auto" (default), "always" or "never": whether a seed's
  arms that differ in their schedule alone train as one vmapped program (`lrjax.train.strategy`).
* The tests, declared before any result is read (`lrjax.stats.paired`): `config.study.test`, the
  difference test the verdicts read, "t" (the paired t-test, default) or "permutation" (the exact
  sign-flip test); `config.study.margin`, the equivalence margin of an accuracy (default 0.005,
  half a point; 0: no equivalence test).

`parse` checks all of it, and builds every arm's run at the first seed and budget (and every
tuning point), so an arm's bad override is one line naming it before anything trains.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from lrjax.config import checks, experiment, study_arms, tune
from lrjax.config.checks import ConfigError
from lrjax.config.experiment import Experiment
from lrjax.config.values import Fields, frozen, plain
from lrjax.runtime.spec import Spec
from lrjax.stats.paired import ACCURACY_MARGIN, TESTS

FIELDS = (
  "schedules",
  "arms",
  "order",
  "labels",
  "seeds",
  "population",
  "budgets",
  "tune",
  "train_fn",
  "steps_per_epoch",
  "test",
  "margin",
)
POPULATION = ("auto", "always", "never")
FORK = study_arms.FORK
WHY = study_arms.WHY


@dataclasses.dataclass(frozen=True)
class Study:
  """A checked study config (see the module docstring).

  Attributes:
    experiment: the config without its `study`: every arm's starting point, and the runtime
      every run of the study runs under.
    names: the arms, in column order (the first is the baseline).
    seeds: the seeds every arm trains with.
    arms: arm name -> its config overrides (a `wsd_fork` arm's fork spec under "wsd_fork").
    budgets: epochs; () for a study at `experiment.num_epochs` alone.
    labels: arm name -> the name its tables and figures show.
    tune: the tuning grid, or None.
    train_fn: the user's training function ("package.module:function"), or None for the engine.
    steps_per_epoch: the training function's updates per epoch (None without one).
    population: "auto", "always" or "never".
    test: the difference test the verdicts read, "t" or "permutation".
    margin: the equivalence margin of an accuracy (0: none).
    source: `config.study` as given (what `study.json` records).
  """

  experiment: Experiment
  names: tuple[str, ...]
  seeds: tuple[int, ...]
  arms: Fields
  budgets: tuple[int, ...]
  labels: Fields
  tune: tune.Tune | None
  train_fn: str | None
  steps_per_epoch: int | None
  population: str
  test: str
  margin: float
  source: Fields

  @classmethod
  def of(cls, config: Any) -> Study:
    """`config` itself if it is a `Study`, else `parse(config)`.

    Args:
      config: a `Study`, or a study config to check.
    """
    return config if isinstance(config, Study) else parse(config)

  def fork(self, name: str) -> Fields | None:
    """The `wsd_fork` spec of an arm, or None.

    Args:
      name: the arm.
    """
    return self.arms[name].get(FORK)

  def forked(self, name: str) -> bool:
    """Whether an arm trains a trunk once per seed and forks each budget off it.

    Args:
      name: the arm.
    """
    return self.fork(name) is not None and bool(self.budgets)

  def schedule_only(self) -> bool:
    """True when the arms differ in their schedule alone (the population mode applies)."""
    return all(set(arm) - {WHY} <= {"schedule"} for arm in self.arms.values())

  def reasons(self, name: str) -> dict[str, str]:
    """The arm's reasons for the shared settings it changes (`why`), field -> text.

    Args:
      name: the arm.
    """
    return dict(self.arms[name].get(WHY) or {})

  def budget_list(self) -> tuple[int | None, ...]:
    """The budgets, or (None,) for a study at `experiment.num_epochs` alone."""
    return self.budgets or (None,)

  def with_runtime(self, spec: Spec) -> Study:
    """This study with its runtime resolved.

    Args:
      spec: the resolved runtime (`lrjax.runtime.Spec`).
    """
    return dataclasses.replace(self, experiment=dataclasses.replace(self.experiment, runtime=spec))

  def to_dict(self) -> dict[str, Any]:
    """The whole config, as `study.json` records it (and `parse` reads it back)."""
    return {**self.experiment.to_dict(), "study": plain(self.source)}

  def run(
    self, name: str, seed: int, budget: int | None = None, point: tune.Point | None = None
  ) -> Experiment:
    """The run of an arm: the study's experiment with the arm's overrides, the seed, the budget,
    and a tuning point's fields and factor of the schedule.

    Args:
      name: the arm.
      seed: the run's seed.
      budget: its epochs (None: the experiment's `num_epochs`).
      point: its tuning point, or None.

    Raises:
      ConfigError: an override the experiment cannot take, naming it.
    """
    arm = {k: v for k, v in self.arms[name].items() if k != WHY}
    where = f"config.study.arms.{name}"
    if point is not None:
      arm |= dict(point.overrides)
      if FORK in arm:  # its peak is the factor's to scale
        fork = arm[FORK]
        arm[FORK] = {**fork, "peak_value": fork["peak_value"] * point.lr_scale}
    base = self.experiment.replace({"seed": seed}, where)
    if budget is not None:
      base = base.replace({"num_epochs": budget}, "config.study.budgets")
    fork = arm.pop(FORK, None)
    if fork is not None:
      arm["schedule"] = wsd_schedule(fork, base.num_epochs)
    run = base.replace(arm, where)
    if point is not None and fork is None:
      run = run.replace({"schedule": scaled(run.schedule, point.lr_scale)}, where)
    return run

  def trunk(self, name: str, seed: int) -> Experiment:
    """The trunk of a forked arm: its warmup and stable phase, as long as the latest cooldown
    start (in whole epochs, so a fork may start within its last epoch).

    Args:
      name: the forked arm.
      seed: the trunk's seed.
    """
    spec = self.fork(name)
    epochs = math.ceil(max(self.budgets) * (1 - spec["cooldown"]))
    run = self.run(name, seed, epochs)
    return run.replace({"schedule": wsd_schedule(spec, epochs, decay_epochs=0)})


def wsd_schedule(spec: Mapping[str, Any], epochs: float, decay_epochs: float | None = None) -> dict:
  """The warmup-stable-decay schedule config of a fork arm.

  Args:
    spec: the arm's `wsd_fork` (peak_value, cooldown, warmup_epochs, decay_shape, end_value).
    epochs: the run's epochs.
    decay_epochs: the cooldown's epochs (default: `cooldown` of `epochs`; 0 for a trunk).
  """
  warmup = spec.get("warmup_epochs", 0)
  decay = spec["cooldown"] * epochs if decay_epochs is None else decay_epochs
  return {
    "name": "warmup_stable_decay",
    "peak_value": spec["peak_value"],
    "warmup_steps": {"epochs": warmup},
    "stable_steps": {"epochs": epochs - decay - warmup},
    "decay_steps": {"epochs": decay} if decay else {"steps": 1},
    "end_value": spec.get("end_value", 0.0),
    "decay_shape": spec.get("decay_shape", "1-sqrt"),
  }


def scaled(schedule: Any, factor: float) -> dict[str, Any]:
  """A schedule config multiplied by a factor (the `scale` schedule around it).

  Args:
    schedule: the schedule config.
    factor: the factor.
  """
  return {"name": "scale", "schedule": plain(schedule), "factor": factor}


def parse(config: Any) -> Study:
  """The `Study` of a study config.

  Args:
    config: the fields of `lrjax.configs.default` and `study` (an `ml_collections.ConfigDict`,
      or a mapping as `study.json` records it).

  Raises:
    ConfigError: naming the first bad field: of the experiment, of the study, of its tuning, or
      of an arm's overrides.
  """
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  source = config.get(experiment.STUDY) if isinstance(config, Mapping) else None
  if not isinstance(source, Mapping) or not ("schedules" in source or "arms" in source):
    raise ConfigError(
      "config.study must have 'arms' (name -> config overrides) or 'schedules' (name -> "
      "schedule config), and 'seeds'; see configs/study_fashion_mnist.py"
    )
  unknown = sorted(set(source) - set(FIELDS))
  if unknown:
    raise ConfigError(f"config.study has no field {unknown[0]!r}; its fields are {list(FIELDS)}")
  base = experiment.parse({k: v for k, v in config.items() if k != experiment.STUDY})
  study = frozen(source)
  arms = study_arms.arms(study)
  names = study_arms.order(study, arms)
  seeds = checks.seeds(study.get("seeds"), "config.study.seeds")
  budgets = checks.seeds(study.get("budgets", None) or (), "config.study.budgets", empty=True)
  if any(b < 1 for b in budgets):
    raise ConfigError(f"config.study.budgets must be epochs >= 1, got {list(budgets)}")
  labels = study.get("labels", None) or {}
  if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
    raise ConfigError(f"config.study.labels must map arm names to text, got {plain(labels)!r}")
  population = checks.one_of(POPULATION)(
    study.get("population", None) or "auto", "config.study.population"
  )
  train_fn, steps = _train_fn(study)
  out = Study(
    experiment=base,
    names=names,
    seeds=seeds,
    arms=Fields({n: arms[n] for n in names}),
    budgets=tuple(sorted(budgets)),
    labels=Fields({n: labels.get(n, n.replace("_", " ")) for n in names}),
    tune=tune.parse(study.get("tune", None), seeds),
    train_fn=train_fn,
    steps_per_epoch=steps,
    population=population,
    test=checks.one_of(TESTS)(study.get("test", None) or "t", "config.study.test"),
    margin=checks.number(0.0, 1.0)(study.get("margin", ACCURACY_MARGIN), "config.study.margin"),
    source=study,
  )
  study_arms.check(out)
  return out


def _train_fn(study: Fields) -> tuple[str | None, int | None]:
  path = study.get("train_fn", None)
  if path is None:
    return None, None
  if not isinstance(path, str) or path.count(":") != 1 or path.startswith(":"):
    raise ConfigError(f"config.study.train_fn must be 'package.module:function', got {path!r}")
  steps = study.get("steps_per_epoch", None)
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
    raise ConfigError(
      "config.study.steps_per_epoch must be an integer >= 1 with config.study.train_fn (the "
      f"function's updates per epoch, to resolve schedules in epochs), got {steps!r}"
    )
  return path, steps
