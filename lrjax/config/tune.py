"""`config.study.tune`, typed: the grid each arm of a tuned study is trained at, and its seeds.

* `lr_scale`: factors of the arm's whole learning-rate schedule (for schedule-free and
  learning-rate-free optimizers, their multiplier; for a `wsd_fork` arm, its peak): a list, or
  `{"log_range": [lo, hi], "num": n}`, n log-spaced factors from lo to hi;
* `grid`: optionally, `{field: [values, ...]}`: any config field an arm may override, crossed with
  `lr_scale`;
* `seeds`: the tuning seeds, none of them a final seed (default 1000, 1001): seeds that choose
  never measure, so no final run is a run that was chosen for being lucky;
* `strategy`: `"halving"` (default): seed-wise successive halving, every point on the first
  tuning seed, the better half (by the tuning metric, over the seeds so far) on the next, and so
  on: the points that matter get every seed, at about twice the cost of one seed, and no run is
  cut short; `"grid"`: every point on every tuning seed;
* `metric`: `"validation_accuracy"` (default, higher is better) or `"validation_loss"`;
* `extend_edges`: up to this many more factors past an edge of the grid where the best point of
  the first rung lies on it (default 0).

How a point is chosen from what the grid's runs give is `lrjax.compare.tuning`'s.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrjax.config import checks
from lrjax.config.checks import ConfigError
from lrjax.config.values import frozen, plain

METRICS = {"validation_accuracy": True, "validation_loss": False}  # -> higher is better
FIELDS = ("lr_scale", "grid", "seeds", "strategy", "metric", "extend_edges")
SEEDS = (1000, 1001)  # the default tuning seeds: beside any study's final seeds 0, 1, 2, ...
STRATEGIES = ("halving", "grid")


@dataclasses.dataclass(frozen=True)
class Point:
  """One grid point.

  Attributes:
    lr_scale: the factor of the arm's schedule.
    overrides: (field, value) of the grid's other fields.
  """

  lr_scale: float
  overrides: tuple[tuple[str, Any], ...] = ()

  @property
  def id(self) -> str:
    """A folder-safe name: `lr_0.25`, `lr_2-weight_decay_0.001`."""
    parts = [f"lr_{self.lr_scale:g}"] + [f"{k}_{_text(v)}" for k, v in self.overrides]
    return "-".join(parts)


def _text(value: Any) -> str:
  text = json.dumps(plain(value), sort_keys=True) if not isinstance(value, str) else value
  return "".join(c if c.isalnum() or c in "._" else "_" for c in text)[:40]


@dataclasses.dataclass(frozen=True)
class Tune:
  """The checked `config.study.tune` (see the module docstring).

  Attributes:
    scales: the factors of the schedule, ascending.
    grid: (field, values) of the other fields crossed with them.
    seeds: the tuning seeds.
    strategy: "halving" or "grid" (see the module docstring).
    metric: the validation metric that chooses.
    extend_edges: factors past an edge the grid may grow by.
    ratio: between neighbouring scales: the step of an extension past an edge.
  """

  scales: tuple[float, ...]  # ascending
  grid: tuple[tuple[str, tuple], ...]
  seeds: tuple[int, ...]
  strategy: str
  metric: str
  extend_edges: int
  ratio: float  # between neighbouring scales: the step of an extension past an edge

  def rungs(self) -> list[tuple[int, ...]]:
    """The tuning seeds of each rung: one seed a rung for halving, all at once for a grid."""
    if self.strategy == "halving":
      return [(s,) for s in self.seeds]
    return [tuple(self.seeds)]

  @property
  def higher_is_better(self) -> bool:
    """Whether a larger value of the metric is better (accuracy), or a smaller one (loss)."""
    return METRICS[self.metric]

  def points(self) -> list[Point]:
    """The grid: every scale crossed with every combination of the other fields."""
    return [Point(s, combo) for s in self.scales for combo in self.combos()]

  def combos(self) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of the grid's other fields (one empty one without them)."""
    fields = [f for f, _ in self.grid]
    return [tuple(zip(fields, c)) for c in itertools.product(*(v for _, v in self.grid))]

  def extension(self, side: str, level: int) -> list[Point]:
    """The points past an edge of the grid, one per combination of the other fields.

    Args:
      side: "low" (below the smallest scale) or "high" (above the largest).
      level: how many steps of `ratio` past it.
    """
    edge = (
      self.scales[0] / self.ratio**level if side == "low" else self.scales[-1] * self.ratio**level
    )
    return [Point(float(f"{edge:.6g}"), combo) for combo in self.combos()]

  def all_points(self) -> dict[str, Point]:
    """Every point a study may train, by id: the grid, then each edge's extensions."""
    out = {p.id: p for p in self.points()}
    for side in ("low", "high"):
      for level in range(1, self.extend_edges + 1):
        out.update({p.id: p for p in self.extension(side, level)})
    return out


