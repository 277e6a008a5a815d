"""A study's arms, checked: their overrides and order, a forked arm's spec, every arm's run at
the first seed and budget (and every tuning point), and arms set up alike (`lrjax.config.study`
states the rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrjax.config import checks
from lrjax.config.checks import ConfigError
from lrjax.config.values import Fields, plain

FORK = "wsd_fork"
WHY = "why"  # an arm's reasons for the shared settings it changes: field -> text
# What an arm is, not a shared setting; its parameter groups too (a head at 10x against all at 1x
# compares group settings, as arms with other schedules compare schedules).
OWN = ("schedule", "optimizer_schedules", "plateau", "param_groups", "optimizer", FORK, "user", WHY)
FORK_FIELDS = {"peak_value", "warmup_epochs", "cooldown", "decay_shape", "end_value"}


def arms(study: Fields) -> dict[str, Fields]:
  schedules = study.get("schedules", None) or {}
  given = study.get("arms", None) or {}
  for where, value in (("schedules", schedules), ("arms", given)):
    if not isinstance(value, Mapping):
      raise ConfigError(f"config.study.{where} must map arm names to {where}, got {plain(value)!r}")
  arms = {n: {"schedule": s} for n, s in schedules.items()}
  for name, overrides in given.items():
    if not isinstance(overrides, Mapping):
      raise ConfigError(
        f"config.study.arms.{name} must be a dict of overrides, got {plain(overrides)!r}"
      )
    arms[name] = {**arms.get(name, {}), **overrides}
  if not arms:
    raise ConfigError("config.study.schedules must name at least one schedule, got none")
  return {n: Fields(a) for n, a in arms.items()}


def order(study: Fields, arms: dict[str, Fields]) -> tuple[str, ...]:
  order = list(study.get("order", None) or sorted(arms))
  unknown = [n for n in order if n not in arms]
  if unknown or len(set(order)) != len(order):
    raise ConfigError(
      f"config.study.order must list distinct names of the study's arms {sorted(arms)}, got {order}"
    )
  left_out = [n for n in arms if n not in order]
  if left_out:
    raise ConfigError(
      f"config.study.order leaves out {left_out}, which config.study.arms (or .schedules) "
      f"defines: add {'it' if len(left_out) == 1 else 'them'} to the order, or remove "
      f"{'it' if len(left_out) == 1 else 'them'} from the arms"
    )
  return tuple(order)


def _check_fork(name: str, spec: Any) -> None:
  where = f"config.study.arms.{name}.{FORK}"
  if not isinstance(spec, Mapping) or not {"peak_value", "cooldown"} <= set(spec) <= FORK_FIELDS:
    raise ConfigError(
      f"{where} must have peak_value and cooldown (of {sorted(FORK_FIELDS)}), got {plain(spec)!r}"
    )
  if not checks.is_number(spec["cooldown"]) or not 0 < spec["cooldown"] < 1:
    raise ConfigError(f"{where}.cooldown must be a fraction in (0, 1), got {spec['cooldown']!r}")
  checks.count(0)(spec.get("warmup_epochs", 0), f"{where}.warmup_epochs")


def check(study: Any) -> None:
  """Every arm's run at the first seed and each budget, and at every tuning point: built now,
  so that a bad override is refused before anything trains."""
  for name in study.names:
    arm = study.arms[name]
    if "runtime" in arm:
      raise ConfigError(
        f"config.study.arms.{name}.runtime: every arm of a study runs under the study's one "
        "runtime (the same bits whatever the executor): set config.runtime instead"
      )
    if FORK in arm:
      _check_fork(name, arm[FORK])
      if study.train_fn is not None:
        raise ConfigError(
          f"config.study.arms.{name}: a forked arm (wsd_fork) needs lrjax's engine to hand its "
          "trunk's checkpoint to each budget; with config.study.train_fn, use a plain "
          "warmup_stable_decay schedule"
        )
      if study.tune is not None and study.budgets:
        raise ConfigError(
          f"config.study.arms.{name}: a forked arm (wsd_fork) shares one trunk per seed over its "
          "budgets, which a tuned study cannot give each budget's point; tune it as a plain "
          "warmup_stable_decay schedule"
        )
    for budget in study.budget_list():
      run = study.run(name, study.seeds[0], budget)
      if run.plateau and study.train_fn is not None:
        raise ConfigError(
          f"config.study.arms.{name}.plateau: a plateau is fed its validation metric by lrjax's "
          "engine, which config.study.train_fn replaces: leave it out of the study"
        )
    if study.tune is not None:
      for point in study.tune.all_points().values():
        _check_point(study, name, point)
  _check_alike(study)
  e = study.experiment
  if study.tune is not None and study.train_fn is None:
    if not e.validation_fraction and not e.validation_split:
      raise ConfigError(
        "config.study.tune chooses on validation data: set config.validation_fraction (e.g. "
        "0.1) or config.validation_split"
      )


def _check_alike(study: Any) -> None:
  """Every arm keeps the study's shared settings, or says why it does not (see the module
  docstring)."""
  shared = study.experiment.to_dict()
  for name in study.names:
    arm = study.arms[name]
    why = arm.get(WHY) or {}
    if not isinstance(why, Mapping) or not all(isinstance(v, str) and v for v in why.values()):
      raise ConfigError(
        f"config.study.arms.{name}.why must map a field to the reason the arm changes it, got "
        f"{plain(why)!r}"
      )
    for field, value in arm.items():
      if field in OWN or plain(value) == shared.get(field) or why.get(field):
        continue
      raise ConfigError(
        f"config.study.arms.{name} sets {field}={plain(value)!r} where every arm shares "
        f"{shared.get(field)!r}: say why beside it (config.study.arms.{name}.why.{field}), or "
        "leave it to the study"
      )


def _check_point(study: Any, name: str, point: Any) -> None:
  try:
    study.run(name, study.tune.seeds[0], study.budget_list()[0], point)
  except ConfigError as e:
    fields = ", ".join(f for f, _ in point.overrides)
    if not fields:
      raise
    raise ConfigError(f"config.study.tune.grid ({fields}) at {point.id}: {e}") from None
