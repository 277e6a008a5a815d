"""What a study config asks for: arms, seeds, budgets, forks; and each run's config and folder.

* Arms. `config.study.arms` maps an arm's name to config overrides (any field: `schedule`,
  `optimizer`, `batch_size`, ...); `config.study.schedules` maps a name to a schedule config and
  is shorthand for an arm that overrides the schedule only (the chapter's study). Both may be
  given. `config.study.order` lists the arms in column order, the first being the baseline of
  the paired comparison (default: sorted names); `config.study.labels` maps an arm's name to the
  name its tables and figures show (default: the name, underscores as spaces). Every arm of a
  seed starts from the same weights and sees the same data order, whatever it overrides: both
  derive from the seed alone.
* Budgets. `config.study.budgets` lists training lengths in epochs; every arm is trained at
  every budget (its `num_epochs`), and durations written as `{"fraction": f}` scale with it.
* Tuning. `config.study.tune` trains each arm at each point of a grid first and the study at
  each arm's point chosen on validation data (`lrjax.compare.tuning`).
* A training function. `config.study.train_fn = "package.module:function"` trains every run with
  the user's own function instead of lrjax's engine (`lrjax.function`), with schedules
  in epochs resolved by `config.study.steps_per_epoch`.
* Forks. An arm `{"wsd_fork": {"peak_value": p, "warmup_epochs": w, "cooldown": f,
  "decay_shape": "1-sqrt"}}` is warmup-stable-decay with a cooldown of the last fraction f of each
  budget. With budgets, its warmup and stable phase train once per seed (the *trunk*, as long as
  the latest cooldown start) and each budget's run forks off the trunk's checkpoint where its
  cooldown starts: the same run as an independent one, for a fraction of the compute.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from typing import Any

from lrjax.compare import tuning

FORK_FIELDS = {"peak_value", "warmup_epochs", "cooldown", "decay_shape", "end_value"}


def _plain(value: Any) -> Any:
  return value.to_dict() if hasattr(value, "to_dict") else value


def _positive_ints(values: Any, field: str) -> tuple[int, ...]:
  values = tuple(values)
  if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
    raise ValueError(f"config.study.{field} must be integers >= 0, got {list(values)}")
  if len(set(values)) != len(values):
    raise ValueError(f"config.study.{field} must not repeat a value, got {list(values)}")
  return values


@dataclasses.dataclass(frozen=True)
class Study:
  names: tuple[str, ...]
  seeds: tuple[int, ...]
  arms: dict[str, dict[str, Any]]
  budgets: tuple[int, ...]  # epochs; () for a study at `config.num_epochs` alone
  labels: dict[str, str] = dataclasses.field(default_factory=dict)  # every arm's
  tune: tuning.Tune | None = None
  train_fn: str | None = None  # "package.module:function", or None for lrjax's engine

  def fork(self, name: str) -> dict[str, Any] | None:
    """The `wsd_fork` spec of arm `name`, or None."""
    return self.arms[name].get("wsd_fork")

  def schedule_only(self) -> bool:
    """True when the arms differ in their schedule alone (the population mode applies)."""
    return all(set(arm) <= {"schedule"} for arm in self.arms.values())

  def budget_list(self) -> tuple[int | None, ...]:
    return self.budgets or (None,)


def parse(config: Any) -> Study:
  """The study of `config`; ValueError naming the first bad `config.study` field."""
  study = config.get("study") if hasattr(config, "get") else None
  if study is None or not ("schedules" in study or "arms" in study) or "seeds" not in study:
    raise ValueError(
      "config.study must have 'arms' (name -> config overrides) or 'schedules' (name -> "
      "schedule config), and 'seeds'; see configs/study_fashion_mnist.py"
    )
  arms = {n: {"schedule": _plain(s)} for n, s in dict(_plain(study.get("schedules", {}))).items()}
  for name, overrides in dict(_plain(study.get("arms", {}) or {})).items():
    if not isinstance(overrides, dict):
      raise ValueError(f"config.study.arms.{name} must be a dict of overrides, got {overrides!r}")
    arms[name] = {**arms.get(name, {}), **overrides}
  if not arms:
    raise ValueError("config.study.schedules must name at least one schedule, got none")
  order = list(study.get("order", None) or sorted(arms))
  unknown = [n for n in order if n not in arms]
  if unknown or len(set(order)) != len(order):
    raise ValueError(
      f"config.study.order must list distinct names of the study's arms {sorted(arms)}, got {order}"
    )
  seeds = _positive_ints(study.seeds, "seeds")
  if not seeds:
    raise ValueError("config.study.seeds must be a non-empty list of integers >= 0, got []")
  budgets = _positive_ints(study.get("budgets", None) or (), "budgets")
  if any(b < 1 for b in budgets):
    raise ValueError(f"config.study.budgets must be epochs >= 1, got {list(budgets)}")
  labels = dict(_plain(study.get("labels", None) or {}))
  if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
    raise ValueError(f"config.study.labels must map arm names to text, got {labels!r}")
  labels = {n: labels.get(n, n.replace("_", " ")) for n in order}
  tune = tuning.parse(study, seeds)
  train_fn = _train_fn(study)
  out = Study(
    tuple(order), seeds, {n: arms[n] for n in order}, tuple(sorted(budgets)), labels, tune, train_fn
  )
  for name in order:
    spec = out.fork(name)
    if spec is not None and train_fn is not None:
      raise ValueError(
        f"config.study.arms.{name}: a forked arm (wsd_fork) needs lrjax's engine to hand its "
        "trunk's checkpoint to each budget; with config.study.train_fn, use a plain "
        "warmup_stable_decay schedule"
      )
    if spec is not None:
      _check_fork(name, spec)
      if tune is not None and budgets:
        raise ValueError(
          f"config.study.arms.{name}: a forked arm (wsd_fork) shares one trunk per seed over its "
          "budgets, which a tuned study cannot give each budget's point; tune it as a plain "
          "warmup_stable_decay schedule"
        )
  if (
    tune is not None
    and train_fn is None
    and not config.get("validation_fraction", 0.0)
    and not config.get("validation_split", "")
  ):
    raise ValueError(
      "config.study.tune chooses on validation data: set config.validation_fraction (e.g. 0.1) "
      "or config.validation_split"
    )
  return out


def _train_fn(study: Any) -> str | None:
  path = study.get("train_fn", None)
  if path is None:
    return None
  if not isinstance(path, str) or path.count(":") != 1 or path.startswith(":"):
    raise ValueError(f"config.study.train_fn must be 'package.module:function', got {path!r}")
  steps = study.get("steps_per_epoch", None)
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
    raise ValueError(
      "config.study.steps_per_epoch must be an integer >= 1 with config.study.train_fn (the "
      f"function's updates per epoch, to resolve schedules in epochs), got {steps!r}"
    )
  return path


def _check_fork(name: str, spec: Any) -> None:
  where = f"config.study.arms.{name}.wsd_fork"
  if not isinstance(spec, dict) or not {"peak_value", "cooldown"} <= set(spec) <= FORK_FIELDS:
    raise ValueError(
      f"{where} must have peak_value and cooldown (of {sorted(FORK_FIELDS)}), got {spec!r}"
    )
  if not 0 < spec["cooldown"] < 1:
    raise ValueError(f"{where}.cooldown must be a fraction in (0, 1), got {spec['cooldown']!r}")
  warmup = spec.get("warmup_epochs", 0)
  if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
    raise ValueError(f"{where}.warmup_epochs must be an integer >= 0, got {warmup!r}")


def wsd_schedule(spec: dict[str, Any], epochs: float, decay_epochs: float | None = None) -> dict:
  """The warmup-stable-decay schedule config of a fork arm over `epochs` (its trunk: no decay
  within them, `decay_epochs` = 0)."""
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


def run_config(
  config: Any,
  study: Study,
  name: str,
  seed: int,
  budget: int | None = None,
  point: tuning.Point | None = None,
) -> Any:
  """The training config of one run: the study's config with the arm's overrides, the seed and
  the budget, and a tuning `point` (its factor of the schedule, its fields) where given."""
  cfg = copy.deepcopy(config)
  arm = study.arms[name]
  if point is not None:
    arm = {**arm, **dict(point.overrides)}
    if "wsd_fork" in arm:  # its peak is the factor's to scale
      fork = arm["wsd_fork"]
      arm["wsd_fork"] = {**fork, "peak_value": fork["peak_value"] * point.lr_scale}
  with cfg.unlocked():
    del cfg["study"]
    cfg.seed = seed
    if budget is not None:
      cfg.num_epochs = budget
    for field, value in arm.items():
      if field == "wsd_fork":
        cfg.schedule = wsd_schedule(value, cfg.num_epochs)
        continue
      if field not in cfg:
        raise ValueError(f"config.study.arms.{name}: the config has no field {field!r}")
      try:
        cfg[field] = copy.deepcopy(value)
      except TypeError as e:
        raise ValueError(f"config.study.arms.{name}.{field}: {e}") from None
    if point is not None and "wsd_fork" not in arm:
      cfg.schedule = tuning.scaled(cfg.schedule, point.lr_scale)
    # Snapshot ensembles (Huang et al. 2017) are reported for every schedule with cycles: the
    # schedule says where they end (`Schedule.cycle_ends`); one without cycles takes none.
    cfg.snapshot_ensemble = True
  return cfg


def trunk_config(config: Any, study: Study, name: str, seed: int) -> Any:
  """The trunk of fork arm `name`: its warmup and stable phase, as long as the latest cooldown
  start (in whole epochs, so a fork may start within its last epoch)."""
  spec = study.fork(name)
  last = max(study.budgets)
  epochs = math.ceil(last * (1 - spec["cooldown"]))
  cfg = run_config(config, study, name, seed, epochs)
  with cfg.unlocked():
    cfg.schedule = wsd_schedule(spec, epochs, decay_epochs=0)
  return cfg


def run_dir(workdir: str, name: str, seed: int, budget: int | None = None) -> str:
  if budget is None:
    return os.path.join(workdir, "runs", name, f"seed_{seed}")
  return os.path.join(workdir, "runs", name, f"budget_{budget}", f"seed_{seed}")


def tune_dir(workdir: str, name: str, point: str, seed: int, budget: int | None = None) -> str:
  """A tuning run's folder: `runs/<arm>/[budget_<b>/]tune/<point>/seed_<s>`."""
  folder = os.path.dirname(run_dir(workdir, name, seed, budget))
  return os.path.join(folder, "tune", point, f"seed_{seed}")


def trunk_dir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, "runs", name, "trunk", f"seed_{seed}")


def population_dir(workdir: str, seed: int, budget: int | None = None) -> str:
  tail = f"seed_{seed}" if budget is None else f"budget_{budget}_seed_{seed}"
  return os.path.join(workdir, "runs", "_population", tail)