def _positive(values: Sequence[Any], where: str) -> tuple[float, ...]:
  out = tuple(values)
  if not out or any(isinstance(v, bool) or not isinstance(v, int | float) for v in out):
    raise ConfigError(f"{where} must be positive numbers, got {list(out)}")
  if any(not (0 < v < math.inf) for v in out):
    raise ConfigError(f"{where} must be positive numbers, got {list(out)}")
  if len(set(out)) != len(out):
    raise ConfigError(f"{where} must not repeat a value, got {list(out)}")
  return tuple(sorted(float(v) for v in out))


def _scales(scale: Any) -> tuple[float, ...]:
  where = "config.study.tune.lr_scale"
  if isinstance(scale, Mapping):
    if set(scale) != {"log_range", "num"} or len(scale["log_range"]) != 2:
      raise ConfigError(
        f'{where} must be a list of factors or {{"log_range": [lo, hi], "num": n}}, got '
        f"{plain(scale)!r}"
      )
    lo, hi = _positive(scale["log_range"], f"{where}.log_range")
    num = scale["num"]
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
      raise ConfigError(f"{where}.num must be an integer >= 2, got {num!r}")
    return tuple(float(f"{lo * (hi / lo) ** (i / (num - 1)):.6g}") for i in range(num))
  return _positive(scale if isinstance(scale, list | tuple) else [scale], where)


def parse(spec: Any, study_seeds: tuple[int, ...]) -> Tune | None:
  """`config.study.tune` checked.

  Args:
    spec: `config.study.tune` (a mapping; None or empty: the study tunes nothing).
    study_seeds: the study's final seeds (no tuning seed may be one of them).

  Returns:
    The `Tune`, or None.

  Raises:
    ConfigError: naming the first bad field.

  Example:
    >>> from lrjax.config import tune
    >>> t = tune.parse({"lr_scale": {"log_range": [0.25, 4.0], "num": 5}}, (0, 1))
    >>> t.scales, t.seeds, t.rungs(), [p.id for p in t.extension("high", 1)]
    ((0.25, 0.5, 1.0, 2.0, 4.0), (1000, 1001), [(1000,), (1001,)], ['lr_8'])
  """
  spec = frozen(spec)
  if not spec:
    return None
  if not isinstance(spec, Mapping):
    raise ConfigError(f"config.study.tune must be a dict of {list(FIELDS)}, got {plain(spec)!r}")
  unknown = sorted(set(spec) - set(FIELDS))
  if unknown:
    raise ConfigError(
      f"config.study.tune has no field {unknown[0]!r}; its fields: {sorted(FIELDS)}"
    )
  scales = _scales(spec.get("lr_scale", (1.0,)))
  grid = spec.get("grid", None) or {}
  if not isinstance(grid, Mapping):
    raise ConfigError(f"config.study.tune.grid must be a dict of field -> values, got {grid!r}")
  for field, values in grid.items():
    if not isinstance(values, tuple) or not values:
      raise ConfigError(
        f"config.study.tune.grid.{field} must be a non-empty list, got {plain(values)!r}"
      )
  tune_seeds = checks.seeds(spec.get("seeds", None) or SEEDS, "config.study.tune.seeds")
  shared = sorted(set(tune_seeds) & set(study_seeds))
  if shared:
    raise ConfigError(
      f"config.study.tune.seeds {shared} are final seeds too (config.study.seeds): seeds that "
      f"choose a point must not measure it; use seeds the study does not (default {list(SEEDS)})"
    )
  strategy = spec.get("strategy", "halving")
  checks.one_of(STRATEGIES)(strategy, "config.study.tune.strategy")
  metric = spec.get("metric", "validation_accuracy")
  checks.one_of(list(METRICS))(metric, "config.study.tune.metric")
  extend = checks.count(0)(spec.get("extend_edges", 0), "config.study.tune.extend_edges")
  ratio = scales[-1] / scales[-2] if len(scales) > 1 else 2.0
  return Tune(
    scales=scales,
    grid=tuple((f, tuple(v)) for f, v in grid.items()),
    seeds=tune_seeds,
    strategy=strategy,
    metric=metric,
    extend_edges=extend,
    ratio=ratio,
  )
